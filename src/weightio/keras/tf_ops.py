"""weightio's TensorFlow ops (``tf_ops.cc``): many variables set in one op call.

Setting a TensorFlow variable from Python costs one eager op dispatch, ~8-12 us, whatever its
size: for a 10,000-variable model that is most of a load. ``WeightioAssignVariables`` sets any
number of variables in one call, copying each value from memory weightio holds (see the .cc
file for what it checks and how it locks).

The ops are compiled against the installed TensorFlow's headers (its C++ ABI is its own), so
they are not part of the wheel: ``weightio build-tf-ops`` (or ``build()``) compiles them once
per TensorFlow version into weightio's cache (``$WEIGHTIO_CACHE_DIR``, else
``$XDG_CACHE_HOME/weightio``, else ``~/.cache/weightio``); a C++17 compiler is needed (``$CXX``,
else ``c++``). Once built they are used automatically. ``WEIGHTIO_TF_OPS=0`` never uses them;
``WEIGHTIO_TF_OPS=build`` builds them on the first load that could use them, if missing.
Without them every variable is assigned by TensorFlow's own op, as before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from typing import Any

import numpy as np

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_ops.cc")
_PACK_PART = 64  # handles per pack call: one kernel instance for every call (its size is an attribute)
_MAX_PACKED = 16  # sets of variables whose packed handles are kept

_lock = threading.Lock()
_state: dict[str, Any] = {}  # "ops": the loaded _Ops, or None once it could not be loaded


class BuildError(RuntimeError):
    """The ops could not be compiled (no compiler, no TensorFlow headers, a compiler error)."""


def _tensorflow_flags() -> tuple[str, list[str], list[str]]:
    import tensorflow as tf

    return tf.__version__, list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags())


def _compiler() -> str | None:
    chosen = os.environ.get("CXX")
    if chosen:
        return shutil.which(chosen)
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def cache_dir() -> str:
    base = os.environ.get("WEIGHTIO_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "weightio")
    return base


def library_path() -> str:
    """Where the ops built for the installed TensorFlow are (or would be) kept: the name
    carries TensorFlow's version and a digest of the source and of TensorFlow's flags."""
    version, cflags, lflags = _tensorflow_flags()
    digest = hashlib.sha256()
    with open(_SOURCE, "rb") as f:
        digest.update(f.read())
    digest.update("\0".join([version, sys.platform, *cflags, "|", *lflags]).encode())
    return os.path.join(cache_dir(), f"tf_ops-{version}-{digest.hexdigest()[:16]}.so")


def build(force: bool = False) -> str:
    """Compiles the ops for the installed TensorFlow into the cache, unless there already
    (``force``: again). Returns the library's path; raises ``BuildError``."""
    path = library_path()
    if os.path.exists(path) and not force:
        return path
    compiler = _compiler()
    if compiler is None:
        raise BuildError(f"no C++ compiler found ({'CXX=' + os.environ['CXX'] if os.environ.get('CXX') else 'c++, g++, clang++'}): set CXX or install one")
    _, cflags, lflags = _tensorflow_flags()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, temporary = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(fd)
    command = [compiler, "-shared", "-fPIC", "-O2", "-w", _SOURCE, "-o", temporary, *cflags, *lflags]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"compiling {_SOURCE} failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
        os.replace(temporary, path)  # atomic: a concurrent build or load never sees half a file
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def ops() -> _Ops | None:
    """The loaded ops, or None (not built, disabled, or they would not load). Decided once
    per process."""
    found = _state.get("ops", False)
    if found is not False:
        return found
    with _lock:
        if "ops" not in _state:
            _state["ops"] = _load()
        return _state["ops"]


def _load() -> _Ops | None:
    setting = os.environ.get("WEIGHTIO_TF_OPS", "").strip().lower()
    if setting in ("0", "off", "no", "false"):
        return None
    try:
        path = library_path()
        if not os.path.exists(path):
            if setting != "build":
                return None
            path = build()
        import tensorflow as tf

        tf.load_op_library(path)
        return _Ops()
    except Exception:  # noqa: BLE001 - no TensorFlow headers, a failed build or load: TensorFlow's own ops then
        return None


def forget() -> None:
    """Tests: decide again (after changing WEIGHTIO_TF_OPS or building) on the next use."""
    with _lock:
        _state.pop("ops", None)


class _Ops:
    """The two ops, called the way TensorFlow's generated wrappers call them in eager mode
    (without their per-call Python), and the packed handles of recent sets of variables."""

    def __init__(self) -> None:
        from tensorflow.python import pywrap_tfe
        from tensorflow.python.eager import context

        self._context = context.context()
        self._execute = pywrap_tfe.TFE_Py_FastPathExecute
        self._packed: dict[tuple[int, ...], Any] = {}
        from .._core import convert

        self._memory_of = convert.memory_of

    def _run(self, op: str, *inputs: Any) -> Any:
        from tensorflow.python.eager import core
        from tensorflow.python.framework import ops as tf_ops

        try:
            return self._execute(self._context, op, None, *inputs)
        except core._NotOkStatusException as error:  # as the generated wrappers report it
            tf_ops.raise_from_not_ok_status(error, None)

    def packed(self, variables: list[Any]) -> Any:
        """The resource handles of ``variables`` (plain ResourceVariables) as one tensor.
        Kept while every one of them is alive (a weak reference to each drops the entry when
        one dies: the handles would keep its memory alive), for the next load of the same
        variables in the same order; at most ``_MAX_PACKED`` sets."""
        key = tuple(map(id, variables))
        found = self._packed.get(key)
        if found is not None:
            return found[1]
        # Packed in parts of _PACK_PART handles (the last part padded), then the parts packed
        # the same way, until one tensor is left.
        items: list[Any] = [variable._handle for variable in variables]
        counts = [1] * len(items)
        while True:
            packed_items, packed_counts = [], []
            for start in range(0, len(items), _PACK_PART):
                part = items[start : start + _PACK_PART]
                count = sum(counts[start : start + _PACK_PART])
                part += [part[-1]] * (_PACK_PART - len(part))
                packed_items.append(self._run("WeightioPackHandles", part, np.array(count, np.int64)))
                packed_counts.append(count)
            items, counts = packed_items, packed_counts
            if len(items) == 1:
                break
        packed = items[0]
        if int(packed.shape[0]) != len(variables):  # never trust a miscount with raw copies
            raise RuntimeError("weightio: packed handles miscounted")
        self._remember(key, variables, packed)
        return packed

    def _remember(self, key: tuple[int, ...], variables: list[Any], packed: Any) -> None:
        entries = self._packed
        while len(entries) >= _MAX_PACKED:
            entries.pop(next(iter(entries)))

        def drop(_: Any, key: tuple[int, ...] = key) -> None:
            entries.pop(key, None)

        refs = [weakref.ref(variable, drop) for variable in variables]
        entries[key] = (refs, packed)

    def empty(self, shapes: list[tuple[int, ...]], dtypes: list[int]) -> tuple[list[Any], list[int]]:
        """New uninitialized CPU tensors of these shapes and dtypes (TensorFlow enums), in one
        op call, and the address of each one's memory."""
        import tensorflow as tf

        dims = np.fromiter((d for shape in shapes for d in shape), np.int64)
        ranks = np.fromiter(map(len, shapes), np.int32, len(shapes))
        # (An op with a list of output types takes only tensors on the fast path.)
        addresses, tensors = self._run("WeightioEmpty", tf.constant(dims), tf.constant(ranks), "T", dtypes)
        return tensors, addresses.numpy().tolist()

    def adopt(self, variables: list[Any], tensors: list[Any]) -> None:
        """Each variable (a plain eager ResourceVariable on the CPU) takes over its tensor (an
        eager CPU tensor of its dtype and shape that nothing else will use), all in one op
        call, or raises having set none."""
        self._run("WeightioAdoptTensors", self.packed(variables), tensors)

    def assign(self, variables: list[Any], values: list[np.ndarray], dtypes: np.ndarray) -> None:
        """Sets each variable (a plain eager ResourceVariable on the CPU) to its value (a
        C-contiguous array of its dtype and shape; ``dtypes``: their TensorFlow enums), all in
        one op call, or raises having set none."""
        sources, sizes = self._memory_of(values)
        self._run("WeightioAssignVariables", self.packed(variables), sources, dtypes, sizes)
