"""Keras 3's native weights (``.weights.h5``, ``.keras``, sharded ``.weights.json``) through
Keras's own traversal (``saving_lib._load_state``) over a store backed by weightio."""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from keras.src.saving import saving_lib

from ..file import Group
from .assign import ahead_allocator, loads_with, patched, recording
from .formats import WeightSources
from . import report
from .prefetch import Deferred, LazyReadFailed, handed_out, prefetch_all, reading_ahead
from .remembered import Notes, Remembered, remember
from .safe import safe_group
from .walk import NotPlain, faster_traversal, plain_load_state, plain_traversal_known


def _safe_vars_group(root: Group, path: str) -> Group | None:
    """``<path>/vars`` as H5IOStore.get finds it, with Keras's safety checks (their errors),
    including the tf-keras 2.13 fallback (``_layer_checkpoint_dependencies``)."""
    if path in root:
        group = safe_group(root, path)
        if "vars" in group:
            return safe_group(group, "vars")
    if "_layer_checkpoint_dependencies" in root:
        path = path.replace("layers", "_layer_checkpoint_dependencies")
        if path in root:
            group = safe_group(root, path)
            if "vars" in group:
                return safe_group(group, "vars")
    return None


class WeightioStore(saving_lib.H5IOStore):
    """What ``H5IOStore``/``ShardedH5IOStore`` give ``_load_state`` in read mode: ``get(path)``
    selects the ``<path>/vars`` group(s); the store then acts as a dict of their arrays."""

    def __init__(
        self, sources: WeightSources, threads: int | None = None, deferred: bool = False, meter: Any = None
    ) -> None:
        # H5IOStore.__init__ opens an h5py file: not called on purpose.
        self.mode = "r"
        self.archive = None
        self.io_file = None
        self.sources = sources
        sharded = sources.weight_map is not None  # report entries then name their shard
        self.prefetched: dict[str, Any]
        if deferred:
            self.prefetched = {
                name: Deferred(f, threads, prefix=f"{name}:" if sharded else "") for name, f in sources.files.items()
            }
        else:
            self.prefetched = prefetch_all(sources.files, threads, meter, prefixed=sharded)
        # The selected groups: (their file's source, the group, its member names as a set).
        self._entries: list[tuple[Any, Group, frozenset[str]]] = []
        self._keys: list[str] = []  # their member names, in order
        # Whether values may be handed out unread (LazyArray): only to objects known to
        # do nothing with them but assign them (see load()).
        self.lazy_ok = False
        self.handed: list[int] = []  # ids of values handed out (to learn which objects are pure)
        self.notes: Notes | None = None  # a first load's selections, for replays (remembered.py)
        self.read_failed = False  # a value handed out unread could not be read when asked for

    def __bool__(self) -> bool:
        return True

    # -- selecting an entry --------------------------------------------------------------
    @staticmethod
    def _vars_group(root: Group, path: str) -> tuple[Group, list[str]] | None:
        """H5IOStore.get's lookup in one file, including the tf-keras 2.13 fallback: the
        ``vars`` group and its member names, or None."""
        if path:
            # The common case in one native call: every part a hard link to a group.
            found = root._hard_group(f"{path}/vars")
            if found is not None:
                return found
            group = _safe_vars_group(root, path)
        else:
            group = safe_group(root, "vars") if "vars" in root else None
        return None if group is None else (group, group.keys())

    def get(self, path: str) -> WeightioStore:
        self._entries = []
        self._keys = []
        weight_map = self.sources.weight_map
        if weight_map is None:
            names = list(self.prefetched)
        else:
            parsed = path or "/vars"
            listed = weight_map.get(parsed) or weight_map.get(f"/{parsed}/vars")
            names = [] if listed is None else (listed if isinstance(listed, list) else [listed])
        selected = []
        for name in names:
            pre = self.prefetched[name]
            found = self._vars_group(pre.file, path)
            if found is not None:
                # The group's member names, listed once (objects look up each variable).
                group, keys = found
                self._entries.append((pre, group, frozenset(keys)))
                self._keys += keys
                selected.append((name, group, keys))
        if self.notes is not None:
            self.notes.selected(path, selected)
        return self

    def has_path(self, path: str) -> bool:
        weight_map = self.sources.weight_map
        if weight_map is None:
            return any(path in pre.file for pre in self.prefetched.values())
        leading = f"/{path}"
        return any(k == leading or k.startswith(leading + "/") for k in weight_map)

    def close(self) -> None:
        self.sources.close()

    def details(self, model: Any, pairs: list[tuple[Any, Any]], skipped: list[tuple[Any, str]]) -> report.Details:
        """What the load did (call while the handed-out values are alive)."""
        origins: dict[int, report.Sources] = {}
        entries: list[str] = []
        for pre in self.prefetched.values():
            origins.update(pre.origin_map())
            entries += pre.entries()
        return report.Details(model, report.compact(pairs, origins), entries, skipped)

    # -- the selected entry as a dict ----------------------------------------------------
    def __len__(self) -> int:
        return sum(len(names) for _, _, names in self._entries)

    def keys(self) -> list[str]:
        return list(self._keys)

    @staticmethod
    def _member(key: object, group: Group, names: frozenset[str]) -> bool:
        if isinstance(key, str) and "/" not in key:
            return key in names
        return key in group  # a path or an odd key: the group's own lookup

    def __contains__(self, key: object) -> bool:
        return any(self._member(key, group, names) for _, group, names in self._entries)

    def __getitem__(self, key: str) -> Any:
        for pre, group, names in self._entries:
            if self._member(key, group, names):
                value = handed_out(pre.dataset(group, key), self)
                self.handed.append(id(value))
                return value
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        raise ValueError("Setting a value is only allowed in write mode.")


def load(
    model: Any,
    sources: WeightSources,
    skip_mismatch: bool,
    objects_to_skip: Any,
    threads: int | None,
    meter: Any = None,
) -> tuple[int, report.Details]:
    """``saving_lib.load_weights_only`` with weightio's store and all-or-nothing assignment.
    Returns the number of variables assigned and what the load did."""
    if not model.built:
        raise ValueError(
            "You are loading weights into a model that has not yet been built. "
            "Try building the model first by calling it on some data or "
            "by using `build()`."
        )
    plan = _PLANS.get(model) if objects_to_skip is None else None
    if plan is not None and plan.signature == signature(model):
        replayed = _replay_remembered(model, plan, sources, threads, meter)
        if replayed is not None:
            return replayed
        try:
            store = WeightioStore(sources, threads, deferred=True)
            store.notes = Notes()
            with recording() as recorder:
                for (saveable, inner_path), pure in zip(plan.steps, plan.pure):
                    store.lazy_ok = pure
                    saveable.load_own_variables(store.get(inner_path))
            # This file's answers, for the next load (another file, or this one changed).
            plan.remembered = _remembered(store, sources)
            assigned = recorder.apply(model, meter)
            return assigned, store.details(model, recorder.pairs, [])
        except Exception:  # noqa: BLE001 - Keras's own traversal below reports it exactly
            pass
    if objects_to_skip is None:
        try:
            if plain_traversal_known():
                try:
                    return _traverse(model, sources, skip_mismatch, None, threads, meter, lazy=True, plain=True)
                except NotPlain:
                    pass  # Keras's own traversal, below, does what Keras does
            return _traverse(model, sources, skip_mismatch, None, threads, meter, lazy=True)
        except LazyReadFailed:
            pass  # read everything first, as below: it reports the file's problem exactly
    return _traverse(model, sources, skip_mismatch, objects_to_skip, threads, meter, lazy=False)


def _traverse(
    model: Any,
    sources: WeightSources,
    skip_mismatch: bool,
    objects_to_skip: Any,
    threads: int | None,
    meter: Any,
    lazy: bool,
    plain: bool = False,
) -> tuple[int, report.Details]:
    """Keras's own traversal over weightio's store; remembers the plan for replays.
    ``plain``: walk.py's ``plain_load_state`` instead of Keras's ``_load_state``, giving up
    with ``NotPlain`` where anything fails (the caller then runs Keras's).

    ``lazy``: the values given to Keras's own ``load_own_variables`` of the layers and
    optimizers that only hand them to ``assign`` (``_assigns_only``) are read at the end, in
    one parallel pass, as in a replay; all the others are read when asked for. Otherwise
    every dataset is read first, in one parallel pass. A lazy load where a read fails raises
    ``LazyReadFailed`` having assigned nothing: the caller then loads the other way, which
    reports the file's problem as before (warnings of the traversal come twice then)."""
    store = WeightioStore(sources, threads, deferred=lazy, meter=None if lazy else meter)
    store.notes = Notes() if objects_to_skip is None else None
    failed: set[int] = set()
    visited = {id(o) for o in objects_to_skip} if objects_to_skip is not None else set()
    errors: dict[int, Any] = {}
    steps: list[tuple[Any, str]] = []
    handed: list[list[int]] = []
    ahead = list(store.prefetched.values()) if lazy and meter is None else []
    with reading_ahead(ahead, threads, ahead_allocator()):  # until the end of the read
        with recording() as recorder, _observing(steps, store, handed, lazy) as observed:
            try:
                if plain:
                    observed(model)
                else:
                    saving_lib._load_state(
                        model,
                        weights_store=store,
                        assets_store=None,
                        inner_path="",
                        skip_mismatch=skip_mismatch,
                        visited_saveables=visited,
                        failed_saveables=failed,
                        error_msgs=errors,
                    )
            finally:
                if store.read_failed:  # even where Keras took the error for a mismatch
                    raise LazyReadFailed
            if failed:
                saving_lib._raise_loading_failure(errors, warn_only=skip_mismatch)
        plan = None
        if not failed and objects_to_skip is None:
            # An object is "pure" when every value it was handed went straight into an assign.
            assigned = {id(value) for _, value in recorder.pairs}
            pure = [all(i in assigned for i in ids) for ids in handed]
            plan = _Plan(signature(model), steps, pure, _remembered(store, sources))
        if lazy:
            try:
                count = recorder.apply(model, meter)
            except Exception as exc:  # noqa: BLE001 - nothing was assigned (see Recorder.apply)
                raise LazyReadFailed from exc
        else:
            count = recorder.apply(model)
    if plan is not None:
        _PLANS[model] = plan
    skipped: list[tuple[Any, str]] = [(obj, "objects_to_skip") for obj in objects_to_skip or ()]
    skipped += [(obj, f"skip_mismatch: {error}") for obj, error in errors.values()]
    return count, store.details(model, recorder.pairs, skipped)


@functools.cache
def _assigns_only() -> frozenset[Any]:
    """Keras's own ``load_own_variables`` that do nothing with the store's values but pass
    each to a variable's ``assign``: ``Layer``'s (most layers), the convolutions', ``Dense``'s,
    ``EinsumDense``'s, ``Embedding``'s and the optimizers'. Objects loading through one of
    these (not overridden) may be handed values unread on a first load."""
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.core.dense import Dense
    from keras.src.layers.core.einsum_dense import EinsumDense
    from keras.src.layers.core.embedding import Embedding
    from keras.src.layers.layer import Layer
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    owners = (Layer, BaseConv, Dense, EinsumDense, Embedding, BaseOptimizer)
    return frozenset(owner.__dict__["load_own_variables"] for owner in owners)


# -- the traversal plan ---------------------------------------------------------------------
# Keras's traversal (``_walk_saveable`` over ``dir()`` of every object) costs far more than
# reading the weights. Its result depends only on the model's structure, so after one
# successful load weightio remembers which objects loaded their variables from which store
# path, and replays exactly those ``load_own_variables`` calls while the structure is
# unchanged. Any error in a replay falls back to Keras's full traversal, which reports it.


class _Plan:
    def __init__(
        self,
        signature: tuple[Any, ...],
        steps: list[tuple[Any, str]],
        pure: list[bool],
        remembered: Remembered | None = None,
    ) -> None:
        self.signature = signature
        self.steps = steps
        self.pure = pure
        self.remembered = remembered  # the store's answers, while the files are unchanged


def _remembered(store: WeightioStore, sources: WeightSources) -> Remembered | None:
    if store.notes is None:
        return None
    arrays = {name: getattr(pre, "arrays", None) or getattr(pre, "index", {}) for name, pre in store.prefetched.items()}
    return remember(store.notes, sources.files, arrays, sources.weight_map)


def _replay_remembered(
    model: Any, plan: _Plan, sources: WeightSources, threads: int | None, meter: Any
) -> tuple[int, report.Details] | None:
    """The plan's ``load_own_variables`` calls over the remembered store, if the files are
    unchanged; None otherwise, or when anything goes differently (the caller then loads
    the ordinary way, which reports errors exactly)."""
    if plan.remembered is None:
        return None
    try:
        store = plan.remembered.store(sources.files, sources.weight_map, threads)
        if store is None:
            return None
        with recording() as recorder:
            for (saveable, inner_path), pure in zip(plan.steps, plan.pure):
                store.lazy_ok = pure
                saveable.load_own_variables(store.get(inner_path))
        assigned = recorder.apply(model, meter)
    except Exception:  # noqa: BLE001 - nothing was assigned: the ordinary load reports it
        return None
    return assigned, report.Details(model, report.compact(recorder.pairs, store.origin_map()), store.entries(), [])


_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def signature(model: Any) -> tuple[Any, ...]:
    """What a remembered plan (here, or legacy.py's) relies on: the identity of every layer
    and variable with its trainable flag (a legacy file's values go to each layer's
    trainable weights first), and of the optimizer."""
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    variables = model.variables
    # Flat tuples of ints and booleans, not a tuple per object: what a plan keeps alive is
    # scanned by the cyclic collector after the load (10,000 variables: 12,500 tuples fewer).
    return (
        tuple(map(id, layers)),
        tuple([bool(layer.trainable) for layer in layers]),
        tuple(map(id, variables)),
        tuple([bool(v.trainable) for v in variables]),
        id(getattr(model, "optimizer", None)),
    )


@contextlib.contextmanager
def _observing(
    steps: list[tuple[Any, str]], store: WeightioStore, handed: list[list[int]], lazy: bool = False
) -> Iterator[Callable[[Any], None]]:
    """Records, in order, each (object, path) whose ``load_own_variables`` Keras calls, and
    the ids of the values the store hands each of them. ``lazy``: unread values are handed
    to the objects whose ``load_own_variables`` only assigns them (``_assigns_only``).
    Gives ``plain_load_state`` for the store, observed likewise."""
    original = saving_lib._load_state
    pure_loaders = _assigns_only() if lazy else frozenset()

    def observe(saveable: Any, inner_path: str) -> None:
        steps.append((saveable, inner_path))
        store.handed = []
        handed.append(store.handed)
        store.lazy_ok = loads_with(saveable, pure_loaders)

    def observed(saveable: Any, weights_store: Any, assets_store: Any, inner_path: str, **kw: Any) -> Any:
        visited = kw.get("visited_saveables")
        ours = weights_store is store  # another thread's load through Keras is not observed
        if ours and not (visited and id(saveable) in visited) and hasattr(saveable, "load_own_variables"):
            observe(saveable, inner_path)
        return original(saveable, weights_store, assets_store, inner_path, **kw)

    def load(saveable: Any, inner_path: str) -> None:
        observe(saveable, inner_path)
        saveable.load_own_variables(store.get(inner_path))

    with patched(saving_lib, _load_state=observed), faster_traversal() as helpers:
        yield functools.partial(plain_load_state, load=load, helpers=helpers)
