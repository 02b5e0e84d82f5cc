"""The object traversal of Keras 3's and tf-keras's ``.weights.h5`` loaders
(``saving_lib._load_state``), as they run it, made cheaper.

A ``.weights.h5`` file is found by walking the model the way Keras saved it: for every object,
``_walk_saveable`` (tf-keras: ``_walk_trackable``) lists ``dir(object)`` in Keras's order and
``getattr``s each name, and ``_load_state`` follows what is a Keras object or a container of
them. On a first load this walk costs more than reading the weights: ``dir()``, a sort and a
skip set per object, a bound method made for every method name, properties evaluated for
nothing (tf-keras serializes every layer's config to JSON for ``_tracking_metadata``), a regex
for every container member's name.

``faster_traversal()`` / ``faster_tf_keras_traversal()`` give one load (in the calling thread)
walk functions that give ``_load_state`` the same children in the same order, computed once
instead of once per object:

- The names to visit depend only on the object's class, the skip set and the names ``dir()``
  lists; they are listed, sorted and filtered once per such combination. For a class without
  its own ``__dir__``, ``dir()`` lists the class's names and the instance's ``__dict__``; for
  torch's modules (Keras's torch layers), also the names of their parameters, submodules and
  buffers: the key holds those. For another class with its own ``__dir__``, what it lists.
- Names that can only give a bound method (a function of the class, not shadowed by the
  instance's ``__dict__``) are not looked up, and neither are the properties given as
  ``passed_by`` (tf-keras's own properties that never give a Keras object or a container
  that could hold one: ``_TF_KERAS_PASSED_BY``).
- Children ``_load_state`` does nothing with (not a Keras object or container) are not
  yielded: the objects it follows, and their order, are Keras's.
- An object whose class has its own ``__getattribute__`` is walked by Keras's function.

The helpers that are pure functions of their strings (``to_snake_case``, and Keras 3's
``file_utils.join``'s remote-path test) are cached, and Keras 3's ``get_attr_skipset`` is
built once per object type (Keras builds a reference ``Layer`` each time: its cache is
stored under another key than the one it reads). The caches live for one load: a class changed between loads is seen
as it is.

Where nothing fails, a first load does not even run ``_load_state``: ``plain_load_state`` /
``plain_tf_keras_load_state`` visit the same objects with the same paths, on these helpers,
without its per-call bookkeeping, and give up (``NotPlain``) for Keras's own to run wherever
anything raises (see the sections below).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from .assign import patched

_MISSING = object()


def _class_attribute(cls: type, name: str) -> Any:
    """What ``name`` is on the class (first in its MRO), or ``_MISSING``."""
    for klass in cls.__mro__:
        found = klass.__dict__.get(name, _MISSING)
        if found is not _MISSING:
            return found
    return _MISSING


def _only_a_method(found: Any) -> bool:
    """Whether a class attribute (``found``), looked up on an instance that does not shadow
    it, can only give a bound method, a function or a class: no Keras object or container."""
    if isinstance(found, (staticmethod, classmethod)):
        found = found.__func__
    return isinstance(found, (types.FunctionType, types.BuiltinFunctionType, type))


def _torch_module_dir() -> Any:
    """torch's ``Module.__dir__`` if torch is imported (Keras's torch layers are modules)."""
    torch = sys.modules.get("torch")
    module = getattr(getattr(torch, "nn", None), "Module", None)
    return getattr(module, "__dir__", _MISSING)


def _torch_registries(state: dict[str, Any]) -> tuple[Any, Any, Any]:
    """What torch's ``Module.__dir__`` lists besides the class's and instance's names."""
    return state.get("_parameters", ()), state.get("_modules", ()), state.get("_buffers", ())


class _Walk:
    """A walk function for one load (see the module's docstring).

    ``original``: Keras's walk, for objects this one does not handle. ``prelude(object)``:
    (the skip set, what Keras yields before the names, a key for the object's kind) or None
    to leave the object to ``original``. ``order(names)``: the names in Keras's order.
    ``followed(child)``: whether ``_load_state`` acts on it. ``passed_by``: class attributes
    (property objects) not to evaluate."""

    def __init__(
        self,
        original: Callable[[Any], Iterator[tuple[str, Any]]],
        prelude: Callable[[Any], tuple[Any, list[tuple[str, Any]], Any] | None],
        order: Callable[[list[str]], list[str]],
        followed: Callable[[Any], bool],
        passed_by: frozenset[Any] = frozenset(),
    ) -> None:
        self.original = original
        self.prelude = prelude
        self.order = order
        self.followed = followed
        self.passed_by = passed_by
        self.plans: dict[tuple[Any, ...], list[str]] = {}
        self.torch_dir = _torch_module_dir()

    def _names(self, cls: type, listed: Any, state: dict[str, Any], skipset: Any) -> list[str]:
        return [
            name
            for name in self.order(list(listed))
            if not name.startswith("__") and name not in skipset and (name in state or self._looked_up(cls, name))
        ]

    def _looked_up(self, cls: type, name: str) -> bool:
        """Whether ``name`` (not in the instance's ``__dict__``) must be looked up: it may
        give a child (not only a method, not a property of ``passed_by``)."""
        found = _class_attribute(cls, name)
        if found is _MISSING:
            return True  # computed (``__getattr__``), or listed by a ``__dir__`` of its own
        return not (_only_a_method(found) or (isinstance(found, property) and found in self.passed_by))

    def __call__(self, saveable: Any) -> Iterator[tuple[str, Any]]:
        cls = type(saveable)
        state = getattr(saveable, "__dict__", None)
        begun = None
        if type(state) is dict and cls.__getattribute__ is object.__getattribute__:
            begun = self.prelude(saveable)
        if begun is None:
            yield from self.original(saveable)
            return
        skipset, leading, kind = begun
        yield from leading
        listed = None
        if cls.__dir__ is object.__dir__:
            # dir() is the class's names and the instance's: known from the latter's.
            key: tuple[Any, ...] = (cls, kind, id(skipset), tuple(state))
        elif cls.__dir__ is self.torch_dir:
            # torch's Module.__dir__: the class's names, the instance's, and the names of its
            # parameters, submodules and buffers (~35 us to call, for each layer).
            key = (cls, kind, id(skipset), tuple(state), *map(tuple, _torch_registries(state)))
        else:  # another __dir__ of its own: what it lists is the key
            listed = cls.__dir__(saveable)
            key = (cls, kind, id(skipset), None, tuple(listed))
        names = self.plans.get(key)
        if names is None:
            if listed is None:
                listed = cls.__dir__(saveable)  # what dir() sorts
            names = self.plans[key] = self._names(cls, listed, state, skipset)
        followed = self.followed
        for name in names:
            try:
                child = getattr(saveable, name)
            except Exception:  # noqa: BLE001 - as Keras: an attribute that fails is passed by
                continue
            if followed(child):
                yield name, child


def _local_join(file_utils: Any) -> Callable[..., Any]:
    """Keras 3's ``file_utils.join`` as it joins a load's inner paths: ``os.path.join``
    unless the first part is a remote path (``is_remote_path``, a regular expression per
    call in Keras, answered once per first part here). Every inner path is joined once per
    load (~900 on ResNet50), so caching whole calls saved nothing."""
    original = file_utils.join
    remote = functools.cache(file_utils.is_remote_path)
    join = os.path.join

    def local_join(path: Any, *paths: Any) -> Any:
        if type(path) is str and not remote(path):
            return join(path, *paths)
        return original(path, *paths)

    return local_join


@contextlib.contextmanager
def faster_traversal() -> Iterator[types.SimpleNamespace]:
    """Within the block, this thread's Keras 3 ``saving_lib._load_state`` runs on the cached
    helpers; gives them (``walk``, ``join``, ``snake``) for ``plain_load_state``."""
    from keras.src.saving import saving_lib
    from keras.src.saving.keras_saveable import KerasSaveable
    from keras.src.utils import file_utils, naming

    skipsets = functools.cache(saving_lib.get_attr_skipset)
    followed_types = (KerasSaveable, list, dict, tuple)

    def prelude(saveable: Any) -> tuple[Any, list[tuple[str, Any]], Any] | None:
        if not isinstance(saveable, KerasSaveable):
            return None  # Keras's own walk raises its error
        obj_type = saveable._obj_type()
        leading = [("layers", saveable.layers)] if obj_type in ("Sequential", "Functional") else []
        return skipsets(obj_type), leading, obj_type

    walk = _Walk(
        saving_lib._walk_saveable,
        prelude,
        order=lambda names: sorted(sorted(names), key=saving_lib._name_key),  # dir()'s, then Keras's
        followed=lambda child: isinstance(child, followed_types),
    )
    helpers = types.SimpleNamespace(
        walk=walk, join=_local_join(file_utils), snake=functools.cache(naming.to_snake_case)
    )
    with (
        patched(saving_lib, get_attr_skipset=skipsets, _walk_saveable=walk),
        patched(naming, to_snake_case=helpers.snake),
        patched(file_utils, join=helpers.join),
    ):
        yield helpers


# tf-keras's own properties (of ``Layer``, ``tf.Module``, ``Trackable``, BatchNormalization)
# that give what its traversal passes by: never a layer, optimizer, metric or loss, nor a
# container that could hold one. Each one evaluated on every layer, as tf-keras's walk does,
# they cost more than the rest of a first load's walk (~15 us a layer). A class that overrides one has another
# property object there: that one is evaluated.
_TF_KERAS_PASSED_BY = {
    "base_layer.Layer": (
        "_tracking_metadata",  # the layer's config as a JSON string (for SavedModel)
        "stateful", "dynamic", "supports_masking", "_use_input_spec_as_call_signature",
        "_expects_training_arg", "_expects_mask_arg",  # booleans
        "name", "_object_identifier", "dtype", "_dtype", "compute_dtype", "_compute_dtype",
        "variable_dtype",  # strings
        "dtype_policy",  # a mixed-precision Policy
        "input", "output", "input_mask", "output_mask",  # (nests of) tensors, or they raise
        "losses",  # a list of tensors (add_loss takes tensors, or callables giving tensors)
        "input_spec",  # InputSpec(s), checked by its setter
        "_trackable_saved_model_saver",  # the SavedModel serializer of the layer
        "_obj_reference_counts",  # an ObjectIdentityDictionary (not a dict) of counts
    ),
    "training.Model": (
        # Each over every layer of the model, ~40% of the walk of a 2,500-layer model:
        "_undeduplicated_weights",  # a list of the layers' variables (tf.Variable: not followed)
        "run_eagerly",  # a boolean (asks every layer whether it is dynamic)
        "metrics_names",  # the metrics' names: strings
    ),
    "module.Module": ("name_scope",),  # a tf.name_scope
    "base.Trackable": ("_update_uid", "_setattr_tracking"),  # an int, a boolean
    "batch_normalization.BatchNormalizationBase": ("_param_dtype",),  # a dtype's name
}


def _tf_keras_passed_by() -> frozenset[Any]:
    from tensorflow.python.module import module
    from tensorflow.python.trackable import base
    from tf_keras.src.engine import base_layer, training
    from tf_keras.src.layers.normalization import batch_normalization

    owners = {
        "base_layer.Layer": base_layer.Layer,
        "training.Model": training.Model,
        "module.Module": module.Module,
        "base.Trackable": base.Trackable,
        "batch_normalization.BatchNormalizationBase": batch_normalization.BatchNormalizationBase,
    }
    found = set()
    for owner, names in _TF_KERAS_PASSED_BY.items():
        attributes = owners[owner].__dict__
        found.update(attributes[name] for name in names if isinstance(attributes.get(name), property))
    return frozenset(found)


@contextlib.contextmanager
def faster_tf_keras_traversal() -> Iterator[types.SimpleNamespace]:
    """Within the block, this thread's tf-keras ``saving_lib._load_state`` runs on the cached
    helpers (given for ``plain_tf_keras_load_state``). tf-keras's properties listed in
    ``_TF_KERAS_PASSED_BY`` (``Layer._tracking_metadata``, the layer's config as JSON;
    ``stateful`` and ``dynamic``, booleans over every sublayer; ...) are not evaluated."""
    from tf_keras.src.saving import saving_lib
    from tf_keras.src.utils import generic_utils

    is_trackable = saving_lib._is_keras_trackable
    containers = (list, dict, tuple, set)
    skiplist = saving_lib.ATTR_SKIPLIST

    def by_kind(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        # isinstance() depends only on the type and ``__class__`` (a proxy's may differ);
        # tf-keras's check imports a module and asks four classes each time.
        known: dict[tuple[type, Any], bool] = {}

        def cached(child: Any) -> bool:
            try:
                kinds = (type(child), child.__class__)
            except Exception:  # noqa: BLE001 - a ``__class__`` that fails: ask every time
                return check(child)
            answer = known.get(kinds)
            if answer is None:
                answer = known[kinds] = check(child)
            return answer

        return cached

    trackable = by_kind(is_trackable)
    followed = by_kind(lambda child: isinstance(child, containers) or is_trackable(child))

    walk = _Walk(
        saving_lib._walk_trackable,
        lambda saveable: (skiplist, [], None),
        order=lambda names: sorted(names, reverse=True),
        followed=followed,
        passed_by=_tf_keras_passed_by(),
    )
    helpers = types.SimpleNamespace(walk=walk, snake=functools.cache(generic_utils.to_snake_case), trackable=trackable)
    with (
        patched(saving_lib, _walk_trackable=walk),
        patched(generic_utils, to_snake_case=helpers.snake),
    ):
        yield helpers


# -- Keras 3's _load_state, when nothing fails ----------------------------------------------
# Past the walk itself, a first load of many small layers spends most of its traversal in
# Keras's ``_load_state`` / ``_load_container_state`` bookkeeping (two imports and two type
# checks of the stores per call, failure accounting, a ``has_path`` lookup in the file for
# every nested container, most of which only list layers loaded already). Where nothing
# fails, all of that decides nothing: ``plain_load_state`` visits the same objects in the
# same order with the same inner paths, and gives up (``NotPlain``) at anything else, for
# Keras's own traversal to run from the start.

# The Keras functions whose success path ``plain_load_state`` follows, by a digest of their
# source (Keras 3.15): another Keras gets its own traversal until this one is checked against it.
_MIRRORED = {
    "_load_state": "6dcef2082c1d2c75",
    "_load_container_state": "bdd69d5df0d4b23e",
    "_get_unique_name": "0cc4285de332f163",
    "_container_path_present": "ef387488a4554e28",
}


class NotPlain(Exception):
    """The traversal met something Keras's own handles in its own way: a failure (Keras
    collects it, warns or retries the object later), or an object reached again from within
    itself."""


def _source_lines(code: Any) -> tuple[int, int]:
    """The first and last source line of a function's code (its nested code included)."""
    last = max((line for _, _, line in code.co_lines() if line is not None), default=code.co_firstlineno)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            last = max(last, _source_lines(const)[1])
    return code.co_firstlineno, last


def source_digest(function: Any) -> str:
    """A digest of a function's source text, from its first line to the last line of its code
    (without tokenizing the module, as ``inspect.getsource`` does: ~1 ms a function, once per
    process, on the first load)."""
    import hashlib
    import linecache

    code = function.__code__
    first, last = _source_lines(code)
    lines = linecache.getlines(code.co_filename)
    if len(lines) < last:
        raise OSError(f"no source for {function.__qualname__}")
    return hashlib.sha256("".join(lines[first - 1 : last]).encode()).hexdigest()[:16]


def sources_match(module: Any, digests: dict[str, str]) -> bool:
    """Whether the named functions of ``module`` have these source digests."""
    try:
        found = {name: source_digest(getattr(module, name)) for name in digests}
    except (AttributeError, OSError, TypeError):  # renamed, or no source to compare
        return False
    return found == digests


@functools.cache
def plain_traversal_known() -> bool:
    """Whether this Keras's ``_load_state`` is the one ``plain_load_state`` follows."""
    from keras.src.saving import saving_lib

    return sources_match(saving_lib, _MIRRORED)


def plain_load_state(root: Any, load: Callable[[Any, str], None], helpers: Any) -> None:
    """Keras 3's ``_load_state(root, store, None, "", visited_saveables=set(),
    failed_saveables=set(), ...)`` where nothing fails: ``load(saveable, inner_path)`` is
    called where Keras calls ``saveable.load_own_variables(store.get(inner_path))``, for the
    same objects, in the same order; ``helpers``: what ``faster_traversal()`` gives. Raises
    ``NotPlain`` (from the error) where anything raises, and for an object met again while its
    own children are walked (Keras would load it again, without end)."""
    try:
        _PlainWalk(load, helpers).state(root, "", None)
    except NotPlain:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras's own traversal reports (or tolerates) it
        raise NotPlain(str(exc)) from exc


class _PlainWalk:
    """``plain_load_state``'s walk. (A class, not nested functions: functions calling each
    other through their closures form a reference cycle, which would keep ``load``, and
    through it the load's store and every value it handed out, alive until the cyclic
    collector runs: ~6 ms for 10,000 values, right after the load.)"""

    def __init__(self, load: Callable[[Any, str], None], helpers: Any) -> None:
        from keras.src.saving.keras_saveable import KerasSaveable

        self.load = load
        self.walk, self.join, self.snake = helpers.walk, helpers.join, helpers.snake
        self.saveable = KerasSaveable
        self.visited: set[int] = set()  # done, with all their children: passed by when met again
        self.entered: set[int] = set()

    # Inner paths are joined only where an object not visited yet needs one: a model's
    # containers list its layers several times (``layers``, ``_operations_by_depth``, ...).
    def state(self, saveable: Any, parent: str, name: str | None) -> None:
        key = id(saveable)
        if key in self.visited:
            return
        path = parent if name is None else self.join(parent, name).replace("\\", "/")
        if key in self.entered:
            raise NotPlain(f"{type(saveable).__name__} at {path!r} is reached from within itself")
        self.entered.add(key)
        if hasattr(saveable, "load_own_variables"):
            self.load(saveable, path)
        keras_saveable = self.saveable
        for attr, child in self.walk(saveable):
            if isinstance(child, keras_saveable):
                self.state(child, path, attr)
            elif isinstance(child, (list, dict, tuple)):
                self.container(child, path, attr, set())
        self.visited.add(key)

    def container(self, items: Any, parent: str, name: str, seen: set[int]) -> None:
        # Keras checks whether a nested container's group is in the file and, where it is
        # not, loads its unvisited objects tolerating failures; without failures (else
        # NotPlain) both ways do the same. Members are named as ``_get_unique_name`` does:
        # the snake-case class name (or "container"), then _1, _2, ... for its repeats.
        if id(items) in seen:
            return
        seen.add(id(items))
        keras_saveable, visited, snake = self.saveable, self.visited, self.snake
        path = None
        used: dict[str, int] = {}
        for item in list(items.values()) if isinstance(items, dict) else items:
            nested = not isinstance(item, keras_saveable)
            if not nested:
                base = snake(item.__class__.__name__)
            elif isinstance(item, (list, dict, tuple)):
                base = "container"
            else:
                continue
            count = used[base] = used[base] + 1 if base in used else 0
            if not nested and id(item) in visited:
                continue
            if path is None:
                path = self.join(parent, name).replace("\\", "/")
            member = f"{base}_{count}" if count else base
            if nested:
                self.container(item, path, member, seen)
            else:
                self.state(item, path, member)


# -- tf-keras's _load_state, when nothing fails -----------------------------------------------
# tf-keras's traversal is simpler (an object is marked visited before its children, and
# containers are not searched for nested ones), but as in Keras 3 most of a first load of
# many small layers goes to its per-call work: a path joined by ``tf.io.gfile.join`` for
# every child, visited or not, and an import and four type checks in every
# ``_is_keras_trackable``.

# As ``_MIRRORED``, for tf-keras 2.21.
_MIRRORED_TF_KERAS = {
    "_load_state": "6a51c77f2faa14d4",
    "_load_container_state": "8c485bd41701cc84",
    "_is_keras_trackable": "4256a396712a0757",
}


@functools.cache
def plain_tf_keras_traversal_known() -> bool:
    """Whether this tf-keras's ``_load_state`` is the one ``plain_tf_keras_load_state`` follows."""
    from tf_keras.src.saving import saving_lib

    return sources_match(saving_lib, _MIRRORED_TF_KERAS)


def plain_tf_keras_load_state(root: Any, load: Callable[[Any, str], None], helpers: Any) -> None:
    """tf-keras's ``_load_state(root, store, None, "", visited_trackables=set())`` where nothing
    fails: ``load(trackable, inner_path)`` where tf-keras calls
    ``trackable.load_own_variables(store.get(inner_path))``, for the same objects in the same
    order; ``helpers``: what ``faster_tf_keras_traversal()`` gives. Raises ``NotPlain`` (from
    the error) where anything raises."""
    try:
        _PlainTfKerasWalk(load, helpers).state(root, "")
    except Exception as exc:  # noqa: BLE001 - tf-keras's own traversal reports (or tolerates) it
        raise NotPlain(str(exc)) from exc


class _PlainTfKerasWalk:
    """``plain_tf_keras_load_state``'s walk (a class: see ``_PlainWalk``)."""

    def __init__(self, load: Callable[[Any, str], None], helpers: Any) -> None:
        self.load = load
        self.walk, self.snake, self.trackable = helpers.walk, helpers.snake, helpers.trackable
        self.visited: set[int] = set()

    @staticmethod
    def join(parent: str, name: str) -> str:
        # ``tf.io.gfile.join`` of str parts: a URL's join where the path has a scheme.
        if "://" in parent[1:]:
            import tensorflow as tf

            return tf.io.gfile.join(parent, name)
        return os.path.join(parent, name)

    def state(self, obj: Any, path: str) -> None:
        visited = self.visited
        if id(obj) in visited:
            return
        if hasattr(obj, "load_own_variables"):
            self.load(obj, path)
        visited.add(id(obj))
        trackable = self.trackable
        for attr, child in self.walk(obj):
            if trackable(child):
                if id(child) not in visited:
                    self.state(child, self.join(path, attr))
            elif isinstance(child, (list, dict, tuple, set)):
                self.container(child, self.join(path, attr))

    def container(self, items: Any, path: str) -> None:
        trackable, visited = self.trackable, self.visited
        used: dict[str, int] = {}
        for item in list(items.values()) if isinstance(items, dict) else items:
            if not trackable(item) or id(item) in visited:
                continue
            base = self.snake(item.__class__.__name__)
            count = used[base] = used[base] + 1 if base in used else 0
            self.state(item, self.join(path, f"{base}_{count}" if count else base))
