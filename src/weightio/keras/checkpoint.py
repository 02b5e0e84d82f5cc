"""TensorFlow checkpoints (tf-keras ``model.save_weights("ckpt")``, ``tf.train.Checkpoint``)
into Keras 3 models on any backend and into tf-keras models, read natively.

A checkpoint stores an object graph: named edges from the saved root (the model) down to
variables. Restoring walks that graph from the root and the model side by side:

* ``layer_with_weights-<j>`` (Functional and Sequential models): the j-th of the model's
  layers that have weights, in ``model.layers`` order, as tf-keras numbered them;
  ``layer-<i>`` edges lead to the same objects and are not followed again;
* any other edge: the attribute of that name (subclassed models: ``enc``, ``blocks`` and
  ``blocks/0`` for lists; layers: ``cell``, ``forward_layer``, ``_query_dense``...);
* an edge to a variable: the layer's own variable of that name (``kernel``, ``gamma``,
  ``moving_mean``), else the attribute of that name. If a layer is then left with exactly
  one unmatched checkpoint value and one unmatched variable of the same shape, they are
  matched (a variable renamed between Keras versions, e.g. DepthwiseConv2D's
  ``depthwise_kernel``, ``kernel`` in Keras 3);
* ``optimizer`` and ``save_counter`` edges, and optimizer slot variables, are never
  followed: ``load_weights`` restores weights, not training state;
* a SavedModel directory's ``variables/variables`` checkpoint (tf-keras ``model.save("dir")``)
  restores the same way; the serving objects SavedModel adds to each layer (``keras_api``,
  ``variables`` lists, functions) only lead to variables reached otherwise, and are not
  followed.

tf-keras models are walked through TensorFlow's own object graph edges
(``_trackable_children``), so they match exactly what ``tf.train.Checkpoint`` matches, and
with tf-keras's leniency: checkpoint values without an object are left unused. Keras 3
models are matched strictly, like Keras's own topological loading: a layer count, a
missing object or variable, or a shape that differs raises ``ValueError`` naming both
sides. Shapes are checked for every tf-keras match too. Nothing is assigned before
everything matched and every value was read (all-or-nothing).
"""

from __future__ import annotations

import os
import re
import time
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import tf as wtf
from ..errors import UnsupportedFeatureError
from ..file import _gc_paused
from .assign import read_in_place, usable_destinations
from .formats import Format
from .prefetch import ReadAhead, ahead_budget, ahead_threads, read_ahead_within
from .report import CheckpointLoadStatus, Listed
from . import tree_check

# Edges whose objects hold training state, not weights.
_TRAINING_STATE_EDGES = frozenset({"optimizer", "save_counter"})
# What a SavedModel (tf-keras ``model.save("dir")``) adds to every layer's object for
# serving: lists of the same variables, the layer's functions, ``keras_api`` (more lists).
# Nothing there is not also reached through the checkpoint's own edges; in a SavedModel's
# graph these edges are not followed.
_SAVED_MODEL_EDGES = frozenset({
    "keras_api", "variables", "trainable_variables", "non_trainable_variables", "regularization_losses",
    "layers", "metrics", "layer_regularization_losses", "layer_metrics", "signatures", "__call__",
    "_default_save_signature", "call_and_return_all_conditional_losses", "call_and_return_conditional_losses",
})
_LAYER_WITH_WEIGHTS = re.compile(r"layer_with_weights-(\d+)")
_LAYER = re.compile(r"layer-(\d+)")
_VALUE = "VARIABLE_VALUE"

_MISSING = object()  # the model has no counterpart for this edge
_SKIP = object()  # an edge not to follow (a second name for an object reached otherwise)

SKIP_MISMATCH_NEEDS_BY_NAME = (
    "When calling model.load_weights, skip_mismatch can only be set to True when by_name is True."
)
BY_NAME_NOT_SUPPORTED = (
    "Weights may only be loaded based on topology into Models when loading TensorFlow-formatted "
    "weights (got by_name=True to load_weights)."
)


class NoObjectGraph(Exception):
    """A name-based checkpoint (``tf.compat.v1.train.Saver``): nothing to walk."""


# ---------------------------------------------------------------------------------------
# the two Keras families
# ---------------------------------------------------------------------------------------


class _Family:
    """What both families share: ``Layer`` is that Keras's layer class."""

    Layer: Any

    def describe(self, obj: Any) -> str:
        if isinstance(obj, self.Layer):
            return f"{type(obj).__name__} '{obj.name}'"
        return type(obj).__name__


class _Keras3(_Family):
    """Keras 3 objects on any backend: matched by Keras's attribute and variable names."""

    strict = True

    def __init__(self) -> None:
        import keras

        self.Layer = keras.Layer
        self.Model = keras.Model
        self.Variable = keras.Variable
        self._weighted: dict[int, tuple[Any, list[Any]]] = {}  # model id -> (model, its layers with weights)

    def is_variable(self, x: Any) -> bool:
        return isinstance(x, self.Variable)

    def is_object(self, x: Any) -> bool:
        return isinstance(x, (self.Layer, list, tuple, dict))

    def shape(self, v: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in v.shape)

    def numpy_dtype(self, v: Any) -> Any:
        from .assign import _numpy_dtype

        return _numpy_dtype(v)

    def path(self, v: Any) -> str:
        return str(v.path)

    def weights(self, obj: Any) -> list[Any]:
        if isinstance(obj, self.Layer):
            return list(obj.weights)
        if isinstance(obj, dict):
            obj = list(obj.values())
        if isinstance(obj, (list, tuple)):
            return [w for item in obj for w in (self.weights(item) if not self.is_variable(item) else [item])]
        return [obj] if self.is_variable(obj) else []

    def own_variables(self, obj: Any) -> list[Any]:
        if not isinstance(obj, self.Layer):
            return []
        return list(obj._trainable_variables) + list(obj._non_trainable_variables)

    def weighted_layers(self, obj: Any) -> list[Any] | None:
        if not isinstance(obj, self.Model):
            return None
        cached = self._weighted.get(id(obj))
        if cached is None or cached[0] is not obj:
            cached = self._weighted[id(obj)] = (obj, [layer for layer in obj.layers if layer.weights])
        return cached[1]

    def child(self, obj: Any, name: str, is_value: bool) -> Any:
        m = _LAYER_WITH_WEIGHTS.fullmatch(name)
        layers = self.weighted_layers(obj) if m or _LAYER.fullmatch(name) else None
        if layers is not None:
            if m is None:
                return _SKIP
            j = int(m.group(1))
            return layers[j] if j < len(layers) else _MISSING
        found: Any = _MISSING
        if isinstance(obj, (list, tuple)):
            if name.isdigit() and int(name) < len(obj):
                found = obj[int(name)]
        elif isinstance(obj, dict):
            found = obj.get(name, _MISSING)
        else:
            if is_value:
                for v in self.own_variables(obj):
                    if v.name == name:
                        return v
            try:
                found = getattr(obj, name)
            except Exception:  # noqa: BLE001 - a property that cannot answer: no such child
                found = _MISSING
        if found is _MISSING:
            return _MISSING
        if is_value:
            return found if self.is_variable(found) else _MISSING
        return found if self.is_object(found) and not self.is_variable(found) else _MISSING

    def all_layers(self, model: Any) -> Iterable[Any]:
        return model._flatten_layers(include_self=True, recursive=True)

    def signature(self, model: Any) -> tuple[Any, ...]:
        from .v3 import signature

        return signature(model)

    def ahead_allocator(self) -> Any:
        from .assign import ahead_allocator

        return ahead_allocator()

    def destinations(self) -> Any:
        from .assign import _assigner

        assigner = _assigner()  # torch's and TensorFlow's have destinations
        return assigner if hasattr(assigner, "destinations_for") else None

    def assign(self, model: Any, pairs: list[tuple[Any, np.ndarray]], read_into: Any, written: list[Any]) -> None:
        from .assign import Recorder

        recorder = Recorder()
        recorder.pairs = pairs
        recorder.apply(model, read_into=read_into, written=written)


class _TfKeras(_Family):
    """tf-keras objects: TensorFlow's own checkpoint edges (``_trackable_children``)."""

    strict = False

    def __init__(self) -> None:
        import tensorflow as tf
        from tf_keras.src.engine.base_layer import Layer

        self.tf = tf
        self.Layer = Layer
        self._children: dict[int, tuple[Any, dict[str, Any]]] = {}

    def is_variable(self, x: Any) -> bool:
        return isinstance(x, self.tf.Variable)

    def shape(self, v: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in v.shape.as_list())

    def numpy_dtype(self, v: Any) -> Any:
        return np.dtype(v.dtype.as_numpy_dtype)

    def path(self, v: Any) -> str:
        return str(v.name)

    def weights(self, obj: Any) -> list[Any]:
        if self.is_variable(obj):
            return [obj]
        return list(getattr(obj, "weights", []))

    def own_variables(self, obj: Any) -> list[Any]:
        return []

    def weighted_layers(self, obj: Any) -> list[Any] | None:
        return None

    def child(self, obj: Any, name: str, is_value: bool) -> Any:
        cached = self._children.get(id(obj))
        if cached is None:
            children_of = getattr(obj, "_trackable_children", None)
            children = children_of(save_type="checkpoint") if children_of is not None else {}
            cached = self._children[id(obj)] = (obj, dict(children))
        found = cached[1].get(name, _MISSING)
        if found is _MISSING or self.is_variable(found) != is_value:
            return _MISSING
        return found

    def all_layers(self, model: Any) -> Iterable[Any]:
        return model._flatten_layers(include_self=True, recursive=True)

    def signature(self, model: Any) -> tuple[Any, ...]:
        from .tf_keras import _signature

        return _signature(model)

    def ahead_allocator(self) -> Any:
        from .assign import tensorflow_allocator

        return tensorflow_allocator() if self.tf.executing_eagerly() else None

    def destinations(self) -> Any:
        from .assign import TensorFlowDestinations

        return TensorFlowDestinations(lambda variable: variable) if self.tf.executing_eagerly() else None

    def assign(self, model: Any, pairs: list[tuple[Any, np.ndarray]], read_into: Any, written: list[Any]) -> None:
        from tf_keras.src import backend

        from .assign import assign_tensorflow_pairs

        if self.tf.executing_eagerly():
            assign_tensorflow_pairs(pairs)  # as batch_set_value does, through the assign op
            if written:
                read_into.written(written)
        else:
            backend.batch_set_value(pairs)


# ---------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------


def _value_key(node: wtf.TrackableObject) -> str | None:
    for a in node.attributes:
        if a.name == _VALUE:
            return a.checkpoint_key
    return None


class _Matcher:
    """Walks checkpoint nodes and model objects together; collects (variable, key) pairs."""

    def __init__(self, reader: wtf.CheckpointReader, graph: wtf.ObjectGraph, family: Any) -> None:
        self.reader = reader
        self.graph = graph
        self.family = family
        self.prefix = reader.prefix
        self.bound: dict[int, tuple[Any, str]] = {}  # id(variable) -> (variable, key)
        self.keys: dict[str, int] = {}  # key -> id(variable)
        self.visited: dict[int, Any] = {}  # node id -> model object
        self._holds: dict[int, bool] = {}
        self.unfollowed = _TRAINING_STATE_EDGES | (_SAVED_MODEL_EDGES if _is_saved_model(graph) else frozenset())

    def holds_values(self, node_id: int) -> bool:
        """Whether a variable is reachable from this node (training state excluded)."""
        known = self._holds.get(node_id)
        if known is not None:
            return known
        self._holds[node_id] = False  # a cycle adds nothing
        node = self.graph[node_id]
        holds = _value_key(node) is not None or any(
            self.holds_values(c.node_id) for c in node.children if c.local_name not in self.unfollowed
        )
        self._holds[node_id] = holds
        return holds

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} (restoring TensorFlow checkpoint {self.prefix})")

    def bind(self, variable: Any, key: str, where: str) -> None:
        family = self.family
        mine, theirs = family.shape(variable), tuple(self.reader.shape(key))
        if mine != theirs:
            raise self.error(
                f"Shape mismatch for variable {family.path(variable)}: the variable has shape {mine}, "
                f"the checkpoint value '{where}' has shape {theirs}"
            )
        previous = self.bound.get(id(variable))
        if previous is not None and previous[1] != key:
            raise self.error(
                f"Variable {family.path(variable)} would get two checkpoint values: "
                f"'{previous[1]}' and '{key}'"
            )
        self.bound[id(variable)] = (variable, key)
        self.keys[key] = id(variable)

    def walk(self, node_id: int, obj: Any, where: str) -> None:
        family = self.family
        seen = self.visited.get(node_id)
        if seen is not None:
            if seen is not obj and family.strict:
                raise self.error(
                    f"Checkpoint object '{where}' is reached twice and matches two different objects "
                    f"of the model: {family.describe(seen)} and {family.describe(obj)}"
                )
            return
        self.visited[node_id] = obj
        node = self.graph[node_id]
        key = _value_key(node)
        if key is not None:
            if not family.is_variable(obj):
                raise self.error(f"Checkpoint value '{where}' matches {family.describe(obj)}, which is not a variable")
            self.bind(obj, key, where)
            return
        self._check_layer_count(node, obj, where)
        missing: list[tuple[str, str, int]] = []
        for edge in node.children:
            name = edge.local_name
            if name in self.unfollowed or not self.holds_values(edge.node_id):
                continue
            is_value = _value_key(self.graph[edge.node_id]) is not None
            target = family.child(obj, name, is_value)
            if target is _SKIP:
                continue
            here = f"{where}/{name}" if where else name
            if target is _MISSING:
                missing.append((name, here, edge.node_id))
            else:
                self.walk(edge.node_id, target, here)
        # Edges to objects matched through another edge (tf-keras saves a "root" edge back
        # to the model, "layer-<i>" aliases) need no counterpart of their own.
        missing = [m for m in missing if m[2] not in self.visited]
        for name, here, node_id in missing:
            if _value_key(self.graph[node_id]) is None and family.strict:
                raise self.error(
                    f"Checkpoint object '{here}' has no counterpart in the model: "
                    f"{family.describe(obj)} has no layer or attribute '{name}'"
                )
        unmatched_values = [(here, node_id) for _, here, node_id in missing if _value_key(self.graph[node_id]) is not None]
        if unmatched_values:
            self._match_leftovers(obj, unmatched_values, where)

    def _check_layer_count(self, node: wtf.TrackableObject, obj: Any, where: str) -> None:
        if not self.family.strict:
            return
        layers = self.family.weighted_layers(obj)
        saved = sum(1 for c in node.children if _LAYER_WITH_WEIGHTS.fullmatch(c.local_name))
        if layers is None or not saved or saved == len(layers):
            return
        at = f" at '{where}'" if where else ""
        raise self.error(
            f"Layer count mismatch when loading weights from checkpoint{at}: {self.family.describe(obj)} has "
            f"{len(layers)} layers with weights, the checkpoint has {saved} "
            f"({', '.join(layer.name for layer in layers)} in the model)"
        )

    def _match_leftovers(self, obj: Any, values: list[tuple[str, int]], where: str) -> None:
        """Checkpoint values of ``obj`` that no variable name matched: one value and one
        variable of the same shape left over are the same weight renamed; anything else is
        an error (strict) or left unused (tf-keras)."""
        family = self.family
        spare = [v for v in family.own_variables(obj) if id(v) not in self.bound]
        if len(values) == 1 and len(spare) == 1:
            here, node_id = values[0]
            key = _value_key(self.graph[node_id])
            assert key is not None
            if tuple(self.reader.shape(key)) == family.shape(spare[0]):
                self.visited[node_id] = spare[0]
                self.bind(spare[0], key, here)
                return
        if family.strict:
            names = [here.rsplit("/", 1)[-1] for here, _ in values]
            raise self.error(
                f"{family.describe(obj)}{f' (checkpoint object {where!r})' if where else ''} has no variable "
                f"for checkpoint values {names}; its unmatched variables are "
                f"{[family.path(v) for v in spare]}"
            )

    def check_complete(self, targets: list[Any]) -> None:
        """Strict families: every variable of the restored objects got a value."""
        if not self.family.strict:
            return
        missing: list[str] = []
        for target in targets:
            for v in self.family.weights(target):
                if id(v) not in self.bound and self.family.path(v) not in missing:
                    missing.append(self.family.path(v))
        if missing:
            shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
            raise self.error(f"{len(missing)} model variables have no value in the checkpoint: {shown}")


# ---------------------------------------------------------------------------------------
# assignment_map
# ---------------------------------------------------------------------------------------


def _unescape(part: str) -> str:
    """An escaped local name (as in checkpoint keys) back to the name: ".S" is "/", ".." is "."."""
    return re.sub(r"\.(.)", lambda m: "/" if m.group(1) == "S" else m.group(1), part)


def _checkpoint_node(graph: wtf.ObjectGraph, path: str, prefix: str) -> int:
    path = path.split("/.ATTRIBUTES/", 1)[0].strip("/")
    parts = [_unescape(p) for p in path.split("/")] if path else []
    node_id = graph.resolve(parts)
    if node_id is None:
        raise ValueError(f"assignment_map: checkpoint {prefix} has no object '{path}'")
    return node_id


def _model_target(model: Any, target: Any, family: Any) -> Any:
    layers = list(family.all_layers(model))
    if isinstance(target, str):
        found = [layer for layer in layers if layer.name == target]
        if len(found) != 1:
            what = "no layer" if not found else f"{len(found)} layers"
            raise ValueError(f"assignment_map: model '{model.name}' has {what} named '{target}'")
        return found[0]
    if family.is_variable(target):
        if not any(target is w for w in model.weights):
            raise ValueError(f"assignment_map: variable {family.path(target)} is not a variable of model '{model.name}'")
        return target
    if not any(target is layer for layer in layers):
        raise ValueError(
            f"assignment_map: {family.describe(target)} is not part of model '{model.name}' "
            "(targets are the model, its layers, layer names, or its variables)"
        )
    return target


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------


def _is_saved_model(graph: wtf.ObjectGraph) -> bool:
    """Whether the graph is a SavedModel's (its root has tf-keras's ``keras_api``)."""
    return bool(len(graph)) and any(c.local_name == "keras_api" for c in graph[0].children)


def _training_state_keys(graph: wtf.ObjectGraph) -> set[str]:
    """Keys of optimizer variables, slot variables and save counters; in a SavedModel, also
    of the compiled metrics (``keras_api/metrics``: a loss tracker's ``total`` and ``count``)."""
    edges = _TRAINING_STATE_EDGES | ({"metrics", "layer_metrics"} if _is_saved_model(graph) else set())
    nodes: set[int] = {s.slot_variable_node_id for _, s in graph.slot_variables()}
    stack = [c.node_id for n in graph for c in n.children if c.local_name in edges]
    while stack:
        node_id = stack.pop()
        if node_id in nodes or not 0 <= node_id < len(graph):
            continue
        nodes.add(node_id)
        stack.extend(c.node_id for c in graph[node_id].children)
    return {a.checkpoint_key for node_id in nodes if 0 <= node_id < len(graph) for a in graph[node_id].attributes}


def load(
    model: Any,
    path: str,
    *,
    tf_keras_model: bool,
    skip_mismatch: bool,
    by_name: bool | None,
    assignment_map: dict[str, Any] | None,
    threads: int | None,
    start: float,
) -> CheckpointLoadStatus:
    """Restores the TensorFlow checkpoint at ``path`` into ``model`` (see the module
    docstring); all-or-nothing. Raises ``NoObjectGraph`` for name-based checkpoints."""
    if skip_mismatch and not by_name:
        raise ValueError(SKIP_MISMATCH_NEEDS_BY_NAME)
    if by_name:
        raise NotImplementedError(BY_NAME_NOT_SUPPORTED)
    if assignment_map is not None and not isinstance(assignment_map, dict):
        raise TypeError(f"assignment_map must be a dict, got {type(assignment_map).__name__}")
    prefix = wtf.resolve_prefix(path)
    reader = wtf.load_checkpoint(prefix)
    family: Any = _TfKeras() if tf_keras_model else _Keras3()
    if not tf_keras_model and not model.built:
        raise ValueError(
            f"Model '{model.name}' has not created its variables yet: build it (call it on data, or "
            f"give it an Input) before restoring TensorFlow checkpoint {prefix}"
        )
    plan = _PLANS.get(model) if assignment_map is None else None
    signature = family.signature(model) if assignment_map is None else None
    ahead = None
    try:
        if plan is not None and plan.holds_for(prefix, reader, signature):
            matched = plan.matched
        else:
            taken = time.time_ns()
            if assignment_map is None:  # (a partial restore would read values it never takes)
                ahead = _read_ahead(reader, threads, family.ahead_allocator())
            graph = _object_graph(reader, prefix)
            matched = _match(model, prefix, reader, graph, family, assignment_map)
            identity = tree_check.trusted_identity(reader._core.identity, taken)
            if signature is not None and identity is not None:
                _PLANS[model] = _Plan(prefix, identity, signature, matched)
            else:
                _PLANS.pop(model, None)
        _read_and_assign(model, reader, matched, family, threads, ahead)
    finally:
        if ahead is not None:
            ahead.close()
    return CheckpointLoadStatus(
        path=os.fspath(path),
        format=Format.TF_CHECKPOINT,
        variables_assigned=len(matched.variables),
        seconds=time.perf_counter() - start,
        details=matched.details,
        prefix=prefix,
        optimizer_values=list(matched.optimizer_values),  # (lists the caller may change)
        unmatched=list(matched.unmatched),
    )


def _read_and_assign(
    model: Any, reader: wtf.CheckpointReader, matched: _Matched, family: Any, threads: int | None, ahead: ReadAhead | None
) -> None:
    """Every matched value read (in parallel, converted to its variable's dtype) before any is
    assigned; large ones straight into their destinations where the backend has them (torch:
    the Parameters' memory; TensorFlow: tensors the variables take over), or taken from what
    was read ``ahead``. The one native call checks everything before it writes, and this
    reader verifies no checksums, so nothing can fail once writing has begun."""
    variables, keys, shapes, dtypes = matched.variables, matched.keys, matched.shapes, matched.dtypes
    with _gc_paused():
        taken: list[np.ndarray | None] = [None] * len(keys)
        if ahead is not None:
            taken = [ahead.take(key, dtype) for key, dtype in zip(keys, dtypes)]
        pending = [i for i, array in enumerate(taken) if array is None]
        read_into = family.destinations()
        outs = None
        if read_into is not None:
            outs = usable_destinations(read_into.destinations_for([(variables[i], shapes[i], dtypes[i]) for i in pending]))
        arrays = reader.read_many([keys[i] for i in pending], [dtypes[i] for i in pending], threads, outs=outs)
        for i, array, out in zip(pending, arrays, outs or [None] * len(pending)):
            taken[i] = None if out is not None else array
        written = [variables[i] for i, out in zip(pending, outs or ()) if out is not None]
        rest = [(v, a) for v, a in zip(variables, taken) if a is not None]
        family.assign(model, rest, read_into, written)


# -- reading ahead ---------------------------------------------------------------------------
# A first restore parses the object graph and matches it to the model in Python on one core
# (ResNet50: ~4 ms). Meanwhile the checkpoint's large values are read on the other cores
# (``prefetch.ReadAhead``), as weight files' are; the read at the end takes them where read
# as their variable's dtype. The reading starts before the graph is parsed, so what is
# training state (optimizer slots and variables, which a restore of weights never takes) is
# told by the keys' paths (``_names_training_state``), not by the graph.


def _names_training_state(key: str) -> bool:
    """Whether a checkpoint key's path (the route the saver took to the value) goes through an
    ``optimizer`` or ``save_counter`` edge or is an optimizer slot's. (The graph decides what a
    restore reports as training state, ``_training_state_keys``; this only decides what is
    read ahead: a value named otherwise is read ahead in vain, or read at the end.)"""
    parts = key.split("/")
    return ".OPTIMIZER_SLOT" in parts or not _TRAINING_STATE_EDGES.isdisjoint(parts)


def _read_ahead(reader: wtf.CheckpointReader, threads: int | None, allocate: Any) -> ReadAhead | None:
    budget = ahead_budget(threads, allocate)
    keys = reader.keys()
    if not budget or wtf.OBJECT_GRAPH_KEY not in keys:
        return None  # (no graph: a name-based checkpoint, restored another way)
    requests = []
    for key in keys:
        if key == wtf.OBJECT_GRAPH_KEY or _names_training_state(key):
            continue
        try:
            dtype = reader.dtype(key).read_dtype
        except UnsupportedFeatureError:  # (resource, variant: no value to read)
            continue
        shape = reader.shape(key)
        if read_in_place(shape, dtype) and dtype.isnative:
            requests.append((key, shape, dtype))
    workers = ahead_threads(threads)
    return read_ahead_within(
        requests,
        lambda outs: reader._read_ahead([key for key, _, _ in requests], outs, workers),
        allocate,
        _data_bytes(reader),
        budget,
    )


def _data_bytes(reader: wtf.CheckpointReader) -> int:
    """The size of the checkpoint's data files (0 for those that cannot be looked at)."""
    total = 0
    for shard in range(reader.num_shards):
        try:
            total += os.path.getsize(reader._core.data_filename(shard))
        except OSError:
            pass
    return total


class _Matched:
    """What matching a checkpoint to a model found: the (variable, checkpoint key) pairs,
    each value's shape in the checkpoint and its variable's dtype, and the report's lists."""

    def __init__(
        self,
        variables: list[Any],
        keys: list[str],
        shapes: list[tuple[int, ...]],
        dtypes: list[Any],
        details: Listed,
        optimizer_values: list[str],
        unmatched: list[str],
    ) -> None:
        self.variables = variables
        self.keys = keys
        self.shapes = shapes
        self.dtypes = dtypes
        self.details = details
        self.optimizer_values = optimizer_values
        self.unmatched = unmatched


def _object_graph(reader: wtf.CheckpointReader, prefix: str) -> wtf.ObjectGraph:
    """The checkpoint's object graph; ``NoObjectGraph`` for a name-based checkpoint."""
    with _gc_paused():  # many small objects while the model's are alive: no collector rescans
        graph = reader.object_graph()
    if graph is None or not len(graph):
        raise NoObjectGraph(f"{prefix}: a name-based checkpoint (no object graph)")
    return graph


def _match(
    model: Any,
    prefix: str,
    reader: wtf.CheckpointReader,
    graph: wtf.ObjectGraph,
    family: Any,
    assignment_map: dict[str, Any] | None,
) -> _Matched:
    """Walks the checkpoint's object ``graph`` and the model together (see the module
    docstring). Raises ``ValueError`` where they do not match (Keras 3 models). Assigns
    nothing."""
    if assignment_map is None:
        roots = [(0, model, "")]
    else:
        roots = []
        for ckpt_path, target in assignment_map.items():
            node_id = _checkpoint_node(graph, ckpt_path, prefix)
            roots.append((node_id, _model_target(model, target, family), ckpt_path.strip("/")))

    matcher = _Matcher(reader, graph, family)
    with _gc_paused():
        for node_id, target, where in roots:
            matcher.walk(node_id, target, where)
        matcher.check_complete([target for _, target, _ in roots])
    pairs = list(matcher.bound.values())
    if not pairs and not family.strict:
        raise AssertionError(
            f"Nothing except the root object matched a checkpointed value in {prefix}. Typically this "
            "means that the checkpoint does not match the Python program."
        )
    variables = [v for v, _ in pairs]
    keys = [k for _, k in pairs]
    training = _training_state_keys(graph)
    loaded = set(keys)
    all_keys = [k for k in reader.keys() if k != wtf.OBJECT_GRAPH_KEY]
    unmatched = [family.path(v) for v in model.weights if id(v) not in matcher.bound]
    details = Listed(
        loaded=[(family.path(v), k) for v, k in zip(variables, keys)],
        skipped=[(p, "no value in the checkpoint") for p in unmatched],
        unused=[k for k in all_keys if k not in loaded and k not in training],
    )
    return _Matched(
        variables,
        keys,
        [tuple(reader.shape(k)) for k in keys],
        [family.numpy_dtype(v) for v in variables],
        details,
        [k for k in all_keys if k in training and k not in loaded],
        unmatched,
    )


# -- remembered matches ---------------------------------------------------------------------
# Matching walks the object graph and the model in Python: after the read itself, most of a
# restore's time. Its result depends only on the model's structure and the checkpoint's
# index, so it is remembered per model and used again while the model has the same layers
# and variables (the signature the HDF5 replays check) and the index file is the one
# matched (same device, inode, size and times; an index changed less than RACY_NS before it
# was matched is not trusted: a rewrite within the file system's time granularity could
# keep its times). A restore with an assignment_map always matches anew.


class _Plan:
    def __init__(self, prefix: str, identity: tuple[int, ...], signature: tuple[Any, ...], matched: _Matched) -> None:
        self.prefix = prefix
        self.identity = identity
        self.signature = signature
        self.matched = matched

    def holds_for(self, prefix: str, reader: wtf.CheckpointReader, signature: tuple[Any, ...] | None) -> bool:
        identity = reader._core.identity
        return prefix == self.prefix and identity is not None and tuple(identity) == self.identity and signature == self.signature


# Model -> its last checkpoint match (restores without an assignment_map).
_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()
