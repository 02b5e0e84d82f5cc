"""Where Keras's loaders get their arrays from.

``Prefetched(file)`` reads every dataset of a weight file in one parallel native pass, so
that Keras's loaders find arrays instead of opening datasets one by one.

``Deferred(file)`` reads nothing up front: it hands out ``LazyArray``s (shape and dtype
known, bytes not read). When the only thing Keras's code does with a value is assign it to
a variable, the bytes are read at the end, all at once, in parallel, converted to the
variable's dtype in the same pass, into fresh arrays that the variables then adopt: one
copy from the page cache to the destination.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import FormatError, UnsupportedFeatureError
from ..file import Dataset, File, Group, _dtype, _gc_paused
from .safe import BOMB_FLOOR_BYTES, MAX_EXPANSION, safe_dataset


def _read_dataset(ds: Dataset) -> Any:
    value = ds[()]
    if ds.dtype == "V2" and ds.attrs.get("dtype") == "bfloat16":
        import ml_dtypes

        return value.view(ml_dtypes.bfloat16)
    return value


class Prefetched:
    """Arrays of one file by absolute path; lookups that miss (soft links, second hard
    links, datasets the native reader leaves to h5py) go through Keras's safety rules."""

    def __init__(self, file: File, threads: int | None = None) -> None:
        self.file = file
        try:
            with _gc_paused():
                self.arrays: dict[str, Any] = file._core.load_all(file._addr, threads, BOMB_FLOOR_BYTES, MAX_EXPANSION)
        except UnsupportedFeatureError:
            self.arrays = {}  # read lazily, through the h5py fallback where needed
        except FormatError as exc:
            if "bomb" not in str(exc):
                raise
            # Like Keras, refuse the bomb only if it is asked for: read the others one by one.
            self.arrays = {}

    def dataset(self, group: Group, name: str) -> Any:
        """The array of ``group/name`` (Keras's ``safe_get_h5_dataset`` + read)."""
        array = self.arrays.get(f"{group.name.rstrip('/')}/{name}")
        if array is not None:
            return array
        return _read_dataset(safe_dataset(group, name))


class LazyArray:
    """A dataset whose shape and dtype are known and whose bytes are read when needed:
    by ``np.asarray``, any ndarray attribute, or the bulk read of ``read_lazy``."""

    __slots__ = ("_array", "address", "dtype", "path", "shape", "source")

    def __init__(self, source: Deferred, path: str, address: int, shape: tuple[int, ...], dtype: np.dtype):
        self.source = source
        self.path = path
        self.address = address
        self.shape = shape
        self.dtype = dtype
        self._array: np.ndarray | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def materialize(self) -> np.ndarray:
        if self._array is None:
            read_lazy([self], [None])
        assert self._array is not None
        return self._array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.materialize()
        return array if dtype is None else array.astype(dtype)

    def __len__(self) -> int:
        return len(self.materialize())

    def __getitem__(self, key: Any) -> Any:
        return self.materialize()[key]

    def __getattr__(self, name: str) -> Any:  # any other ndarray behaviour
        return getattr(self.materialize(), name)

    def __repr__(self) -> str:
        return f"LazyArray({self.path!r}, shape={self.shape}, dtype={self.dtype})"


class Deferred:
    """Hands out ``LazyArray``s for the datasets of one file (same lookups as ``Prefetched``)."""

    def __init__(self, file: File, threads: int | None = None) -> None:
        self.file = file
        self.threads = threads
        self.index: dict[str, LazyArray] = {}
        for path, address, shape, typestr, stored in file._core.datasets(file._addr):
            if not typestr:
                continue  # read through the safe path (and the h5py fallback)
            dtype = np.dtype(typestr)
            if typestr == "|V2" and file._core.is_tagged_bfloat16(address):
                dtype = _dtype("bfloat16")
            declared = math.prod(shape) * dtype.itemsize
            if declared > BOMB_FLOOR_BYTES and declared > MAX_EXPANSION * stored:
                continue  # the safe path raises Keras's error if Keras asks for it
            self.index[path] = LazyArray(self, path, address, tuple(shape), dtype)

    def dataset(self, group: Group, name: str) -> Any:
        lazy = self.index.get(f"{group.name.rstrip('/')}/{name}")
        if lazy is not None:
            return lazy
        return _read_dataset(safe_dataset(group, name))


def read_lazy(values: list[LazyArray], dtypes: list[Any]) -> None:
    """Reads many lazy arrays at once, per file, in parallel, into new arrays of
    ``dtypes[i]`` (None: the stored type). Sets each value's array."""
    by_source: dict[int, list[int]] = {}
    for i, value in enumerate(values):
        by_source.setdefault(id(value.source), []).append(i)
    for indices in by_source.values():
        source = values[indices[0]].source
        core = source.file._core
        arrays = core.read_many(
            [values[i].address for i in indices],
            [values[i].path for i in indices],
            [dtypes[i] for i in indices],
            [""] * len(indices),
            source.threads,
        )
        for i, array in zip(indices, arrays):
            values[i]._array = array
