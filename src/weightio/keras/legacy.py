"""Legacy HDF5 weights (Keras 2 / tf-keras ``save_weights("x.h5")`` and full-model ``.h5``)
into Keras 3 models, through Keras's own ``legacy_h5_format`` loaders over weightio.

With ``convert_legacy=True`` each file layer's values first go through ``convert`` (tf-keras's
conversions of old layouts, which Keras 3 lacks), for the model layer Keras will pair them
with, before Keras's own count and shape checks see them."""

from __future__ import annotations

import functools
import weakref
from typing import Any

from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.legacy.saving import legacy_h5_format

from ..file import File
from . import convert, report, tree_check, walk
from .assign import Recorder, ahead_allocator, is_raw_bytes, once_per_layer, patched, recording, variable_shape
from .prefetch import Deferred, LazyArray, Source, reading_ahead
from .safe import safe_group
from .v3 import signature


def load(
    model: Any,
    file: File,
    by_name: bool,
    skip_mismatch: bool,
    threads: int | None,
    convert_legacy: bool = False,
    meter: Any = None,
) -> tuple[int, report.Details]:
    """Keras 3's topological or by-name legacy loading, all-or-nothing. Returns the number
    of variables assigned and what the load did."""
    group: Any = file
    if "layer_names" not in file.attrs and "model_weights" in file:
        group = safe_group(file, "model_weights")
    plain = not (by_name or skip_mismatch or convert_legacy)
    if plain:
        replayed = _replay(model, file, group, threads, meter)
        if replayed is not None:
            return replayed
    # Keras's legacy loaders only look at a weight's shape and assign it: the bytes are read
    # at the end, in bulk, straight to their destination (see prefetch.Deferred).
    deferred = Deferred(file, threads)
    origins: dict[int, report.Sources] = {}  # converted values: id -> the entries they come from
    counts: dict[str, int] = {}  # file layer -> how many values it gave (by_name's skips)
    skipped: list[tuple[Any, str]] = []
    targets = _Targets(group, model, by_name) if convert_legacy else None

    def load_subset(layer_group: Any) -> list[Any]:
        names = legacy_h5_format.load_attributes_from_hdf5_group(layer_group, "weight_names")
        values = [deferred.dataset(layer_group, name) for name in names]
        if targets is not None:
            values = targets.convert(layer_group, values, deferred.origins, origins)
        if by_name:
            counts[layer_group.name] = len(values)
        return values

    replacements: dict[str, Any] = {
        "safe_get_h5_group": safe_group,
        "load_subset_weights_from_hdf5_group": load_subset,
        "_legacy_weights": once_per_layer(legacy_h5_format._legacy_weights),
    }
    if skip_mismatch:
        replacements["_set_weights"] = _noting_shape_skips(legacy_h5_format._set_weights, skipped)
    loader = (
        legacy_h5_format.load_weights_from_hdf5_group_by_name
        if by_name
        else legacy_h5_format.load_weights_from_hdf5_group
    )
    with reading_ahead([deferred] if meter is None else [], threads, ahead_allocator()):  # until the end of the read
        recorder = _plain_topological(group, model, deferred) if plain and plain_legacy_known() else None
        if recorder is None:
            with patched(legacy_h5_format, **replacements), recording() as recorder:
                loader(group, model, skip_mismatch)
        if plain:
            _remember(model, file, group, recorder.pairs)
        assigned = recorder.apply(model, meter)
    origins.update(deferred.origin_map())
    if by_name:
        skipped += _by_name_skips(group, model, counts)
    details = report.Details(model, report.compact(recorder.pairs, origins), deferred.entries(), skipped)
    return assigned, details


# -- Keras's topological loader, where nothing fails -----------------------------------------
# Keras's ``load_weights_from_hdf5_group`` asks for every layer's weight list, group and
# ``weight_names`` twice (once to pick the layers and file layers with weights, once to pair
# them), through helpers weightio replaces for the calling thread only. A first plain load
# pairs them once, as Keras does, with the same shape checks, assigning (recorded) and
# calling ``finalize_state`` where Keras does; anything Keras would raise about (counts,
# shapes, a missing group), top-level model weights that are not empty, and anything that
# raises go to Keras's own loader.

# ``load_weights_from_hdf5_group`` and ``_set_weights`` of Keras 3.15, by source digest (as
# walk.py's): another Keras gets its own loader.
_MIRRORED = {"load_weights_from_hdf5_group": "42c70fe7d192c3b3", "_set_weights": "65e8f692c9de01c3"}


@functools.cache
def plain_legacy_known() -> bool:
    """Whether this Keras's topological loader is the one ``_plain_topological`` follows."""
    return walk.sources_match(legacy_h5_format, _MIRRORED)


def _plain_topological(group: Any, model: Any, deferred: Deferred) -> Recorder | None:
    """Keras's ``load_weights_from_hdf5_group(group, model)`` where nothing fails, recorded;
    None (nothing assigned) where Keras would raise or anything is unusual."""
    attributes = legacy_h5_format.load_attributes_from_hdf5_group
    try:
        for name in ("keras_version", "backend"):  # read by Keras (and not used)
            if name in group.attrs:
                group.attrs[name]
        if "top_level_model_weights" in group:
            # Keras 3 writes the group for every model; it pairs it with the model's own
            # variables (a Functional or Sequential model has none): both empty, nothing to do.
            if model._trainable_variables or model._non_trainable_variables:
                return None
            if attributes(safe_group(group, "top_level_model_weights"), "weight_names"):
                return None
        legacy_weights = {}
        layers = []
        for layer in model.layers:
            weights = legacy_h5_format._legacy_weights(layer)
            if weights:
                legacy_weights[id(layer)] = weights
                layers.append(layer)
        with_values = []
        for name in attributes(group, "layer_names"):
            layer_group = safe_group(group, name)
            names = attributes(layer_group, "weight_names")
            if names:
                with_values.append((layer_group, names))
        if len(with_values) != len(layers):
            return None
        if in_stateless_scope():
            return None  # assignments there are not recorded, but Keras's own
        with recording() as recorder:
            pairs = recorder.pairs
            for (layer_group, names), layer in zip(with_values, layers):
                weights = legacy_weights[id(layer)]
                values = [deferred.dataset(layer_group, name) for name in names]
                if len(values) != len(weights):
                    return None
                for variable, value in zip(weights, values):
                    if variable.shape != value.shape or is_raw_bytes(value):
                        return None
                    # What ``variable.assign(value)`` does while recording, checked above.
                    pairs.append((variable, value))
                if hasattr(layer, "finalize_state"):
                    layer.finalize_state()
    except Exception:  # noqa: BLE001 - Keras's own loader meets it and reports it
        return None
    return recorder


# -- the topological plan ---------------------------------------------------------------------
# Keras's topological loader spends its time in Python per layer (the layer's legacy weight
# list, the file's attributes read twice, a shape check and an assign per weight). What it
# assigns depends only on the model's structure (layers, variables, trainable flags) and on
# what it reads of the file (``layer_names``, each layer's ``weight_names``, top-level weights,
# the datasets' shapes and types). So after one successful plain topological load weightio
# remembers which dataset went to which variable and, while both are unchanged, assigns the
# same way after checking every shape; anything different goes through Keras's loader, which
# reports it exactly. The file's side is checked as one native digest (tree_check.py).


class _Plan:
    def __init__(
        self,
        signature: tuple[Any, ...],
        group: str,
        file: tree_check.FileSide,
        steps: list[tuple[Any, str, tuple[int, ...], Any]],
    ) -> None:
        self.signature = signature
        self.group = group
        self.file = file
        self.steps = steps  # (variable, dataset path, shape, stored dtype)


_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _remember(model: Any, file: File, group: Any, pairs: list[tuple[Any, Any]]) -> None:
    _PLANS.pop(model, None)
    steps = []
    for variable, value in pairs:
        if not isinstance(value, LazyArray) or not _plain_numbers(value.dtype):
            return  # read another way (fallback, link...): no plan
        steps.append((variable, value.path, value.shape, value.dtype))
    # (The values' addresses are this file's: the load's index of it gave them.)
    addresses = [value.address for _, value in pairs] if all(value.source.file is file for _, value in pairs) else None
    try:
        side = tree_check.remember(file, [path for _, path, _, _ in steps], addresses)
        if side is not None:
            _PLANS[model] = _Plan(signature(model), group.name, side, steps)
    except Exception:  # noqa: BLE001 - no plan; the next load runs Keras's loader
        pass


def _replay(model: Any, file: File, group: Any, threads: int | None, meter: Any) -> tuple[int, report.Details] | None:
    """The remembered assignments, if the plan still holds for this model and file; None
    otherwise (then Keras's loader runs)."""
    plan = _PLANS.get(model)
    if plan is None or plan.group != group.name:
        return None
    try:
        if plan.signature != signature(model):
            return None
        addresses = tree_check.addresses_if_unchanged(file, plan.file)
    except Exception:  # noqa: BLE001 - Keras's loader meets the same problem and reports it
        return None
    if addresses is None:
        return None
    source = Source(file, threads, "")
    pairs: list[tuple[Any, Any]] = []
    for (variable, path, shape, dtype), address in zip(plan.steps, addresses):
        if shape != variable_shape(variable):
            return None
        pairs.append((variable, LazyArray(source, path, address, shape, dtype)))
    recorder = Recorder()
    recorder.pairs = pairs
    assigned = recorder.apply(model, meter)
    return assigned, report.Details(model, report.compact(pairs, {}), plan.file.entries, [])


def _plain_numbers(dtype: Any) -> bool:
    return dtype.kind in "fiub" or dtype.name == "bfloat16"


def _noting_shape_skips(set_weights: Any, skipped: list[tuple[Any, str]]) -> Any:
    """Keras's ``_set_weights``, noting the weights that ``skip_mismatch`` skips."""

    def noting(instance: Any, symbolic_weights: Any, weight_values: Any, name: str, skip_mismatch: bool = False) -> Any:
        for variable, value in zip(symbolic_weights, weight_values):
            if tuple(variable.shape) != tuple(value.shape):
                skipped.append(
                    (variable, f"shape mismatch: the variable is {tuple(variable.shape)}, the file has {tuple(value.shape)}")
                )
        return set_weights(instance, symbolic_weights, weight_values, name=name, skip_mismatch=skip_mismatch)

    return noting


def _by_name_skips(group: Any, model: Any, counts: dict[str, int]) -> list[tuple[Any, str]]:
    """Model layers by_name loading left alone: no file layer of their name, or (with
    skip_mismatch) a different number of values."""
    base = group.name.rstrip("/")
    out: list[tuple[Any, str]] = []
    for layer in model.layers:
        weights = legacy_h5_format._legacy_weights(layer)
        if not weights:
            continue
        count = counts.get(f"{base}/{layer.name}")
        if count is None:
            out.append((layer, "by_name: no layer of this name in the file"))
        elif count != len(weights):
            out.append((layer, f"weight count mismatch: the layer has {len(weights)}, the file {count}"))
    return out


class _Targets:
    """Which model layer each file layer's values go to, as Keras's loaders pair them, and
    the conversion of those values for that layer."""

    def __init__(self, group: Any, model: Any, by_name: bool) -> None:
        self.version = _attr(group, "keras_version", "1")
        self.backend = _attr(group, "backend", None)
        self.base = group.name.rstrip("/")
        self.layers: dict[str, Any] = {}
        if by_name:
            for layer in model.layers:  # Keras: every layer of that name gets the values
                self.layers.setdefault(f"{self.base}/{layer.name}", layer)
            return
        names = legacy_h5_format.load_attributes_from_hdf5_group(group, "layer_names")
        with_values = [
            name
            for name in names
            if legacy_h5_format.load_attributes_from_hdf5_group(safe_group(group, name), "weight_names")
        ]
        layers = [layer for layer in model.layers if legacy_h5_format._legacy_weights(layer)]
        # Unequal counts: Keras raises before asking for any values.
        self.layers = {f"{self.base}/{name}": layer for name, layer in zip(with_values, layers)}

    def convert(
        self, layer_group: Any, values: list[Any], read: dict[int, report.Sources], origins: dict[int, report.Sources]
    ) -> list[Any]:
        """``values`` converted for the model layer they will go to. ``read``: the entries of
        values read one by one; ``origins`` receives those of the values made here."""
        layer = self.layers.get(layer_group.name)
        if layer is None:  # top_level_model_weights, or by_name without a match
            return values
        weights = [convert.Weight(v, report.origin_of(v, read)) for v in values]
        converted = convert.preprocess_traced(layer, weights, self.version, self.backend)
        out = []
        for weight in converted:
            if all(weight.value is not v for v in values):
                origins[id(weight.value)] = weight.sources
            out.append(weight.value)
        return out


def _attr(group: Any, name: str, default: str | None) -> str | None:
    if name not in group.attrs:
        return default
    value = group.attrs[name]
    return value.decode("utf8") if hasattr(value, "decode") else str(value)
