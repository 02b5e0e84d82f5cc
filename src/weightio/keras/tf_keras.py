"""Weights into tf-keras (Keras 2) models through tf-keras's own loaders over values read
natively, all-or-nothing.

Legacy HDF5 (``load``): tf-keras's ``hdf5_format`` loaders (so its conversions of old
layouts, ``preprocess_weights_for_loading``, apply unchanged) gather every (variable, value)
pair and set them with one ``backend.batch_set_value``; weightio records that call, checks
every shape first (a mismatch raises TensorFlow's own error before anything is assigned),
then performs it. Eager loads hand the loader unread values (``LazyArray``: read when a
conversion asks for them, else all at once at the end, the large ones read ahead meanwhile).

tf-keras's v3 format, ``.weights.h5`` and ``.keras`` (``load_v3``): tf-keras's own
``saving_lib`` traversal, with ``tf.Variable.assign`` recorded and performed at the end.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..file import File, Group
from . import report, tree_check
from .assign import (
    LOAD_LOCK,
    assign_tensorflow_pairs,
    loads_with,
    once_per_layer,
    patched,
    read_and_assign_tensorflow,
    tensorflow_allocator,
    variable_shape,
)
from .formats import WeightSources
from .prefetch import Deferred, LazyArray, LazyReadFailed, Prefetched, Source, handed_out, prefetch_all, reading_ahead
from .remembered import Notes, Remembered, ReplayStore, remember
from .walk import NotPlain, faster_tf_keras_traversal, plain_tf_keras_load_state, plain_tf_keras_traversal_known


def is_tf_keras_model(model: Any) -> bool:
    return any(cls.__module__.startswith("tf_keras.") for cls in type(model).__mro__)


def load(
    model: Any, file: File, by_name: bool, skip_mismatch: bool, threads: int | None, meter: Any = None
) -> tuple[int, report.Details]:
    """tf-keras's ``save.load_weights`` for HDF5. Returns the number of variables assigned
    and what the load did. (tf-keras converts old layouts itself: ``convert_legacy`` does
    not apply.)"""
    import tensorflow as tf

    if skip_mismatch and not by_name:
        raise ValueError(
            "When calling model.load_weights, skip_mismatch can only be "
            "set to True when by_name is True."
        )
    if not model._is_graph_network and not model.built:
        raise ValueError(
            "Unable to load weights saved in HDF5 format into a "
            "subclassed Model which has not created its variables yet. "
            "Call the Model first, then load the weights."
        )
    model._assert_weights_created()
    group: Any = file
    if "layer_names" not in file.attrs and "model_weights" in file:
        group = file["model_weights"]
    # Every layer, nested ones too (a replay's signature and its finalize_state pass): listed
    # when there is a plan to check (a first load lists them after tf-keras's loader ran).
    has_plan = model in _LEGACY_PLANS
    flat = list(model._flatten_layers()) if has_plan else None
    tried_replay = not by_name and tf.executing_eagerly() and has_plan
    if tried_replay:
        # A repeated load: nothing is read before the plan is checked, then every value at
        # once, large ones straight into the tensors the variables take over.
        found = _legacy_replay(model, file, group, flat, Source(file, threads, ""))
        if found is not None:
            replayed, entries = found
            read_and_assign_tensorflow(replayed, meter)
            for layer in flat:
                layer.finalize_state()
            details = report.Details(model, report.compact(replayed, {}), entries)
            return len({id(v) for v, _ in replayed}), details
    # Eager, without a progress meter: tf-keras's loader is handed unread values (shape and
    # dtype known), read when a conversion of an old layout asks for them, else at the end,
    # all at once; the large ones are read meanwhile (reading_ahead). Otherwise everything
    # is read first.
    lazy = meter is None and tf.executing_eagerly()
    source: Prefetched | Deferred
    source = Deferred(file, threads) if lazy else next(iter(prefetch_all({"": file}, threads, meter).values()))
    with reading_ahead([source] if lazy else [], threads, tensorflow_allocator()):  # until the end of the read
        return _load_with(model, file, group, flat, source, by_name, skip_mismatch, tried_replay)


def _load_with(
    model: Any,
    file: File,
    group: Any,
    flat: list[Any] | None,
    source: Prefetched | Deferred,
    by_name: bool,
    skip_mismatch: bool,
    tried_replay: bool,
) -> tuple[int, report.Details]:
    """``load`` once the values are at hand (``source``): tf-keras's loader, recorded, then
    every value assigned."""
    import tensorflow as tf
    from tf_keras.src import backend
    from tf_keras.src.saving.legacy import hdf5_format

    converted: list[tuple[Any, list[Any]]] = []  # by_name + skip_mismatch: what each layer got

    def load_subset(g: Group) -> list[Any]:
        names = hdf5_format.load_attributes_from_hdf5_group(g, "weight_names")
        # tf-keras follows any link here (it has no Keras 3 safety rules).
        return [_lookup(source, g, name, lazy_ok=True) for name in names]

    replacements: dict[str, Any] = {
        "load_subset_weights_from_hdf5_group": load_subset,
        "_legacy_weights": once_per_layer(hdf5_format._legacy_weights),
    }
    if by_name and skip_mismatch:
        preprocess = hdf5_format.preprocess_weights_for_loading

        depth = [0]  # tf-keras recurses through the module global: note the outer calls only

        def noting(layer: Any, weights: Any, *args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            try:
                values = preprocess(layer, weights, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                converted.append((layer, values))
            return values

        replacements["preprocess_weights_for_loading"] = noting
    recorded: list[tuple[Any, Any]] = []
    original = backend.batch_set_value
    # (Eager: a plan that did not hold above does not hold over the same file's arrays.)
    found = None if by_name or tried_replay else _legacy_replay(model, file, group, flat, _values(source))
    replayed = None if found is None else found[0]
    if replayed is not None:
        recorded = replayed
        flat = flat if flat is not None else list(model._flatten_layers())
    else:
        with patched(hdf5_format, **replacements), patched(backend, batch_set_value=recorded.extend):
            if by_name:
                hdf5_format.load_weights_from_hdf5_group_by_name(group, model, skip_mismatch)
            else:
                hdf5_format.load_weights_from_hdf5_group(group, model)
        flat = list(model._flatten_layers())  # tf-keras's own loader ran: walk again
        # (A tf.Variable's shape is fixed when it is made: ``shape`` returns the same.)
        shapes = [variable_shape(variable) for variable, _ in recorded]
        for shape, (variable, value) in zip(shapes, recorded):
            if shape != (value.shape if type(value) is LazyArray else tuple(np.shape(value))):
                variable.assign(value)  # raises TensorFlow's shape error; nothing assigned yet
        if not by_name:
            _legacy_remember(model, file, group, flat, source, recorded, shapes)
    if tf.executing_eagerly():
        # Unread values read now, all at once, into their variables' dtypes; large ones
        # into tensors the variables take over (as replays do).
        read_and_assign_tensorflow(recorded)
    else:
        original(recorded)
    # tf-keras derives layer state (Normalization...) after its batch_set_value, for every
    # layer of the model, nested ones too: again now that the values are in place.
    for layer in flat:
        layer.finalize_state()
    skipped = _by_name_skips(group, model, converted) if by_name else []
    details = report.Details(model, report.compact(recorded, source.origin_map()), source.entries(), skipped)
    return len({id(v) for v, _ in recorded}), details


def _values(source: Prefetched | Deferred) -> dict[str, Any]:
    """The values of ``source`` by dataset path: arrays, or ``LazyArray``s."""
    return source.arrays if isinstance(source, Prefetched) else source.index


# -- the topological plan (as for Keras 3 in legacy.py) -------------------------------------
# tf-keras's topological loader spends its time in Python per layer. When a load assigned
# every value exactly as read (no conversion of an old layout), weightio remembers which
# dataset went to which variable; while the model (layers, variables, trainable flags) and
# what tf-keras reads of the file (tree_check.py's digest: versions, layer_names,
# weight_names, the datasets' shapes and types) are unchanged and every shape fits, a later
# load assigns the same way; anything else runs tf-keras's loader.

class _Plan(NamedTuple):
    """What a successful load did, for replaying it (see ``_signature``)."""

    signature: tuple[Any, ...]
    steps: list[Any]  # legacy: (variable, dataset path, shape, stored dtype); v3: (object, store path)
    group: str | None = None  # legacy: the weights group, and the file as the plan saw it
    file: tree_check.FileSide | None = None
    remembered: Remembered | None = None  # v3: the store's answers, while the file is unchanged


_LEGACY_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _legacy_remember(
    model: Any,
    file: File,
    group: Any,
    flat: list[Any],
    source: Prefetched | Deferred,
    recorded: list[tuple[Any, Any]],
    shapes: list[tuple[int, ...]],
) -> None:
    """Remembers the plan of a load that assigned ``recorded`` (variables of ``shapes``)."""
    _LEGACY_PLANS.pop(model, None)
    if isinstance(source, Deferred):  # the values it handed out know their paths
        ours = source.source
        lazy = all(type(value) is LazyArray and value.source is ours for _, value in recorded)
        paths = [value.path for _, value in recorded] if lazy else []
    else:
        lazy = False
        by_id = {id(value): path for path, value in source.arrays.items()}
        paths = [by_id.get(id(value)) for _, value in recorded]
    if len(paths) != len(recorded) or None in paths:  # converted by tf-keras, or read another way: no plan
        return
    steps = [(variable, path, shape, value.dtype) for (variable, value), path, shape in zip(recorded, paths, shapes)]
    try:
        side = tree_check.remember(file, [path for _, path, _, _ in steps], [value.address for _, value in recorded] if lazy else None)
        if side is not None:
            _LEGACY_PLANS[model] = _Plan(_signature(model, flat, metrics=False), steps, group.name, side)
    except Exception:  # noqa: BLE001 - no plan: the next load runs tf-keras's loader
        pass


def _legacy_replay(
    model: Any, file: File, group: Any, flat: list[Any] | None, values: Source | dict[str, Any]
) -> tuple[list[tuple[Any, Any]], list[str]] | None:
    """The (variable, value) pairs of the model's plan and the file's dataset paths, when the
    plan still holds. ``values``: the arrays read already, by dataset path, or the ``Source``
    of ``LazyArray``s to make."""
    plan = _LEGACY_PLANS.get(model)
    if plan is None or plan.group != group.name or plan.file is None:
        return None
    try:
        if plan.signature != _signature(model, flat, metrics=False):
            return None
        addresses = tree_check.addresses_if_unchanged(file, plan.file)
    except Exception:  # noqa: BLE001 - tf-keras's loader meets the same problem and reports it
        return None
    if addresses is None:
        return None
    pairs = []
    for (variable, path, shape, dtype), address in zip(plan.steps, addresses):
        value = LazyArray(values, path, address, shape, dtype) if isinstance(values, Source) else values.get(path)
        if value is None or value.shape != shape:
            return None
        pairs.append((variable, value))
    return pairs, plan.file.entries


def _by_name_skips(group: Any, model: Any, converted: list[tuple[Any, list[Any]]]) -> list[tuple[Any, str]]:
    """What tf-keras's by-name loading skipped (it says so on its logger only)."""
    from tf_keras.src.saving.legacy import hdf5_format

    names = set(hdf5_format.load_attributes_from_hdf5_group(group, "layer_names"))
    out: list[tuple[Any, str]] = []
    for layer in model.layers:
        if layer.weights and layer.name not in names:
            out.append((layer, "by_name: no layer of this name in the file"))
    for layer, values in converted:
        weights = hdf5_format._legacy_weights(layer)
        if len(values) != len(weights):
            out.append((layer, f"weight count mismatch: the layer has {len(weights)}, the file {len(values)}"))
            continue
        for variable, value in zip(weights, values):
            if tuple(variable.shape) != tuple(np.shape(value)):
                out.append(
                    (variable, f"shape mismatch: the variable is {tuple(variable.shape)}, the file has {np.shape(value)}")
                )
    return out


def _lookup(source: Prefetched | Deferred, group: Group, name: str, lazy_ok: bool = False) -> Any:
    """The value of ``group/name``: read already (``Prefetched``), or (``Deferred``) a
    ``LazyArray`` where ``lazy_ok``, else read now; datasets neither holds are read one by one."""
    path = f"{group.name.rstrip('/')}/{name}"
    value = _values(source).get(path)
    if value is None:
        value = np.asarray(group[name])
        source.origins[id(value)] = (path,)
    elif isinstance(value, LazyArray) and not lazy_ok:
        value = value.materialize()
    return value


# -- tf-keras's own v3 format: .weights.h5 and .keras ---------------------------------------


def load_v3(
    model: Any, sources: WeightSources, skip_mismatch: bool, threads: int | None, meter: Any = None
) -> tuple[int, report.Details]:
    """tf-keras's ``saving_lib.load_weights_only`` (``.weights.h5``, ``.keras``) over weightio.

    tf-keras's own traversal runs unchanged (its ``_load_state``, each object's
    ``load_own_variables``, its ``skip_mismatch`` warnings); ``tf.Variable.assign`` is recorded
    meanwhile and performed only if the traversal finished. Objects whose
    ``load_own_variables`` does more than assign (Normalization's ``finalize_state``,
    StringLookup's tf-idf constant) run theirs again once the values are in place.

    tf-keras's traversal calls every property of every layer (``dir()``), some of which
    serialize the whole model: it costs far more than the weights. As for Keras 3 (see
    ``v3.py``), the ``load_own_variables`` calls of a successful load are remembered and
    replayed while the model's structure is unchanged; a replay that raises falls back to
    the full traversal, which reports the error exactly. Returns the number of variables
    assigned and what the load did."""
    import tensorflow as tf
    from tf_keras.src import backend
    from tf_keras.src.engine import base_layer
    from tf_keras.src.optimizers import optimizer
    from tf_keras.src.saving import saving_lib

    (file,) = sources.files.values()
    plain = {base_layer.Layer.load_own_variables, optimizer.Optimizer.load_own_variables}
    recorded: list[tuple[Any, Any]] = []
    plan = _PLANS.get(model) if not skip_mismatch else None
    steps: list[tuple[Any, str]] | None = None
    source: Prefetched | Deferred | ReplayStore
    store: _Store | ReplayStore
    replay = plan is not None and plan.signature == _signature(model) and tf.executing_eagerly()

    def replayed(over: _Store | ReplayStore) -> bool:
        """The plan's ``load_own_variables`` calls over ``over``: objects that only assign
        get their values unread (LazyArray); then every value is read at once, large ones
        into the tensors the variables take over, before anything is assigned. False (and
        nothing assigned) if anything went wrong."""
        assert plan is not None
        try:
            with _recording_tf_assign(recorded):
                for trackable, inner_path in plan.steps:
                    over.lazy_ok = loads_with(trackable, plain)
                    trackable.load_own_variables(over.get(inner_path))
            over.lazy_ok = False
            read_and_assign_tensorflow(recorded, meter)
            return True
        except Exception:  # noqa: BLE001 - the full traversal below reports it exactly
            recorded.clear()
            return False

    def traversed(lazy: bool, plain_walk: bool = False) -> tuple[list[tuple[Any, str]], Prefetched | Deferred, _Store]:
        """tf-keras's traversal over the file, recorded, then assigned; remembers the plan.
        ``lazy``: objects whose ``load_own_variables`` is tf-keras's own (``plain``) are
        handed their values unread, read at the end (as in a replay); raises
        ``LazyReadFailed`` (nothing assigned) if a value handed out unread cannot be read.
        Otherwise every dataset is read first. ``plain_walk``: walk.py's
        ``plain_tf_keras_load_state`` instead of tf-keras's ``_load_state``; raises
        ``NotPlain`` (nothing assigned) where anything fails."""
        steps: list[tuple[Any, str]] = []
        source: Prefetched | Deferred
        source = Deferred(file, threads) if lazy else next(iter(prefetch_all({"": file}, threads, meter).values()))
        store = _Store(source)
        store.notes = notes = Notes()
        original_load_state = saving_lib._load_state

        def observed(trackable: Any, weights_store: Any, *args: Any, **kwargs: Any) -> Any:
            visited = kwargs.get("visited_trackables")
            if weights_store is store and hasattr(trackable, "load_own_variables") and not (visited and id(trackable) in visited):
                steps.append((trackable, kwargs.get("inner_path", args[1] if len(args) > 1 else "")))
                store.lazy_ok = lazy and loads_with(trackable, plain)
            return original_load_state(trackable, weights_store, *args, **kwargs)

        def load_observed(trackable: Any, inner_path: str) -> None:
            steps.append((trackable, inner_path))
            store.lazy_ok = lazy and loads_with(trackable, plain)
            trackable.load_own_variables(store.get(inner_path))

        ahead = [source] if isinstance(source, Deferred) and meter is None else []
        with reading_ahead(ahead, threads, tensorflow_allocator()):  # until the end of the read
            with (
                patched(saving_lib, _load_state=observed),
                faster_tf_keras_traversal() as helpers,
                _recording_tf_assign(recorded),
            ):
                try:
                    if plain_walk:
                        plain_tf_keras_load_state(model, load_observed, helpers)
                    else:
                        saving_lib._load_state(
                            model,
                            weights_store=store,
                            assets_store=None,
                            inner_path="",
                            skip_mismatch=skip_mismatch,
                            visited_trackables=set(),
                        )
                finally:
                    if store.read_failed:  # even where skip_mismatch took the error for a mismatch
                        raise LazyReadFailed
            store.notes = None
            store.lazy_ok = False
            new_plan = None
            if not skip_mismatch:
                new_plan = _Plan(_signature(model), steps, remembered=remember(notes, {"": file}, {"": _values(source)}, None))
            if lazy:
                try:
                    read_and_assign_tensorflow(recorded, meter)
                except Exception as exc:  # noqa: BLE001 - nothing was assigned
                    raise LazyReadFailed from exc
            elif tf.executing_eagerly():
                assign_tensorflow_pairs(recorded)
            else:
                backend.batch_set_value(recorded)
        if new_plan is not None:
            _PLANS[model] = new_plan
        return steps, source, store

    if replay:
        assert plan is not None
        # While the file is unchanged, the first load's selections answered from memory;
        # else the file looked up again.
        remembered = None if plan.remembered is None else plan.remembered.store({"": file}, None, threads)
        if remembered is not None and replayed(remembered):
            store = source = remembered
            steps = plan.steps
        else:
            source = Deferred(file, threads)
            store = _Store(source)
            store.notes = notes = Notes()
            if replayed(store):
                steps = plan.steps
                # This file's answers, for the next load (another file, or this one changed).
                _PLANS[model] = plan._replace(remembered=remember(notes, {"": file}, {"": source.index}, None))
            store.notes = None
    if steps is None:
        lazy = tf.executing_eagerly()
        try:
            if lazy and plain_tf_keras_traversal_known():
                try:
                    steps, source, store = traversed(lazy, plain_walk=True)
                except NotPlain:
                    recorded.clear()  # nothing was assigned: tf-keras's traversal does what it does
            if steps is None:
                steps, source, store = traversed(lazy)
        except LazyReadFailed:
            recorded.clear()  # nothing was assigned: read first, which reports the problem
            steps, source, store = traversed(False)
    for trackable, inner_path in steps:
        if not loads_with(trackable, plain):
            trackable.load_own_variables(store.get(inner_path))
    details = report.Details(model, report.compact(recorded, source.origin_map()), source.entries())
    return len({id(v) for v, _ in recorded}), details


# Model -> the plan of its last v3 load: the objects whose load_own_variables ran, with their store paths.
_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _signature(model: Any, flat: list[Any] | None = None, metrics: bool = True) -> tuple[Any, ...]:
    """What a remembered plan (v3 or legacy) relies on: the identity of every layer,
    variable, metric (v3 files hold metrics' variables; legacy files do not, and
    ``model.metrics`` walks the model again) and of the optimizer, and the trainable flags
    (a legacy file's values go to each layer's trainable weights first). ``flat``: the
    model's layers as ``model._flatten_layers()`` lists them, when the caller has them."""
    if flat is None:
        flat = list(model._flatten_layers(include_self=True, recursive=True))
    # Each layer's own variable lists (``model.variables`` would walk the model again). Flat
    # tuples, as v3.signature's.
    variables = [v for layer in flat for v in (*layer._trainable_weights, *layer._non_trainable_weights)]
    metric_ids = tuple(id(m) for m in getattr(model, "metrics", ())) if metrics else ()
    return (
        tuple(map(id, flat)),
        tuple([bool(layer.trainable) for layer in flat]),
        tuple(map(id, variables)),
        tuple([bool(v.trainable) for v in variables]),
        metric_ids,
        id(getattr(model, "optimizer", None)),
    )


class _Store:
    """What tf-keras's ``H5IOStore`` gives ``_load_state`` in read mode: ``get(path)`` is
    the ``<path>/vars`` group (as a dict of arrays), or ``{}`` where there is none."""

    def __init__(self, source: Prefetched | Deferred) -> None:
        self.source = source
        self.lazy_ok = False  # whether values may be handed out unread (see _lookup)
        self.notes: Notes | None = None  # a first load's selections, for replays (remembered.py)
        self.read_failed = False  # a value handed out unread could not be read when asked for

    def __bool__(self) -> bool:
        return True

    def get(self, path: str) -> Any:
        root = self.source.file
        group = None
        # The common case in one native call (every part a hard link to a group); tf-keras's
        # own lookups otherwise (it follows any link).
        found = root._hard_group(f"{path}/vars") if path else None
        if found is not None:
            group, names = found
        else:
            if not path:
                group = root["vars"]
            elif path in root and "vars" in root[path]:
                group = root[path]["vars"]
            names = None if group is None else group.keys()
        if self.notes is not None:
            self.notes.selected(path, [] if group is None else [("", group, names)])
        return {} if group is None else _Vars(self, group, names)

    def close(self) -> None:
        pass


class _Vars:
    """One ``vars`` group as tf-keras's layers read it: ``keys()``, ``len()``, ``store["0"]``."""

    def __init__(self, store: _Store, group: Group, names: list[str]) -> None:
        self.store = store
        self.group = group
        self.names = names  # the group's member names, listed once

    def keys(self) -> Any:
        return list(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, key: object) -> bool:
        return key in self.group

    def __getitem__(self, key: str) -> Any:
        return handed_out(_lookup(self.store.source, self.group, key, lazy_ok=True), self.store)


@contextlib.contextmanager
def _recording_tf_assign(recorded: list[tuple[Any, Any]]) -> Iterator[None]:
    """Within the block, ``assign`` on this thread's eager TensorFlow resource variables
    (tf-keras's weights) only converts the value (TensorFlow's own errors for shapes and
    dtypes it cannot take) and records the pair; other threads assign as ever."""
    import tensorflow as tf
    from tensorflow.python.ops import resource_variable_ops

    owner = threading.get_ident()

    def recorder(original: Any) -> Any:
        def record(self: Any, value: Any, use_locking: Any = None, name: Any = None, read_value: bool = True) -> Any:
            if threading.get_ident() != owner or not tf.executing_eagerly():
                return original(self, value, use_locking, name, read_value)
            shape = tuple(getattr(value, "shape", np.shape(value)))
            if not self.shape.is_compatible_with(shape):
                return original(self, value, use_locking, name, read_value)  # raises TensorFlow's error
            if isinstance(value, LazyArray):  # read (converted to the variable's dtype) later
                recorded.append((self, value))
                return self if read_value else None
            try:
                converted = np.asarray(value, dtype=self.dtype.as_numpy_dtype)
            except (TypeError, ValueError):
                return original(self, value, use_locking, name, read_value)  # raises TensorFlow's error
            recorded.append((self, converted))
            return self if read_value else None

        return record

    # ResourceVariable (tf.Variable's class) defines its own assign, over the base class's.
    classes = [c for c in (resource_variable_ops.BaseResourceVariable, resource_variable_ops.ResourceVariable) if "assign" in vars(c)]
    originals = {c: vars(c)["assign"] for c in classes}
    with LOAD_LOCK:
        for c in classes:
            c.assign = recorder(originals[c])
        try:
            yield
        finally:
            for c in classes:
                c.assign = originals[c]
