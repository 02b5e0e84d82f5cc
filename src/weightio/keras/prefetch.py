"""Where Keras's loaders get their arrays from.

``Prefetched(file)`` reads every dataset of a weight file in one parallel native pass, so
that Keras's loaders find arrays instead of opening datasets one by one.

``Deferred(file)`` reads nothing up front: it hands out ``LazyArray``s (shape and dtype
known, bytes not read). When the only thing Keras's code does with a value is assign it to
a variable, the bytes are read at the end, all at once, in parallel, converted to the
variable's dtype in the same pass, into fresh arrays that the variables then adopt: one
copy from the page cache to the destination.

``reading_ahead(deferreds)``: while Keras's traversal runs (Python, one core), the large
datasets are read on the other cores, so that the read at the end finds them read.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import FormatError, UnsupportedFeatureError
from ..file import Dataset, File, Group, _dtype, _gc_paused
from .assign import read_in_place
from .progress import Meter, batches
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

    def __init__(
        self,
        file: File,
        threads: int | None = None,
        arrays: dict[str, Any] | None = None,
        prefix: str = "",
        all_paths: list[str] | None = None,
    ) -> None:
        self.file = file
        self.prefix = prefix  # names the file in LoadReport entries when there are several
        self.origins: dict[int, tuple[str, ...]] = {}  # values read one by one: id -> entry
        self._all_paths = all_paths
        if arrays is not None:  # read already (in batches, see prefetch_all)
            self.arrays: dict[str, Any] = arrays
            return
        try:
            with _gc_paused():
                self.arrays = file._core.load_all(file._addr, threads, BOMB_FLOOR_BYTES, MAX_EXPANSION)
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
        dataset = safe_dataset(group, name)
        value = _read_dataset(dataset)
        self.origins[id(value)] = (self.prefix + dataset.name,)
        return value

    def entries(self) -> list[str]:
        """Every dataset of the file (for ``LoadReport.unused``)."""
        paths: Any = self._all_paths
        if paths is None:  # load_all read every dataset, or nothing
            paths = self.arrays if self.arrays else _all_datasets(self.file)
        return [self.prefix + path for path in paths]

    def origin_map(self) -> dict[int, tuple[str, ...]]:
        """Which entry each handed-out array is (by id), while the arrays are alive."""
        out = {id(array): (self.prefix + path,) for path, array in self.arrays.items()}
        out.update(self.origins)
        return out


def _all_datasets(file: File) -> list[str]:
    return [entry[0] for entry in file._core.datasets(file._addr)]


def prefetch_all(
    files: dict[str, File], threads: int | None, meter: Meter | None, prefixed: bool = False
) -> dict[str, Prefetched]:
    """``Prefetched`` for each file. With a progress meter, every file's datasets are read in
    a few batches (one native call each) so progress can be told between them."""
    prefixes = {name: (f"{name}:" if prefixed else "") for name in files}
    if meter is None:
        return {name: Prefetched(f, threads, prefix=prefixes[name]) for name, f in files.items()}
    deferred = {name: Deferred(f, threads, prefix=prefixes[name]) for name, f in files.items()}
    lazies = [lazy for d in deferred.values() for lazy in d.index.values()]
    try:
        read_lazy(lazies, [None] * len(lazies), meter)
    except UnsupportedFeatureError:
        # As load_all: leave everything to the one-by-one path (and its h5py fallback).
        return {name: Prefetched(f, threads, arrays={}, prefix=prefixes[name]) for name, f in files.items()}
    return {
        name: Prefetched(
            f,
            threads,
            arrays={p: lazy._array for p, lazy in d.index.items()},
            prefix=prefixes[name],
            all_paths=d.all_paths,
        )
        for (name, f), d in zip(files.items(), deferred.values())
    }


class LazyReadFailed(Exception):
    """A value handed out unread on a first load could not be read: the loader then loads
    again reading everything first, which reports the file's problem as before."""


def handed_out(value: Any, store: Any) -> Any:
    """What a store hands out for ``value``: an unread ``LazyArray`` as it is where
    ``store.lazy_ok``, else read now. A read that fails sets ``store.read_failed`` (Keras's
    traversal may take the error for a mismatch; the first load then starts again, see
    ``LazyReadFailed``)."""
    if isinstance(value, LazyArray) and not store.lazy_ok:
        try:
            return value.materialize()
        except Exception:
            store.read_failed = True
            raise
    return value


class LazyArray:
    """A dataset whose shape and dtype are known and whose bytes are read when needed:
    by ``np.asarray``, any ndarray attribute, or the bulk read of ``read_lazy``."""

    __slots__ = ("_array", "address", "dtype", "path", "shape", "source")

    def __init__(self, source: Source, path: str, address: int, shape: tuple[int, ...], dtype: np.dtype):
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


class Source:
    """Where a ``LazyArray`` is read from. Not the ``Deferred`` itself: that holds its lazy
    arrays, and a reference back would make a cycle keeping every array read alive until
    the garbage collector runs (the next load would then fault in fresh memory). ``ahead``:
    the ``ReadAhead`` of its file while one runs."""

    __slots__ = ("ahead", "file", "prefix", "threads")

    def __init__(self, file: File, threads: int | None, prefix: str) -> None:
        self.file = file
        self.threads = threads
        self.prefix = prefix
        self.ahead: ReadAhead | None = None


class Deferred:
    """Hands out ``LazyArray``s for the datasets of one file (same lookups as ``Prefetched``)."""

    def __init__(self, file: File, threads: int | None = None, prefix: str = "") -> None:
        self.file = file
        self.threads = threads
        self.prefix = prefix  # names the file in LoadReport entries when there are several
        self.source = source = Source(file, threads, prefix)
        self.origins: dict[int, tuple[str, ...]] = {}  # values read one by one: id -> entry
        self.index: dict[str, LazyArray] = {}
        self.all_paths: list[str] = []
        dtypes: dict[str, np.dtype] = {}  # a file of many datasets has few types
        for path, address, shape, typestr, stored in file._core.datasets(file._addr):
            self.all_paths.append(path)
            if not typestr:
                continue  # read through the safe path (and the h5py fallback)
            dtype = dtypes.get(typestr)
            if dtype is None:
                dtype = dtypes[typestr] = np.dtype(typestr)
            if typestr == "|V2" and file._core.is_tagged_bfloat16(address):
                dtype = _dtype("bfloat16")
            declared = math.prod(shape) * dtype.itemsize
            if declared > BOMB_FLOOR_BYTES and declared > MAX_EXPANSION * stored:
                continue  # the safe path raises Keras's error if Keras asks for it
            self.index[path] = LazyArray(source, path, address, tuple(shape), dtype)

    def dataset(self, group: Group, name: str) -> Any:
        lazy = self.index.get(f"{group.name.rstrip('/')}/{name}")
        if lazy is not None:
            return lazy
        dataset = safe_dataset(group, name)
        value = _read_dataset(dataset)
        self.origins[id(value)] = (self.prefix + dataset.name,)
        return value

    def entries(self) -> list[str]:
        """Every dataset of the file (for ``LoadReport.unused``)."""
        prefix = self.prefix
        return [prefix + path for path in self.all_paths] if prefix else self.all_paths

    def origin_map(self) -> dict[int, tuple[str, ...]]:
        """Which entry each array handed out already read is (by id): values read one by
        one, and lazy arrays that had to be read before the bulk read."""
        out = {id(lazy._array): (self.prefix + path,) for path, lazy in self.index.items() if lazy._array is not None}
        out.update(self.origins)
        return out


def read_lazy(
    values: list[LazyArray], dtypes: list[Any], meter: Meter | None = None, outs: list[Any] | None = None
) -> None:
    """Reads many lazy arrays at once, per file, in parallel, into new arrays of
    ``dtypes[i]`` (None: the stored type). Sets each value's array. With a progress
    ``meter``, in a few batches (by bytes), telling the meter after each.

    ``outs[i]``, when given and not None, is where value i is read instead (a writeable
    C-contiguous array of its size, e.g. a parameter's memory); only without a meter and
    from one file, so that the one native call writes them all or, on failure, none."""
    by_source: dict[int, list[int]] = {}
    for i, value in enumerate(values):
        by_source.setdefault(id(value.source), []).append(i)
    if outs is not None and (meter is not None or len(by_source) > 1):
        raise ValueError("outputs are read into only without a progress meter, from one file")
    if meter is not None:
        return _read_metered(values, dtypes, by_source, meter)
    for indices in by_source.values():
        _read_into(values, dtypes, indices, outs)
    return None


def _read_into(values: list[LazyArray], dtypes: list[Any], indices: list[int], outs: list[Any] | None = None) -> None:
    source = values[indices[0]].source
    arrays = source.file._core.read_many(
        [values[i].address for i in indices],
        [values[i].path for i in indices],
        [dtypes[i] for i in indices],
        [""] * len(indices),
        source.threads,
        None if outs is None else [outs[i] for i in indices],
    )
    for i, array in zip(indices, arrays):
        values[i]._array = array


def _read_metered(values: list[LazyArray], dtypes: list[Any], by_source: dict[int, list[int]], meter: Meter) -> None:
    def nbytes(i: int) -> int:
        itemsize = (values[i].dtype if dtypes[i] is None else np.dtype(dtypes[i])).itemsize
        return values[i].size * itemsize

    sizes = {i: nbytes(i) for indices in by_source.values() for i in indices}
    meter.start(sum(sizes.values()))
    try:
        # One native call per batch, from this thread: the arrays are allocated here, where
        # the allocator reuses the pages the previous load freed (worker threads would get
        # fresh arenas and pay a page fault per 4 KiB). Each call is parallel itself.
        for indices in by_source.values():
            threads = values[indices[0]].source.threads or os.cpu_count() or 1
            for batch in batches([sizes[i] for i in indices], meter.batches, threads):
                chosen = [indices[k] for k in batch]
                if chosen:
                    _read_into(values, dtypes, chosen)
                    meter.advance(sum(sizes[i] for i in chosen))
    finally:
        meter.finish()


# -- reading ahead ---------------------------------------------------------------------------
# A first load runs Keras's traversal in Python on one core for as long as the read at its
# end takes, or longer (ResNet50: ~20 ms, and ~8 ms to read 100 MB with both cores). Its
# large datasets are read meanwhile on the other cores; the read at the end (``take``) then
# finds them read. Only the values large enough to be read in place (``assign.read_in_place``:
# 64 KiB and up): a few allocations for most of the bytes (a model's thousands of small values
# are read at the end, in one call, as before). The reading threads are native: a Python
# thread would wait for the GIL (up to its 5 ms switch interval) after every call while the
# traversal holds it.
_AHEAD_MAX_EXPANSION = 2  # at most this many times the file's size is read ahead


class ReadAhead:
    """Large values (of a weight file or a checkpoint), read into new arrays of their stored
    types by native threads of their own (``H5File.read_ahead``, ``TfBundle.read_ahead``; they
    never take the GIL). Nothing is assigned from here: ``take`` hands an array to the load's
    read at the end, which uses it as what it would have read itself. The loading thread,
    arriving at ``take`` before the reading is done, reads the values not begun yet alongside.
    A value whose read failed is given to nobody: the ordinary read at the end reads it again,
    and reports the problem.

    ``requests``: (key, shape, dtype) per value, the key being what ``take`` is asked for;
    ``start(outs)`` starts the native job reading them into ``outs``."""

    def __init__(self, requests: list[tuple[Any, tuple[int, ...], np.dtype]], start: Any, allocate: Any) -> None:
        # Allocated here, in the loading thread: malloc then reuses the memory earlier loads
        # freed (a thread of its own would get a fresh arena and fault every page in).
        outs = allocate([(shape, dtype) for _, shape, dtype in requests])
        self.keys: list[Any] = [key for key, _, _ in requests]
        self.outs: list[np.ndarray] = outs
        self.job: Any = start(outs)
        self.arrays: dict[Any, np.ndarray] | None = None  # once finished: key -> its array

    def take(self, key: Any, dtype: np.dtype) -> np.ndarray | None:
        """The array of ``key``, read, if it was read ahead as ``dtype``; each array once."""
        if self.arrays is None:
            read = self.job.finish()
            self.arrays = {key: out for key, out, done in zip(self.keys, self.outs, read) if done}
        array = self.arrays.get(key)
        if array is None or array.dtype != dtype:
            return None
        del self.arrays[key]
        return array

    def close(self) -> None:
        """Stops (after the values being read) and drops what was not taken."""
        self.job = None
        self.arrays = {}
        self.outs = []
        self.keys = []


def read_ahead_within(
    requests: list[tuple[Any, tuple[int, ...], np.dtype]], start: Any, allocate: Any, stored_bytes: int, budget: int
) -> ReadAhead | None:
    """A ``ReadAhead`` of ``requests``, unless they would take more than ``budget`` bytes or
    more than ``_AHEAD_MAX_EXPANSION`` times the ``stored_bytes`` of their file(s): the arrays
    are allocated before the values are checked (the reading does that), so a file declaring
    far more than it holds is read the ordinary way, which checks each value before
    allocating (weights hardly compress). None too if anything fails here: the load then
    reads as it would without."""
    total = sum(math.prod(shape) * dtype.itemsize for _, shape, dtype in requests)
    if not requests or total > budget or total > _AHEAD_MAX_EXPANSION * stored_bytes:
        return None
    try:
        return ReadAhead(requests, start, allocate)
    except Exception:  # noqa: BLE001 - read at the end, as without
        return None


def ahead_budget(threads: int | None, allocate: Any) -> int:
    """How many bytes a load may read ahead (a quarter of the machine's memory); 0 when it
    does not read ahead: one thread, or no ``allocate``."""
    workers = threads or os.cpu_count() or 1
    return _memory_bytes() // 4 if workers > 1 and allocate is not None else 0


def ahead_threads(threads: int | None) -> int:
    """The native threads reading ahead: one fewer than the load's (the loading thread joins
    them at the end)."""
    return max(1, (threads or os.cpu_count() or 1) - 1)


def aligned_arrays(requests: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
    """New C-ordered arrays of each (shape, dtype), each starting on a 64-byte boundary (as
    ``read_many``'s do, so that frameworks adopt them through DLPack)."""
    out = []
    for shape, dtype in requests:
        nbytes = math.prod(shape) * dtype.itemsize
        raw = np.empty(nbytes + 64, np.uint8)
        start = -raw.ctypes.data % 64
        out.append(raw[start : start + nbytes].view(dtype).reshape(shape))
    return out


@contextlib.contextmanager
def reading_ahead(deferreds: list[Deferred], threads: int | None, allocate: Any) -> Iterator[None]:
    """Within the block, each file's large datasets (``read_in_place``, in native byte order)
    are read into arrays from ``allocate([(shape, dtype), ...])`` by one native thread fewer
    than the load's; they are there for ``read_lazy``'s caller to ``take`` (by dataset
    address). Not when ``allocate`` is None, the load has one thread, or they would take more
    than a quarter of the machine's memory or twice the file's size (``read_ahead_within``).
    At the end of the block the reading stops and what was not taken is dropped."""
    budget = ahead_budget(threads, allocate)
    workers = ahead_threads(threads)
    for deferred in deferreds if budget else ():
        large = list({  # once per dataset (a second hard link to one is the same address)
            lazy.address: (lazy.address, lazy.shape, lazy.dtype)
            for lazy in deferred.index.values()
            if read_in_place(lazy.shape, lazy.dtype) and lazy.dtype.isnative
        }.values())
        core = deferred.file._core
        deferred.source.ahead = read_ahead_within(
            large,
            lambda outs, core=core, large=large: core.read_ahead([address for address, _, _ in large], outs, workers),
            allocate,
            len(deferred.file._mapping),
            budget,
        )
        if deferred.source.ahead is not None:
            budget -= sum(math.prod(shape) * dtype.itemsize for _, shape, dtype in large)
    try:
        yield
    finally:
        for deferred in deferreds:
            if deferred.source.ahead is not None:
                deferred.source.ahead.close()
                deferred.source.ahead = None


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 1 << 32
