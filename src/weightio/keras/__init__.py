"""Drop-in Keras weight loading: the variables Keras's own loader gives, many times faster.

``weightio.keras.load_weights(model, path)`` runs Keras's own loading code (so matching,
``skip_mismatch`` warnings and error messages are Keras's) over arrays that weightio's native
reader prefetched in one parallel pass, and assigns only when everything matched: a failed
load leaves the model exactly as it was. ``install()`` makes ``model.load_weights`` use it.

Supported here: Keras 3 models, from legacy HDF5 (``save_weights("x.h5")``, full-model
``.h5``), ``.weights.h5``, ``.keras`` archives, sharded ``.weights.json`` and TensorFlow
checkpoints (tf-keras ``save_weights("ckpt")``, see ``checkpoint.py``); tf-keras (Keras 2)
models from legacy HDF5 and TensorFlow checkpoints. Formats are chosen by the file's
content, not its suffix. What weightio does not read is handed to Keras unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..file import _gc_paused
from .formats import Format, has_h5_weights_member, open_sources, sniff
from .progress import meter as progress_meter
from .report import CheckpointLoadStatus, LoadReport

__all__ = [
    "CheckpointLoadStatus",
    "Format",
    "forget_plans",
    "LoadReport",
    "install",
    "installed",
    "is_installed",
    "load_model",
    "load_weights",
    "sniff",
    "uninstall",
]

log = logging.getLogger("weightio")

_NATIVE = (Format.LEGACY_H5, Format.WEIGHTS_H5, Format.KERAS_ZIP, Format.SHARDED_JSON)


class NotHandled(Exception):
    """weightio does not load this model/file combination (Keras's own loader should)."""


def _is_keras3_model(model: Any) -> bool:
    return any(cls.__module__.startswith("keras.") for cls in type(model).__mro__)


def load_weights(
    model: Any,
    filepath: str | os.PathLike[str],
    skip_mismatch: bool = False,
    by_name: bool | None = None,
    *,
    threads: int | None = None,
    convert_legacy: bool = False,
    progress: Any = None,
    assignment_map: dict[str, Any] | None = None,
    **kwargs: Any,
) -> LoadReport:
    """Loads weights into ``model`` like ``model.load_weights(filepath, ...)``.

    Same arguments and errors as Keras (``by_name`` for legacy HDF5 files,
    ``objects_to_skip`` for ``.weights.h5``); the format is chosen by content. ``threads``
    caps the parallel read. All-or-nothing: on any error the model is unchanged. What
    weightio does not load natively is handed to Keras's own loader (``report.by_keras``).
    The returned ``LoadReport`` lists what was loaded, skipped and left unused.

    ``convert_legacy=True``: for Keras 3 models and legacy HDF5 files, convert old layouts
    (Keras 1 files, Theano kernels, per-gate and CuDNN RNN weights) as tf-keras does before
    loading (``weightio.keras.convert``); False is Keras 3's behaviour. tf-keras models are
    always converted by tf-keras itself, whatever the value.
    ``progress``: True shows a progress bar on stderr while reading (on a terminal, for big
    reads); a callable is called as ``progress(done_bytes, total_bytes)``.

    TensorFlow checkpoints (``filepath`` a prefix such as ``"ckpt"`` for ``ckpt.index``, or
    a directory holding a ``checkpoint`` file), as tf-keras's ``save_weights("ckpt")``
    writes them, load into tf-keras models and into the equivalent Keras 3 model on any
    backend, topologically (the checkpoint's object graph against the model's layers and
    attributes, see ``weightio.keras.checkpoint``), and return a ``CheckpointLoadStatus``
    (``assert_consumed()``, ``assert_existing_objects_matched()``, ``expect_partial()``,
    lists of what was loaded and what was not). As in tf-keras, ``by_name=True`` raises
    ``NotImplementedError`` and ``skip_mismatch=True`` ``ValueError``. ``options`` (a
    ``tf.train.CheckpointOptions``) is accepted and ignored.

    ``assignment_map`` (checkpoints only) restores part of a checkpoint, the transfer
    learning case of ``tf.train.init_from_checkpoint``: ``{checkpoint object path: target}``
    where the path is an object in the checkpoint as its keys spell it
    (``"layer_with_weights-0"``, ``"backbone"``, ``"model/layer_with_weights-2"``, ``""``
    for the root) and the target is the model, one of its layers (the object or its name)
    or one of its variables. Only the mapped objects are restored, each matched like a
    whole model; the rest of the model is left unchanged.
    """
    start = time.perf_counter()
    path = os.fspath(filepath)
    if assignment_map is not None and sniff(path) is not Format.TF_CHECKPOINT:
        raise ValueError(f"assignment_map is only supported for TensorFlow checkpoints; {path} is not one")
    opts = _Options(threads, bool(convert_legacy), progress_meter(progress, path), assignment_map)
    try:
        return _load_natively(model, path, skip_mismatch, by_name, opts, start, **kwargs)
    except NotHandled as why:
        log.debug("weightio: handing %s to Keras (%s)", path, why)
        if assignment_map is not None:
            raise ValueError(f"assignment_map: {why}") from None
        original = _original_loader(model)
        if by_name is not None:
            kwargs["by_name"] = by_name
        result = original(model, filepath, skip_mismatch=skip_mismatch, **kwargs)
        return LoadReport(path, sniff(path), 0, time.perf_counter() - start, by_keras=True, keras_result=result)


@dataclass
class _Options:
    """weightio's own arguments of ``load_weights``."""

    threads: int | None
    convert_legacy: bool
    meter: Any  # progress.Meter or None
    assignment_map: dict[str, Any] | None


def _load_checkpoint(
    model: Any,
    path: str,
    skip_mismatch: bool,
    by_name: bool | None,
    opts: _Options,
    start: float,
    tf_keras_model: bool,
) -> CheckpointLoadStatus:
    from . import checkpoint

    try:
        status = checkpoint.load(
            model,
            path,
            tf_keras_model=tf_keras_model,
            skip_mismatch=skip_mismatch,
            by_name=by_name,
            assignment_map=opts.assignment_map,
            threads=opts.threads,
            start=start,
        )
    except checkpoint.NoObjectGraph as why:
        raise NotHandled(str(why)) from None
    log.debug("weightio: restored %d variables from %s in %.3f s", status.variables_assigned, path, status.seconds)
    return status


def _load_natively(
    model: Any, path: str, skip_mismatch: bool, by_name: bool | None, opts: _Options, start: float, **kwargs: Any
) -> LoadReport:
    from . import tf_keras

    if tf_keras.is_tf_keras_model(model):
        return _load_tf_keras(model, path, skip_mismatch, bool(by_name), opts, start, **kwargs)
    objects_to_skip = kwargs.pop("objects_to_skip", None)
    fmt = sniff(path)
    if fmt is Format.TF_CHECKPOINT:
        kwargs.pop("options", None)  # tf.train.CheckpointOptions: nothing to apply natively
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    if not _is_keras3_model(model):
        raise TypeError(f"weightio.keras.load_weights expects a Keras model, got {type(model).__name__}")
    if fmt is Format.TF_CHECKPOINT:
        if objects_to_skip is not None:
            raise ValueError(f"`objects_to_skip` only supports loading '.weights.h5' files.Received: {path}")
        return _load_checkpoint(model, path, skip_mismatch, by_name, opts, start, False)
    if fmt not in _NATIVE:
        raise NotHandled(f"{path}: {fmt.value} files are not read by weightio")
    # Keras's argument checks, in Keras's order for each kind of file.
    if fmt is Format.KERAS_ZIP:
        if objects_to_skip is not None:
            raise ValueError(f"`objects_to_skip` only supports loading '.weights.h5' files.Received: {path}")
        if by_name is not None:
            raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. Received: {path}")
        if not has_h5_weights_member(path):
            raise NotHandled(f"{path}: the archive holds no model.weights.h5")
    elif fmt is Format.LEGACY_H5:
        if objects_to_skip is not None:
            raise ValueError(f"`objects_to_skip` only supports loading '.weights.h5' files.Received: {path}")
    elif by_name is not None:
        raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. Received: {path}")

    # Loading makes many small objects while Keras's model (thousands of tracked objects)
    # is alive: pause the cyclic collector instead of letting it rescan the model.
    with open_sources(path, fmt) as sources, _gc_paused():
        if fmt is Format.LEGACY_H5:
            from . import legacy

            (file,) = sources.files.values()
            assigned, details = legacy.load(
                model, file, bool(by_name), skip_mismatch, opts.threads, opts.convert_legacy, opts.meter
            )
        else:
            from . import v3

            assigned, details = v3.load(model, sources, skip_mismatch, objects_to_skip, opts.threads, opts.meter)
    report = LoadReport(path, fmt, assigned, time.perf_counter() - start, details=details)
    log.debug("weightio: loaded %d variables from %s (%s) in %.3f s", assigned, path, fmt.value, report.seconds)
    return report


def _load_tf_keras(
    model: Any, path: str, skip_mismatch: bool, by_name: bool, opts: _Options, start: float, **kwargs: Any
) -> LoadReport:
    """tf-keras models: legacy HDF5, tf-keras's own ``.weights.h5`` / ``.keras`` and
    TensorFlow checkpoints natively; checkpoints for a model that has not created its
    variables yet go to tf-keras (TensorFlow defers that restore until it does). (tf-keras
    converts old layouts itself, so ``convert_legacy`` changes nothing here.)"""
    from . import tf_keras

    kwargs.pop("options", None)  # only meaningful for TensorFlow checkpoints
    if kwargs:
        raise TypeError(f"load_weights() got unexpected keyword arguments {sorted(kwargs)}")
    fmt = sniff(path)
    if fmt is Format.TF_CHECKPOINT:
        if not model.built and not (skip_mismatch or by_name):
            raise NotHandled(f"{path}: the model has no variables yet (tf-keras defers this restore)")
        return _load_checkpoint(model, path, skip_mismatch, by_name, opts, start, True)
    if fmt is Format.KERAS_ZIP and not has_h5_weights_member(path):
        raise NotHandled(f"{path}: the archive holds no model.weights.h5")
    if fmt not in (Format.LEGACY_H5, Format.WEIGHTS_H5, Format.KERAS_ZIP):
        raise NotHandled(f"{path}: tf-keras {fmt.value} files are loaded by tf-keras itself")
    with open_sources(path, fmt) as sources, _gc_paused():
        if fmt is Format.LEGACY_H5:
            (file,) = sources.files.values()
            assigned, details = tf_keras.load(model, file, bool(by_name), skip_mismatch, opts.threads, opts.meter)
        else:  # tf-keras ignores by_name for these files
            assigned, details = tf_keras.load_v3(model, sources, skip_mismatch, opts.threads, opts.meter)
    return LoadReport(path, fmt, assigned, time.perf_counter() - start, details=details)


def load_model(filepath: Any, custom_objects: Any = None, compile: bool = True, safe_mode: bool = True) -> Any:
    """Like ``keras.saving.load_model``: the model is built from the config stored in the
    file (never unpickled), and its weights and optimizer state are read by weightio
    (``.keras`` archives and legacy full-model ``.h5``; other files go to Keras)."""
    from .model import load_model as _load_model

    return _load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


# -- install(): make model.load_weights use weightio --------------------------------------
_original: dict[str, Any] = {}


# Which saving_api modules install() patches: Keras 3's and tf-keras's.
_TARGETS = {"keras3": "keras.src.saving.saving_api", "tf_keras": "tf_keras.src.saving.saving_api"}


def _original_loader(model: Any) -> Any:
    """Keras's own ``saving_api.load_weights`` for this model's Keras."""
    import importlib

    from . import tf_keras

    family = "tf_keras" if tf_keras.is_tf_keras_model(model) else "keras3"
    if family in _original:
        return _original[family]
    return importlib.import_module(_TARGETS[family]).load_weights


def _dispatcher(family: str) -> Any:
    def dispatch(model: Any, filepath: Any, skip_mismatch: bool = False, **kwargs: Any) -> Any:
        """weightio's replacement of ``saving_api.load_weights``."""
        by_name = kwargs.pop("by_name", None)
        report = load_weights(model, filepath, skip_mismatch=skip_mismatch, by_name=by_name, **kwargs)
        if report.by_keras:
            return report.keras_result
        # tf-keras returns a load status for checkpoints (Keras 3's Model.load_weights drops it).
        return report if isinstance(report, CheckpointLoadStatus) else None

    return dispatch


def install() -> None:
    """Makes ``Model.load_weights`` of Keras 3 and of tf-keras (where installed) use
    weightio; what weightio cannot load goes to Keras's own loader."""
    import importlib

    for family, module_name in _TARGETS.items():
        if family in _original:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        _original[family] = module.load_weights
        module.load_weights = _dispatcher(family)


def uninstall() -> None:
    """Restores Keras's own ``load_weights``."""
    import importlib

    for family in list(_original):
        module = importlib.import_module(_TARGETS[family])
        module.load_weights = _original.pop(family)


def forget_plans(model: Any) -> None:
    """Forgets the plans weightio remembered from earlier loads into ``model`` (which dataset
    went to which variable): the next load runs Keras's own loading code again, as a first
    load does. Loads never need this, since a plan is used only after checking that the
    model and the file are still as they were; the benchmark uses it to time first loads."""
    import sys

    for name in ("legacy", "v3", "tf_keras", "checkpoint"):
        module = sys.modules.get(f"{__name__}.{name}")
        for attribute in ("_PLANS", "_LEGACY_PLANS"):
            plans = getattr(module, attribute, None)
            if plans is not None:
                plans.pop(model, None)


def is_installed() -> bool:
    return bool(_original)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """``with weightio.keras.installed(): model.load_weights(...)``"""
    was = is_installed()
    install()
    try:
        yield
    finally:
        if not was:
            uninstall()
