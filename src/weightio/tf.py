"""TensorFlow checkpoints without TensorFlow.

``load_checkpoint(path)`` reads a V2 checkpoint (a tensor bundle: ``<prefix>.index`` plus
``<prefix>.data-NNNNN-of-MMMMM``), as written by ``tf.train.Checkpoint``, tf-keras's
``model.save_weights("ckpt")``, ``tf.compat.v1.train.Saver`` or a SavedModel's
``variables/``, and returns a reader with the methods of ``tf.train.load_checkpoint``'s::

    reader = weightio.tf.load_checkpoint("ckpt")     # a prefix, a directory, a SavedModel
    reader.get_variable_to_shape_map()               # {name: [dims]}
    reader.get_variable_to_dtype_map()               # {name: weightio.tf.DType}
    reader.get_tensor(name)                          # numpy (a zero-copy read-only view)
    reader.has_tensor(name)
    reader.keys(); reader.read_many(names)           # bulk: parallel, without the GIL
    reader.object_graph()                            # _CHECKPOINTABLE_OBJECT_GRAPH, decoded

Differences from TensorFlow's reader, on purpose:

* ``get_variable_to_dtype_map`` returns ``weightio.tf.DType`` objects, not ``tf.DType``: same
  ``name``, ``as_numpy_dtype`` and ``as_datatype_enum``, and they compare equal to TF's
  DTypes, to numpy dtypes and to dtype names.
* ``get_tensor`` returns a read-only view of the mapped data file when the stored bytes
  already are the array (the common case); pass ``copy=True`` for a private writeable copy.
  Scalars come back as numpy scalars and string tensors as object arrays of ``bytes`` (a
  scalar string as ``bytes``), as TensorFlow returns them.
* CRC-32C checksums of tensor data are checked when asked (``verify=True`` on
  ``load_checkpoint``, ``get_tensor``, ``read_many``, or ``reader.verify()``); TensorFlow
  checks them on every read. The index's own block checksums are always checked.
* Partitioned (sliced) variables are reassembled whole, as ``get_tensor`` does in TF.

Errors: ``weightio.FormatError`` (corrupt or truncated files; ``ChecksumError`` for a
checksum mismatch), ``weightio.UnsupportedFeatureError`` (valid but unsupported, e.g. a
variant tensor), ``weightio.NotFoundError`` (a ``KeyError``) for a missing tensor,
``FileNotFoundError`` when there is no checkpoint at the path. Messages name the file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _core
from .errors import Error, NotFoundError, UnsupportedFeatureError

__all__ = [
    "CheckpointReader",
    "DType",
    "ObjectGraph",
    "ObjectReference",
    "RegisteredSaver",
    "SerializedTensor",
    "SlotVariableReference",
    "TrackableObject",
    "bench",
    "escape_local_name",
    "latest_checkpoint",
    "load_checkpoint",
    "resolve_prefix",
]

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

# ---------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------

# TensorFlow's DataType enum (types.proto): enum -> (TF name, numpy type or a dtype spec).
# Strings map to ``object``; names starting with "ml_dtypes." come from ml_dtypes.
_DTYPE_TABLE: dict[int, tuple[str, Any]] = {
    1: ("float32", np.float32),
    2: ("float64", np.float64),
    3: ("int32", np.int32),
    4: ("uint8", np.uint8),
    5: ("int16", np.int16),
    6: ("int8", np.int8),
    7: ("string", object),
    8: ("complex64", np.complex64),
    9: ("int64", np.int64),
    10: ("bool", np.bool_),
    11: ("qint8", [("qint8", "i1")]),
    12: ("quint8", [("quint8", "u1")]),
    13: ("qint32", [("qint32", "<i4")]),
    14: ("bfloat16", "ml_dtypes.bfloat16"),
    15: ("qint16", [("qint16", "<i2")]),
    16: ("quint16", [("quint16", "<u2")]),
    17: ("uint16", np.uint16),
    18: ("complex128", np.complex128),
    19: ("float16", np.float16),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", np.uint32),
    23: ("uint64", np.uint64),
    24: ("float8_e5m2", "ml_dtypes.float8_e5m2"),
    25: ("float8_e4m3fn", "ml_dtypes.float8_e4m3fn"),
    26: ("float8_e4m3fnuz", "ml_dtypes.float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", "ml_dtypes.float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", "ml_dtypes.float8_e5m2fnuz"),
    29: ("int4", "ml_dtypes.int4"),
    30: ("uint4", "ml_dtypes.uint4"),
    31: ("int2", "ml_dtypes.int2"),
    32: ("uint2", "ml_dtypes.uint2"),
    33: ("float4_e2m1fn", "ml_dtypes.float4_e2m1fn"),
}


# get_tensor returns quantized tensors as their plain integers, as TensorFlow does.
_READ_AS = {11: np.int8, 12: np.uint8, 13: np.int32, 15: np.int16, 16: np.uint16}

# DataType_Name spellings (types.proto) where they differ from "DT_" + name.upper().
_ENUM_NAMES = {1: "DT_FLOAT", 2: "DT_DOUBLE", 19: "DT_HALF"}


def _resolve_numpy_type(spec: Any, name: str) -> Any:
    if isinstance(spec, str):
        try:
            import ml_dtypes
        except ImportError:
            raise UnsupportedFeatureError(
                f"reading {name} tensors needs the ml_dtypes package (pip install ml_dtypes)"
            ) from None
        return getattr(ml_dtypes, spec.split(".", 1)[1])
    if isinstance(spec, list):
        return np.dtype(spec)
    return spec


class DType:
    """A TensorFlow dtype as a checkpoint stores it, without TensorFlow.

    Mirrors ``tf.DType``'s ``name``, ``as_datatype_enum`` and ``as_numpy_dtype`` (the numpy
    type, e.g. ``np.float32``, ``ml_dtypes.bfloat16``, ``object`` for strings); ``numpy_dtype``
    is the ``np.dtype``. Equal to another DType, a ``tf.DType`` of the same enum, a numpy
    dtype or type, or a dtype name (``"float32"``, ``"half"`` is not a TF name)."""

    __slots__ = ("as_datatype_enum", "name", "_spec")

    def __init__(self, enum: int) -> None:
        self.as_datatype_enum = int(enum)
        name, spec = _DTYPE_TABLE.get(self.as_datatype_enum, (f"DataType({enum})", None))
        self.name = name
        self._spec = spec

    @property
    def as_numpy_dtype(self) -> Any:
        if self._spec is None:
            raise UnsupportedFeatureError(f"TensorFlow dtype {self.name} has no numpy equivalent")
        return _resolve_numpy_type(self._spec, self.name)

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.as_numpy_dtype)

    dtype = numpy_dtype

    @property
    def enum_name(self) -> str:
        """``DT_FLOAT``, ``DT_HALF``, ... as types.proto spells it."""
        return _ENUM_NAMES.get(self.as_datatype_enum, "DT_" + self.name.upper())

    @property
    def read_dtype(self) -> np.dtype:
        """The numpy dtype ``get_tensor`` returns (quantized types as plain integers)."""
        plain = _READ_AS.get(self.as_datatype_enum)
        return np.dtype(plain) if plain is not None else self.numpy_dtype

    @property
    def is_string(self) -> bool:
        return self.as_datatype_enum == 7

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return other.as_datatype_enum == self.as_datatype_enum
        enum = getattr(other, "as_datatype_enum", None)
        if isinstance(enum, int) and not isinstance(other, np.dtype):
            return enum == self.as_datatype_enum
        if isinstance(other, str) and other == self.name:
            return True
        if self._spec is None:
            return False
        try:
            return bool(np.dtype(other) == self.numpy_dtype)  # type: ignore[call-overload]
        except (TypeError, ValueError, UnsupportedFeatureError):
            return False

    def __hash__(self) -> int:
        return hash(("tf.DType", self.as_datatype_enum))

    def __repr__(self) -> str:
        return f"weightio.tf.DType({self.name})"


_DTYPE_CACHE: dict[int, DType] = {}


def _dtype(enum: int) -> DType:
    d = _DTYPE_CACHE.get(enum)
    if d is None:
        d = _DTYPE_CACHE[enum] = DType(enum)
    return d


# ---------------------------------------------------------------------------------------
# the object graph
# ---------------------------------------------------------------------------------------


def escape_local_name(name: str) -> str:
    """An edge name as checkpoint keys spell it ("." doubled, "/" as ".S"), like TF's
    ``trackable_utils.escape_local_name``."""
    return name.replace(".", "..").replace("/", ".S")


class ObjectReference(NamedTuple):
    node_id: int
    local_name: str


class SerializedTensor(NamedTuple):
    name: str  # "VARIABLE_VALUE" for variables
    full_name: str  # the variable's graph name (tf.compat.v1 style)
    checkpoint_key: str  # the key of the tensor in this checkpoint
    optional_restore: bool


class SlotVariableReference(NamedTuple):
    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


class RegisteredSaver(NamedTuple):
    name: str
    object_name: str


class TrackableObject(NamedTuple):
    node_id: int
    children: list[ObjectReference]
    attributes: list[SerializedTensor]
    slot_variables: list[SlotVariableReference]
    registered_saver: RegisteredSaver | None
    has_checkpoint_values: bool | None

    def child(self, local_name: str) -> int | None:
        """The node id of the child edge named ``local_name``, or None."""
        for c in self.children:
            if c.local_name == local_name:
                return c.node_id
        return None


class ObjectGraph:
    """The decoded ``TrackableObjectGraph``: ``nodes[0]`` is the root (the object that was
    saved: a ``tf.train.Checkpoint`` or a Keras model), edges are named children
    (``layer_with_weights-0``, ``kernel``, ``optimizer``...), variables are nodes with an
    attribute named ``VARIABLE_VALUE`` whose ``checkpoint_key`` is their key here, and
    optimizers list their slot variables (``m``, ``v``...) per original variable node."""

    def __init__(self, nodes: list[TrackableObject]) -> None:
        self.nodes = nodes

    @classmethod
    def _from_core(cls, raw: list) -> ObjectGraph:
        nodes = []
        for i, (children, attributes, slots, saver, has_values) in enumerate(raw):
            nodes.append(
                TrackableObject(
                    i,
                    [ObjectReference(*c) for c in children],
                    [SerializedTensor(*a) for a in attributes],
                    [SlotVariableReference(*s) for s in slots],
                    RegisteredSaver(*saver) if saver is not None else None,
                    has_values,
                )
            )
        return cls(nodes)

    @property
    def root(self) -> TrackableObject:
        return self.nodes[0]

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, node_id: int) -> TrackableObject:
        return self.nodes[node_id]

    def __iter__(self) -> Iterator[TrackableObject]:
        return iter(self.nodes)

    def walk(self) -> Iterator[tuple[tuple[str, ...], TrackableObject]]:
        """``(path, node)`` for every node reachable from the root, breadth-first, each node
        once under its first (shortest) path: the order TensorFlow names objects in."""
        if not self.nodes:
            return
        seen = {0}
        queue: deque[tuple[tuple[str, ...], int]] = deque([((), 0)])
        while queue:
            path, node_id = queue.popleft()
            node = self.nodes[node_id]
            yield path, node
            for c in node.children:
                if c.node_id not in seen:
                    seen.add(c.node_id)
                    queue.append((path + (c.local_name,), c.node_id))

    def resolve(self, path: str | Sequence[str], start: int = 0) -> int | None:
        """The node reached from ``start`` by following child names (``"a/b"`` or a
        sequence), or None."""
        parts = [p for p in path.split("/") if p] if isinstance(path, str) else list(path)
        node_id: int | None = start
        for p in parts:
            node_id = self.nodes[node_id].child(p)  # type: ignore[index]
            if node_id is None:
                return None
        return node_id

    def object_paths(self) -> dict[int, str]:
        """``{node_id: path}`` with the path as checkpoint keys spell it (escaped local names
        joined by "/"), for every node reachable from the root: a node's key is
        ``f"{path}/.ATTRIBUTES/{attribute name}"``, a slot variable's
        ``f"{variable path}/.OPTIMIZER_SLOT/{optimizer path}/{slot name}/.ATTRIBUTES/..."``."""
        return {node.node_id: "/".join(escape_local_name(p) for p in path) for path, node in self.walk()}

    def variables(self) -> dict[str, tuple[tuple[str, ...], int]]:
        """``{checkpoint_key: (path, node_id)}`` of every serialized tensor reachable from
        the root (slot variables included, under their own nodes)."""
        out: dict[str, tuple[tuple[str, ...], int]] = {}
        for path, node in self.walk():
            for a in node.attributes:
                out.setdefault(a.checkpoint_key, (path + (a.name,), node.node_id))
        return out

    def slot_variables(self) -> list[tuple[int, SlotVariableReference]]:
        """``(optimizer_node_id, slot_reference)`` for every slot variable."""
        return [(node.node_id, s) for node in self.nodes for s in node.slot_variables]

    def __repr__(self) -> str:
        return f"<weightio.tf.ObjectGraph: {len(self.nodes)} nodes>"


# ---------------------------------------------------------------------------------------
# finding the checkpoint
# ---------------------------------------------------------------------------------------

_STATE_FIELD = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', re.M)
_DATA_FILE = re.compile(r"^(.*)\.data-\d{5}-of-\d{5}$")


def _unescape_text_proto(s: str) -> str:
    """Undoes protobuf text-format string escaping (\\n, \\", \\\\, octal and hex bytes)."""
    out = bytearray()
    raw = s.encode("utf-8", "surrogateescape")
    i = 0
    simple = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("v"): 11}
    while i < len(raw):
        ch = raw[i]
        if ch != 0x5C or i + 1 >= len(raw):
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif 0x30 <= nxt <= 0x37:
            j = i + 1
            while j < len(raw) and j < i + 4 and 0x30 <= raw[j] <= 0x37:
                j += 1
            out.append(int(raw[i + 1 : j], 8) & 0xFF)
            i = j
        elif nxt in (ord("x"), ord("X")):
            j = i + 2
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(raw[i + 2 : j] or b"0", 16))
            i = j
        else:
            out.append(nxt)
            i += 2
    return out.decode("utf-8", "surrogateescape")


def latest_checkpoint(directory: str | os.PathLike, latest_filename: str = "checkpoint") -> str | None:
    """The prefix the ``checkpoint`` state file in ``directory`` names (like
    ``tf.train.latest_checkpoint``), or None when there is none or its index is missing."""
    directory = os.fspath(directory)
    state = os.path.join(directory, latest_filename)
    try:
        with open(state, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read(1 << 20)
    except OSError:
        return None
    m = _STATE_FIELD.search(text)
    if m is None:
        return None
    prefix = _unescape_text_proto(m.group(1))
    if not os.path.isabs(prefix):
        prefix = os.path.join(directory, prefix)
    return prefix if os.path.isfile(prefix + ".index") else None


def resolve_prefix(path: str | os.PathLike) -> str:
    """The checkpoint prefix ``path`` designates: a prefix (``ckpt`` for ``ckpt.index``), the
    index or a data file itself, a directory with a ``checkpoint`` state file (its latest
    checkpoint), or a SavedModel directory (its ``variables/variables``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest
        saved_model = os.path.join(path, "variables", "variables")
        if os.path.isfile(saved_model + ".index"):
            return saved_model
        raise FileNotFoundError(
            errno.ENOENT,
            "no checkpoint in this directory (no 'checkpoint' state file naming an existing "
            "checkpoint, no SavedModel variables/variables.index)",
            path,
        )
    if os.path.isfile(path + ".index"):
        return path
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    m = _DATA_FILE.match(path)
    if m and os.path.isfile(m.group(1) + ".index"):
        return m.group(1)
    if os.path.isfile(path):
        raise UnsupportedFeatureError(
            f"{path}: not a V2 checkpoint prefix (there is no {os.path.basename(path)}.index); "
            "TF1 'V1' checkpoints (a single table file) are not supported"
        )
    raise FileNotFoundError(errno.ENOENT, "no checkpoint at this prefix", path + ".index")


# ---------------------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------------------


class _Var(NamedTuple):
    key: bytes
    dtype: int
    shape: tuple[int, ...]
    partitioned: bool


class CheckpointReader:
    """A V2 TensorFlow checkpoint, read natively (see the module docstring)."""

    def __init__(self, prefix: str | os.PathLike, *, verify: bool = False) -> None:
        self._prefix = os.fspath(prefix)
        self._verify_default = bool(verify)
        self._core: Any = _core.tfckpt.TfBundle(self._prefix)
        self._vars: dict[str, _Var] = {}
        for key, dtype, shape, partitioned in self._core.variables():
            self._vars[key.decode("utf-8", "surrogateescape")] = _Var(key, dtype, tuple(shape), partitioned)
        if verify:
            self.verify()

    # -- TensorFlow's CheckpointReader methods -------------------------------------------

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(v.shape) for name, v in self._vars.items()}

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        return {name: _dtype(v.dtype) for name, v in self._vars.items()}

    def has_tensor(self, name: str) -> bool:
        return name in self._vars

    def get_tensor(self, name: str, *, copy: bool = False, verify: bool | None = None) -> Any:
        """The tensor's value: a numpy array (a read-only view of the mapped data when the
        stored bytes allow it and ``copy`` is false), a numpy scalar for a scalar, an object
        array of ``bytes`` for strings (``bytes`` for a scalar string)."""
        var = self._var(name)
        verify = self._verify_default if verify is None else verify
        if var.dtype == 7:
            return self._strings(var, verify)
        dtype = _dtype(var.dtype).read_dtype
        arr = None
        if not copy:
            direct = self._core.direct(var.key, verify)
            if direct is not None:
                buf, offset, nbytes = direct
                if offset % dtype.alignment == 0:
                    arr = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
                    arr = arr.reshape(var.shape)
        if arr is None:
            arr = self._core.read_many([var.key], [dtype], [True], 1, verify)[0]
        return arr[()] if var.shape == () else arr

    # -- more ----------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def num_shards(self) -> int:
        return int(self._core.num_shards)

    def keys(self) -> list[str]:
        """The tensor names, sorted as the checkpoint stores them."""
        return list(self._vars)

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def shape(self, name: str) -> tuple[int, ...]:
        return self._var(name).shape

    def dtype(self, name: str) -> DType:
        return _dtype(self._var(name).dtype)

    def is_partitioned(self, name: str) -> bool:
        return self._var(name).partitioned

    def entry(self, name: str) -> dict[str, Any]:
        """The raw BundleEntryProto fields of a tensor (dtype, shape, shard_id, offset, size,
        masked crc32c, slices)."""
        return dict(self._core.info(self._var(name).key))

    def read_many(
        self,
        names: Sequence[str],
        dtypes: Any = None,
        threads: int | None = None,
        *,
        verify: bool | None = None,
        outs: Sequence[np.ndarray | None] | None = None,
    ) -> list[Any]:
        """Reads many tensors in one call: in parallel, without the GIL, converting to
        ``dtypes`` (one dtype for all, or one per name; None keeps the stored type) in the
        same pass. Returns new writeable arrays (or the given ``outs``) in the order of
        ``names``; string tensors come back as object arrays of bytes."""
        names = list(names)
        verify = self._verify_default if verify is None else verify
        vars_ = [self._var(n) for n in names]
        if dtypes is None or not isinstance(dtypes, (list, tuple)):
            targets = [dtypes] * len(names)
        else:
            targets = list(dtypes)
            if len(targets) != len(names):
                raise ValueError(f"{len(targets)} dtypes for {len(names)} names")
        if outs is not None:
            outs = list(outs)
            if len(outs) != len(names):
                raise ValueError(f"{len(outs)} outs for {len(names)} names")
        results: list[Any] = [None] * len(names)
        keys, out_dtypes, raws, positions, out_arrays = [], [], [], [], []
        for i, (var, target) in enumerate(zip(vars_, targets)):
            if var.dtype == 7:
                if target is not None and np.dtype(target) != np.dtype(object):
                    raise Error(f"{names[i]}: cannot convert a string tensor to {np.dtype(target)}")
                value = self._strings(var, verify, scalar_as_bytes=False)
                if outs is not None and outs[i] is not None:
                    outs[i][...] = value
                    value = outs[i]
                results[i] = value
                continue
            natural = _dtype(var.dtype).read_dtype
            out = None if outs is None else outs[i]
            want = np.dtype(target) if target is not None else (out.dtype if out is not None else natural)
            keys.append(var.key)
            out_dtypes.append(want)
            raws.append(want == natural)
            positions.append(i)
            out_arrays.append(out)
        if keys:
            arrays = self._core.read_many(
                keys, out_dtypes, raws, threads, verify, None if outs is None else out_arrays
            )
            for i, arr in zip(positions, arrays):
                results[i] = arr
        return results

    def _read_ahead(self, names: Sequence[str], outs: Sequence[np.ndarray], threads: int) -> Any:
        """Starts reading whole fixed-size tensors into ``outs`` (C-contiguous, writeable, of
        each tensor's size; converted to their dtypes) on ``threads`` native threads of their
        own, without verifying checksums; the job's ``finish()`` reads what is not begun,
        waits, and says which were read. (weightio.keras's first restores.)"""
        return self._core.read_ahead([self._var(n).key for n in names], list(outs), threads)

    def load_all(self, threads: int | None = None, *, verify: bool | None = None) -> dict[str, Any]:
        """Every tensor, by name (``read_many`` of all keys)."""
        names = self.keys()
        return dict(zip(names, self.read_many(names, threads=threads, verify=verify)))

    def verify(self, names: Sequence[str] | None = None, threads: int | None = None) -> None:
        """Checks the CRC-32C of the data of ``names`` (default: every tensor) against the
        index; raises ``weightio.ChecksumError`` at the first mismatch."""
        keys = None if names is None else [self._var(n).key for n in names]
        self._core.verify(keys, threads)

    def object_graph(self) -> ObjectGraph | None:
        """The decoded ``_CHECKPOINTABLE_OBJECT_GRAPH`` (None for a name-based checkpoint,
        e.g. one written by ``tf.compat.v1.train.Saver``)."""
        if OBJECT_GRAPH_KEY not in self._vars:
            return None
        raw = self._core.object_graph()
        return None if raw is None else ObjectGraph._from_core(raw)

    def debug_string(self) -> bytes:
        """Like TF's ``debug_string()``: one ``name (DT_X) [dims]`` line per tensor."""
        lines = []
        for name, v in self._vars.items():
            dims = ",".join(str(d) for d in v.shape)
            lines.append(f"{name} ({_dtype(v.dtype).enum_name}) [{dims}]\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    def close(self) -> None:
        """Drops the reader. Views returned by ``get_tensor`` stay valid (they keep their
        data file mapped)."""
        self._core = None

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<weightio.tf.CheckpointReader {self._prefix!r}: {len(self._vars)} tensors>"

    # -- internals -----------------------------------------------------------------------

    def _var(self, name: str) -> _Var:
        if self._core is None:
            raise ValueError("the checkpoint reader is closed")
        try:
            return self._vars[name]
        except KeyError:
            raise NotFoundError(f"Key {name} not found in checkpoint {self._prefix}") from None

    def _strings(self, var: _Var, verify: bool, scalar_as_bytes: bool = True) -> Any:
        items = self._core.read_strings(var.key, verify)
        if var.shape == () and scalar_as_bytes:
            return items[0]
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr.reshape(var.shape)


def load_checkpoint(path: str | os.PathLike, *, verify: bool = False) -> CheckpointReader:
    """Opens a checkpoint like ``tf.train.load_checkpoint``: ``path`` is a prefix, a directory
    holding a ``checkpoint`` state file (its latest checkpoint), or a SavedModel directory.
    ``verify=True`` checks every tensor's CRC-32C at open (and on each read)."""
    return CheckpointReader(resolve_prefix(path), verify=verify)


# ---------------------------------------------------------------------------------------
# benchmark
# ---------------------------------------------------------------------------------------


def _best_of(repeat: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_resnet50_checkpoint(directory: str | os.PathLike) -> str:
    """Writes ``ResNet50(weights=None)`` with ``tf.train.Checkpoint`` under ``directory`` and
    returns its prefix (needs TensorFlow, and tf-keras or Keras 3)."""
    import tensorflow as tf

    try:
        import tf_keras as keras_mod
    except ImportError:  # pragma: no cover - depends on the environment
        keras_mod = tf.keras
    model = keras_mod.applications.ResNet50(weights=None)
    return str(tf.train.Checkpoint(model=model).write(os.path.join(os.fspath(directory), "resnet50")))


_TF_TIMING_SCRIPT = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
prefix, repeat = sys.argv[1], int(sys.argv[2])
def run():
    r = tf.train.load_checkpoint(prefix)
    for k in r.get_variable_to_shape_map():
        r.get_tensor(k)
run()
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t0)
print(best)
"""


def _in_subprocess(args: list[str], what: str) -> str:
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]


def bench(prefix: str | os.PathLike | None = None, repeat: int = 5, threads: int | None = None) -> dict[str, Any]:
    """Times reading every tensor of a checkpoint with weightio and with TensorFlow
    (``tf.train.load_checkpoint`` + ``get_tensor`` for every key), each from a fresh reader,
    best of ``repeat`` (seconds). TensorFlow runs in a subprocess (it needs to be installed),
    weightio in this process, as its users run it: without TensorFlow. Without ``prefix``, a
    ResNet50 checkpoint is written to a temporary directory first (by a TF subprocess).
    weightio is timed four ways:

    * ``views``: ``get_tensor`` for every key (zero-copy views of the mapped data);
    * ``views_touched``: the same, then one byte of every 4 KiB page of every tensor read, so
      that all the data is mapped into the process (what using the values costs at least);
    * ``read_many``: ``load_all()``, copies into new memory (its first-touch page faults are
      a good part of the cost);
    * ``read_many_outs``: ``read_many(outs=...)`` into preallocated arrays (how a loader fills
      existing variable buffers: one copy from the page cache).

    ``ratio_<way>`` is TensorFlow's time over weightio's; ``ratio`` is ``ratio_views_touched``,
    the like-for-like ``get_tensor`` loop with the data actually brought in."""
    import tempfile

    tmp = None
    if prefix is None:
        tmp = tempfile.TemporaryDirectory()
        code = f"import weightio.tf as wt; print(wt.make_resnet50_checkpoint({tmp.name!r}))"
        prefix = _in_subprocess(["-c", code], "writing the ResNet50 checkpoint")
    prefix = resolve_prefix(prefix)
    try:

        def views(touch: bool) -> None:
            r = load_checkpoint(prefix)
            for k in r.keys():
                v = r.get_tensor(k)
                if touch and isinstance(v, np.ndarray) and v.dtype != object and v.size:
                    flat = v.reshape(-1).view(np.uint8)
                    int(flat[::4096].sum())

        reader = load_checkpoint(prefix)
        names = reader.keys()
        outs = [a if isinstance(a, np.ndarray) and a.dtype != object else None for a in reader.read_many(names)]
        timings = {
            "views": lambda: views(False),
            "views_touched": lambda: views(True),
            "read_many": lambda: load_checkpoint(prefix).load_all(threads=threads),
            "read_many_outs": lambda: load_checkpoint(prefix).read_many(names, threads=threads, outs=outs),
        }
        out: dict[str, Any] = {
            "prefix": prefix,
            "tensors": len(reader),
            "bytes": sum(a.nbytes for a in outs if a is not None),
            "tf_get_tensor_s": float(_in_subprocess(["-c", _TF_TIMING_SCRIPT, prefix, str(repeat)], "TensorFlow")),
        }
        for way, fn in timings.items():
            fn()  # warm the code path
            out[f"weightio_{way}_s"] = _best_of(repeat, fn)
        for way in timings:
            out[f"ratio_{way}"] = out["tf_get_tensor_s"] / out[f"weightio_{way}_s"]
        out["ratio"] = out["ratio_views_touched"]
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":  # python -m weightio.tf bench [PREFIX] [--json]
    import sys

    args = [a for a in sys.argv[1:] if a != "--json"]
    if not args or args[0] != "bench":
        print("usage: python -m weightio.tf bench [PREFIX] [--json]", file=sys.stderr)
        raise SystemExit(2)
    result = bench(args[1] if len(args) > 1 else None)
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
