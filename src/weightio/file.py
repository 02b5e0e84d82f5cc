"""The h5py-like, read-only file API over the native reader.

``File``/``Group``/``Dataset``/``AttributeManager`` follow h5py's names and return the same
values h5py returns, so code (and users) need no manual. Objects are addressed by their
object header address inside the native ``_core.hdf5.H5File``; this module only shapes
Python values. Where the native reader meets valid HDF5 it does not implement
(``UnsupportedFeatureError``) and h5py is installed, that one object is read through h5py
instead, unless the file was opened with ``fallback=False``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import _core
from .errors import Error, UnsupportedFeatureError, with_context

log = logging.getLogger("weightio")

_FILTER_COMPRESSION = {1: "gzip", 4: "szip", 32000: "lzf"}


def _enc(name: str) -> bytes:
    """A name as the file stores it (bytes); undecodable bytes round-trip via surrogates."""
    return name.encode("utf-8", "surrogateescape")


# Relative names that normpath leaves alone (no empty, "." or ".." components, nor any
# component starting with "."): the common case, joined without posixpath, whose cost
# showed in f[name] for every weight of a model.
_PLAIN_NAME = re.compile(r"[^/.][^/]*(?:/[^/.][^/]*)*")


def _join(parent: str, name: str) -> str:
    if _PLAIN_NAME.fullmatch(name):
        return "/" + name if parent == "/" else parent + "/" + name
    path = name if name.startswith("/") else posixpath.join(parent, name)
    path = posixpath.normpath(path)
    return "/" if path in ("/", "//", ".") else path


class Empty:
    """The value of an attribute or dataset with a null dataspace (h5py's ``h5py.Empty``)."""

    shape = None
    size = None

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)

    def __eq__(self, other: object) -> bool:
        return type(other).__name__ == "Empty" and getattr(other, "dtype", None) == self.dtype

    def __hash__(self) -> int:
        return hash(("Empty", self.dtype))

    def __repr__(self) -> str:
        return f"Empty(dtype={self.dtype!r})"


class HardLink:
    """A hard link, as returned by ``Group.get(name, getlink=True)``."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HardLink)

    __hash__ = object.__hash__


class SoftLink:
    """A soft link to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SoftLink) and other.path == self.path

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"SoftLink({self.path!r})"


class ExternalLink:
    """A link to ``path`` in another file ``filename`` (never followed: weightio refuses)."""

    def __init__(self, filename: str, path: str) -> None:
        self.filename = filename
        self.path = path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExternalLink) and (other.filename, other.path) == (self.filename, self.path)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"ExternalLink({self.filename!r}, {self.path!r})"


def _attribute_value(kind: str, typestr: str, shape: tuple[int, ...], payload: Any) -> Any:
    if kind == "null":
        return Empty(typestr)
    if kind.startswith("vstr"):  # the core decoded them already
        if not shape:
            return payload[0]
        out = np.empty(len(payload), dtype=object)
        out[:] = payload
        return out.reshape(shape)
    # (the core already rewrote NULLTERM/SPACEPAD strings the way HDF5 converts them)
    arr = np.frombuffer(payload, dtype=np.dtype(typestr)).copy().reshape(shape)
    return arr[()] if not shape else arr


class _Object:
    """What groups and datasets share: the file, the address, the path and the attributes."""

    __slots__ = ("_addr", "_attrs", "file", "name")

    def __init__(self, file: File, addr: int, name: str) -> None:
        self.file = file
        self._addr = addr
        self.name = name
        self._attrs: AttributeManager | None = None

    @property
    def attrs(self) -> AttributeManager:
        if self._attrs is None:
            self._attrs = AttributeManager(self)
        return self._attrs

    @property
    def parent(self) -> Group:
        return self.file[posixpath.dirname(self.name) or "/"]

    def _h5py(self) -> Any:
        """The same object opened with h5py (the fallback)."""
        return self.file._h5py_file()[self.name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Object) and other.file is self.file and other._addr == self._addr

    def __hash__(self) -> int:
        return hash((id(self.file), self._addr))

    def __bool__(self) -> bool:
        return self.file._core is not None


class AttributeManager:
    """The attributes of an object, like h5py's ``obj.attrs`` (read-only)."""

    def __init__(self, obj: _Object) -> None:
        self._obj = obj
        self._values: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            obj = self._obj
            try:
                raw = obj.file._raw_attributes(obj.name, obj._addr)
                self._values = {
                    name: _attribute_value(kind, typestr, tuple(shape), payload)
                    for name, kind, typestr, shape, payload in raw
                }
            except UnsupportedFeatureError as exc:
                self._values = dict(obj.file._fallback(exc, obj.name, lambda: obj._h5py().attrs.items()))
        return self._values

    def __getitem__(self, name: str) -> Any:
        values = self._load()
        if name not in values:
            raise KeyError(f"{self._obj.file.filename}: {self._obj.name}: no attribute {name!r}")
        return values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._load().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._load()))

    def __len__(self) -> int:
        return len(self._load())

    def keys(self) -> list[str]:
        return list(self._load())

    def values(self) -> list[Any]:
        return list(self._load().values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._load().items())

    def __repr__(self) -> str:
        return f"<weightio attributes of {self._obj.name!r} ({len(self)} members)>"


class Group(_Object):
    """A group: a mapping from names to groups and datasets, like ``h5py.Group``."""

    __slots__ = ()

    def _links(self) -> list[tuple[str, str, int | None, str, str]]:
        return self.file._call(self.name, "links", self._addr)

    def keys(self) -> list[str]:
        return [link[0] for link in self._links()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._links())

    def values(self) -> list[Group | Dataset]:
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Group | Dataset]]:
        return [(k, self[k]) for k in self.keys()]

    def __contains__(self, name: object) -> bool:
        """Like h5py: the path's groups must exist and its last link must exist (a
        dangling soft link or an external link still counts)."""
        if not isinstance(name, str) or not name or self.file._core is None:
            return False  # (h5py: "" is not in a group, "/" and "." are)
        parent, _, leaf = name.rstrip("/").rpartition("/")
        if leaf in ("", "."):
            return True
        return bool(self.file._core.contains(self._addr, _enc(parent or "/" if name.startswith("/") else parent), _enc(leaf)))

    def __getitem__(self, name: str) -> Group | Dataset:
        if not isinstance(name, str):
            raise TypeError(f"weightio: object names are str, got {type(name).__name__}")
        path = _join(self.name, name)
        addr, kind = self.file._call(path, "resolve_object", self._addr, _enc(name))
        return self.file._object_of_kind(addr, kind, path)

    def get(self, name: str, default: Any = None, getlink: bool = False) -> Any:
        if getlink:
            parent, _, leaf = name.rstrip("/").rpartition("/")
            group = self[parent] if parent else self
            if not isinstance(group, Group):
                return default
            try:
                _, kind, _, target, ext_file = self.file._call(_join(self.name, name), "link", group._addr, _enc(leaf))
            except KeyError:
                return default
            if kind == "soft":
                return SoftLink(target)
            if kind == "external":
                return ExternalLink(ext_file, target)
            return HardLink()
        try:
            return self[name]
        except KeyError:
            return default

    def _child(self, name: str) -> tuple[str, Group | Dataset | None]:
        """The link ``name`` of this group (one component): its kind ("hard", "soft",
        "external") and, for a hard link, the object. KeyError if there is none."""
        path = _join(self.name, name)
        kind, addr, object_kind = self.file._call(path, "child", self._addr, _enc(name))
        if kind != "hard":
            return kind, None
        return kind, self.file._object_of_kind(addr, object_kind, path)

    def _hard_group(self, path: str) -> tuple[Group, list[str]] | None:
        """The group at ``path`` below this one and its member names, where every part of the
        path is a hard link to a group (what Keras's safe lookups accept); None where anything
        else is met, for the caller's own lookup to find and report. One native call."""
        core = self.file._core
        found = None if core is None else core.hard_group(self._addr, _enc(path))
        if found is None:
            return None
        addr, names = found
        return Group(self.file, addr, _join(self.name, path)), names

    def visit(self, func: Callable[[str], Any]) -> Any:
        for path, _, _ in self._walk():
            result = func(path)
            if result is not None:
                return result
        return None

    def visititems(self, func: Callable[[str, Group | Dataset], Any]) -> Any:
        for path, _, addr in self._walk():
            result = func(path, self.file._object(addr, _join(self.name, path)))
            if result is not None:
                return result
        return None

    def _walk(self) -> list[tuple[str, str, int]]:
        return self.file._call(self.name, "walk", self._addr)

    def __repr__(self) -> str:
        return f'<weightio group "{self.name}" ({len(self)} members)>'


class Dataset(_Object):
    """A dataset, like ``h5py.Dataset`` (read-only): shape, dtype, slicing, zero-copy views."""

    __slots__ = ("_info_cache",)

    def __init__(self, file: File, addr: int, name: str) -> None:
        super().__init__(file, addr, name)
        self._info_cache: dict[str, Any] | None = None

    @property
    def _info(self) -> dict[str, Any]:
        """Everything the core knows about the dataset (parsed on first use)."""
        if self._info_cache is None:
            self._info_cache = self.file._call(self.name, "dataset_info", self._addr)
        return self._info_cache

    # -- description ---------------------------------------------------------------------
    @property
    def _native(self) -> bool:
        return self._info["unsupported"] is None

    def _require_native_or_fallback(self) -> bool:
        """True when the native reader handles the data; else falls back or raises."""
        if self._native:
            return True
        exc = UnsupportedFeatureError(self._info["unsupported"])
        self.file._fallback(exc, self.name, lambda: None)
        return False

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self._info["space"] == "null" else tuple(self._info["shape"])

    @property
    def maxshape(self) -> tuple[int | None, ...] | None:
        return None if self._info["space"] == "null" else tuple(self._info["maxshape"])

    @property
    def dtype(self) -> np.dtype:
        typestr = self._info["typestr"]
        if typestr:
            return np.dtype(typestr)
        if self._require_native_or_fallback():
            raise UnsupportedFeatureError(f"{self.file.filename}: {self.name}: {self._info['type']} datatype")
        return self._h5py().dtype

    @property
    def ndim(self) -> int:
        return len(self._info["shape"])

    @property
    def size(self) -> int | None:
        shape = self.shape
        return None if shape is None else int(np.prod(shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return (self.size or 0) * self.dtype.itemsize

    @property
    def chunks(self) -> tuple[int, ...] | None:
        chunks = self._info["chunks"]
        return None if chunks is None else tuple(chunks)

    @property
    def layout(self) -> str:
        """``"contiguous"``, ``"compact"``, ``"chunked"`` or ``"virtual"``."""
        return self._info["layout"]

    @property
    def compression(self) -> str | None:
        for fid, _, _, _ in self._info["filters"]:
            if fid in _FILTER_COMPRESSION:
                return _FILTER_COMPRESSION[fid]
        return None

    @property
    def compression_opts(self) -> Any:
        for fid, _, _, client in self._info["filters"]:
            if fid == 1:
                return client[0] if client else None
            if fid == 4 and len(client) >= 2:
                # h5py reports the szip coding method by name (H5_SZIP_NN_OPTION_MASK = 32).
                return ("nn" if client[0] & 32 else "ec", client[1])
        return None

    @property
    def shuffle(self) -> bool:
        return any(fid == 2 for fid, _, _, _ in self._info["filters"])

    @property
    def fletcher32(self) -> bool:
        return any(fid == 3 for fid, _, _, _ in self._info["filters"])

    @property
    def filters(self) -> list[str]:
        """Names of the filters in pipeline order (``["shuffle", "gzip"]``...)."""
        return [name for _, name, _, _ in self._info["filters"]]

    @property
    def fillvalue(self) -> Any:
        if not self._native and not self._require_native_or_fallback():
            return self._h5py().fillvalue
        dtype = self.dtype
        fill = self._info["fill"]
        if fill is not None and len(fill) == dtype.itemsize:
            return np.frombuffer(fill, dtype=dtype)[0]
        return np.zeros((), dtype=dtype)[()]

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("Attempt to take len() of scalar dataset")
        return shape[0]

    # -- reading -------------------------------------------------------------------------
    def read(self, out: np.ndarray | None = None, dtype: Any = None) -> np.ndarray:
        """Reads the whole dataset into a new array (of ``dtype``) or into ``out``."""
        if self._info["space"] == "null":
            raise TypeError(f"{self.name}: dataset has no data (null dataspace)")
        shape = self.shape or ()
        if not self._require_native_or_fallback():
            h5ds = self._h5py()
            data = h5ds[()]
            if not isinstance(data, np.ndarray):  # a scalar: keep h5py's dtype (e.g. object)
                scalar = np.empty((), dtype=h5ds.dtype)
                scalar[()] = data
                data = scalar
            return self._deliver(data, out, dtype)
        if out is None:
            out = np.empty(shape, dtype=self.dtype if dtype is None else dtype)
        elif out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, dataset {self.name} has {shape}")
        target = out if out.flags.c_contiguous and out.flags.writeable else np.empty(shape, out.dtype)
        self.file._call(self.name, "read", self._addr, target, [0] * len(shape), list(shape))
        if target is not out:
            np.copyto(out, target)
        return out



    @staticmethod
    def _deliver(data: np.ndarray, out: np.ndarray | None, dtype: Any) -> np.ndarray:
        if out is not None:
            np.copyto(out, data, casting="unsafe")
            return out
        return data if dtype is None else data.astype(dtype)

    def view(self) -> np.ndarray:
        """A zero-copy, read-only array over the file mapping (contiguous or compact,
        unfiltered, allocated datasets, in the stored byte order);
        ``UnsupportedFeatureError`` otherwise."""
        # The hot path asks the core only for what a view needs.
        offset, shape, typestr = self.file._call(self.name, "view_info", self._addr)
        if offset is None:
            reason = self._info["unsupported"] or f"{self.layout} storage that is not one allocated block"
            raise UnsupportedFeatureError(f"{self.file.filename}: {self.name}: no zero-copy view: {reason}")
        # (One constructor call: cheaper than frombuffer + reshape. The mapping is read-only,
        # so the array is too.)
        return np.ndarray(shape, dtype=typestr, buffer=self.file._mapping, offset=offset)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.read(dtype=dtype)

    def __getitem__(self, key: Any) -> Any:
        if self._info["space"] == "null":
            if key == () or key is Ellipsis:
                return Empty(self.dtype)
            raise ValueError("Empty datasets cannot be sliced")
        if not self._native:
            self._require_native_or_fallback()
            return self._h5py()[key]
        shape = self.shape or ()
        selection = _basic_selection(key, shape)
        if selection is None:  # fancy indexing: read everything, let numpy index
            return self.read()[key]
        start, count, post = selection
        box = np.empty(count, dtype=self.dtype)
        self.file._call(self.name, "read", self._addr, box, start, count)
        result = box[post] if post else box
        if not shape and key == ():
            return result[()]
        return result

    def __repr__(self) -> str:
        return f'<weightio dataset "{self.name}": shape {self.shape}, type "{self._info["typestr"] or self._info["type"]}">'


def _basic_selection(key: Any, shape: tuple[int, ...]) -> tuple[list[int], list[int], tuple[Any, ...]] | None:
    """Turns basic indexing (ints, slices, Ellipsis) into the bounding box to read and the
    numpy index that picks the result from it; None for anything else."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = len(shape) - (len(key) - 1)
        key = key[:i] + (slice(None),) * max(fill, 0) + key[i + 1 :]
    if len(key) > len(shape):
        if key == () or all(k == () for k in key):
            key = ()
        else:
            raise IndexError(f"too many indices for dataset of rank {len(shape)}")
    key = key + (slice(None),) * (len(shape) - len(key))
    start, count, post = [], [], []
    for k, dim in zip(key, shape):
        if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            i = int(k)
            if i < 0:
                i += dim
            if not 0 <= i < dim:
                raise IndexError(f"index {int(k)} out of range for dimension of size {dim}")
            start.append(i)
            count.append(1)
            post.append(0)
        elif isinstance(k, slice):
            if k.step is not None and k.step < 1:
                raise ValueError("Step must be >= 1 (got %d)" % k.step)
            a, b, step = k.indices(dim)
            n = len(range(a, b, step))
            start.append(a if n else 0)
            count.append((n - 1) * step + 1 if n else 0)
            post.append(slice(None, None, step) if step != 1 else slice(None))
        else:
            return None
    trivial = all(isinstance(p, slice) and p == slice(None) for p in post)
    return start, count, (() if trivial else tuple(post))


class File(Group):
    """An HDF5 file opened read-only with the native reader, like ``h5py.File(path, "r")``."""

    __slots__ = ("__weakref__", "_attr_cache", "_buffer", "_core", "_fallback_enabled", "_h5", "_mapping", "filename")

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str = "r",
        *,
        fallback: bool = True,
        buffer: Any = None,
    ) -> None:
        """Opens ``path``; or, with ``buffer`` (any object with the buffer protocol, e.g. a
        memoryview of a mapped zip member), reads those bytes and uses ``path`` as the name."""
        if mode != "r":
            raise ValueError("weightio opens files read-only (mode='r')")
        self.filename = os.fspath(path)
        self._fallback_enabled = fallback
        self._h5: Any = None
        self._buffer = buffer
        try:
            if buffer is None:
                self._core = _core.hdf5.H5File(self.filename)
            else:
                self._core = _core.hdf5.H5File(buffer, self.filename)
        except Error as exc:
            raise with_context(exc, self.filename) from None
        self._mapping = self._core.mapping()
        self._attr_cache: dict[int, Any] = {}
        super().__init__(self, self._core.root, "/")

    # -- internals shared by the object classes -----------------------------------------
    def _call(self, name: str, method: str, *args: Any) -> Any:
        """The native file's ``method(*args)``, its errors naming the file and ``name``."""
        core = self._core
        if core is None:
            raise ValueError(f"{self.filename}: file is closed")
        try:
            return getattr(core, method)(*args)
        except Error as exc:
            raise with_context(exc, self.filename, name) from None

    def _raw_attributes(self, name: str, addr: int) -> Any:
        """The decoded attribute records of an object (immutable; cached per object)."""
        raw = self._attr_cache.get(addr)
        if raw is None:
            raw = self._attr_cache[addr] = self._call(name, "attributes", addr)
        return raw

    def _object(self, addr: int, path: str) -> Group | Dataset:
        return self._object_of_kind(addr, self._call(path, "kind", addr), path)

    def _object_of_kind(self, addr: int, kind: str, path: str) -> Group | Dataset:
        if kind == "dataset":
            return Dataset(self, addr, path)
        if kind == "datatype":
            raise UnsupportedFeatureError(f"{self.filename}: {path}: committed datatypes are not opened as objects")
        return Group(self, addr, path)

    def _h5py_file(self) -> Any:
        if self._h5 is None:
            import io

            import h5py

            source = self.filename if self._buffer is None else io.BytesIO(bytes(self._buffer))
            self._h5 = h5py.File(source, "r")
        return self._h5

    def _fallback(self, exc: UnsupportedFeatureError, name: str, read: Callable[[], Any]) -> Any:
        """Runs ``read`` through h5py if allowed and installed; else raises ``exc``."""
        if not self._fallback_enabled:
            raise with_context(exc, self.filename, name) from None
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise with_context(exc, self.filename, name) from None
        log.debug("weightio: %s: %s: falling back to h5py (%s)", self.filename, name, exc)
        return read()

    # -- public --------------------------------------------------------------------------
    @property
    def superblock_version(self) -> int:
        return self._core.superblock_version

    @property
    def userblock_size(self) -> int:
        return self._core.userblock_size

    def read_many(
        self,
        paths: Sequence[str],
        dtypes: Any = None,
        threads: int | None = None,
        out: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Reads many datasets in one call: in parallel, without the GIL, converting to
        ``dtypes`` (one dtype for all, or one per path; None keeps the stored type) in
        the same pass. Returns new arrays in the order of ``paths``.

        ``out``: one entry per path, None or a writeable C-contiguous array with the
        dataset's number of elements (its dtype is the target type), which dataset i is
        read into and returned as; e.g. a framework's parameter memory. All or nothing:
        if the call raises, no ``out`` array was written."""
        paths = list(paths)
        names = [_join(self.name, p) for p in paths]
        addrs = self._call("/", "resolve_many", self._addr, [_enc(p) for p in paths])
        targets = _normalize_dtypes(dtypes, len(paths))
        outs = None if out is None else list(out)
        if outs is not None:
            if len(outs) != len(paths):
                raise ValueError(f"out has {len(outs)} entries for {len(paths)} paths")
            if not all(o is None or isinstance(o, np.ndarray) for o in outs):
                raise ValueError("out entries must be numpy arrays or None")
            targets = [target if o is None else o.dtype for target, o in zip(targets, outs)]
        try:
            with _gc_paused():
                arrays = self._core.read_many(addrs, names, targets, [""] * len(paths), threads, outs)
        except UnsupportedFeatureError as exc:
            if not self._fallback_enabled:
                raise with_context(exc, self.filename) from None
            arrays = self._read_each(addrs, names, targets)
            if outs is not None:  # everything was read: check, then fill the outputs
                given = [(i, o) for i, o in enumerate(outs) if o is not None]
                for i, o in given:
                    if not (isinstance(o, np.ndarray) and o.flags.c_contiguous and o.flags.writeable):
                        raise ValueError("out must be a writeable C-contiguous array")
                    if o.size != arrays[i].size:
                        raise ValueError(f"out has {o.size} elements, the dataset {arrays[i].size}")
                for i, o in given:
                    o.reshape(-1)[...] = arrays[i].reshape(-1)
                    arrays[i] = o
        except Error as exc:
            raise with_context(exc, self.filename) from None
        return arrays

    def _read_each(self, addrs: list[int], names: list[str], targets: list[Any]) -> list[np.ndarray]:
        """The slow path of read_many when some dataset needs the h5py fallback."""
        out = []
        for addr, name, target in zip(addrs, names, targets):
            ds = Dataset(self, addr, name)
            if ds._native:
                out.append(self._core.read_many([addr], [name], [target], [""], 1)[0])
            else:
                out.append(ds.read(dtype=target))
        return out

    def close(self) -> None:
        """Closes the file. Zero-copy views stay valid: they keep the mapping alive."""
        self._core = None
        # A File refers to itself (it is its own root group's file), so the object lingers
        # until the cyclic collector runs: drop the mapping now (views hold their own
        # reference to it), or it stays mapped until then, and every page read through it
        # stays in the process's memory (a loop of loads grew by the file's size each time);
        # and drop what it cached (a legacy file's attributes are thousands of records,
        # which that collector would otherwise scan).
        self._mapping = None
        self._buffer = None
        self._attr_cache = {}
        self._attrs = None
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> File:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._core is None else "open"
        return f'<weightio file "{self.filename}" ({state})>'


def _normalize_dtypes(dtypes: Any, n: int) -> list[Any]:
    if dtypes is None:
        return [None] * n
    if isinstance(dtypes, (list, tuple)):
        if len(dtypes) != n:
            raise ValueError(f"{len(dtypes)} dtypes for {n} paths")
        return [None if d is None else _dtype(d) for d in dtypes]
    one = _dtype(dtypes)
    return [one] * n


def _dtype(d: Any) -> np.dtype:
    if isinstance(d, str) and d in ("bfloat16", "bf16"):
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(d)


def load_file(path: str | os.PathLike[str], threads: int | None = None, fallback: bool = True) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, by absolute path, read in one parallel pass."""
    with File(path, fallback=fallback) as f, _gc_paused():
        try:
            return f._core.load_all(f._addr, threads)
        except UnsupportedFeatureError as exc:
            if not fallback:
                raise with_context(exc, f.filename) from None
        except Error as exc:
            raise with_context(exc, f.filename) from None
        # Some dataset needs the h5py fallback: read one by one.
        entries = [(p, addr) for p, kind, addr in f._walk() if kind == "dataset"]
        names = ["/" + p for p, _ in entries]
        arrays = f._read_each([addr for _, addr in entries], names, [None] * len(entries))
        return dict(zip(names, arrays))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector while thousands of arrays and tuples are made
    (they hold no cycles; collections triggered by their count would only cost time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
