"""Benchmark harness: weightio vs h5py vs safetensors vs a memcpy floor.

Run ``python -m weightio.bench --help``.  With no files it generates two
Keras-style weight files (a ResNet50-size one and one with 10,000 tiny
datasets) into a work directory and times, per file:

* ``h5py``                 open + ``visititems`` + ``ds[()]`` for every dataset
* ``weightio.load_file``   open + parse + read everything into fresh arrays
* ``weightio.read_many``   ``with weightio.File(p) as f: f.read_many(paths)``
* ``weightio.view``        ``f[p].view()`` for every dataset (file already open)
* ``safetensors``          ``safetensors.numpy.load_file`` of the same tensors
* ``memcpy``               one copy of the same number of bytes from the
                           (already mapped, cached) file into fresh memory

weightio is imported only inside functions: when it cannot be imported the
weightio rows read "n/a" and the rest still runs.  The package's __init__
itself raises ImportError without the extension, so in that state run this
file directly: ``python src/weightio/bench.py``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json as _json
import mmap
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

DEFAULT_REPEAT = 7
SEED = 20240601

RESNET_FILE = "resnet50_like.h5"
MANY_SMALL_FILE = "many_small.h5"

# Keras refuses to put more than this many bytes in one attribute (HDF5's
# object-header message limit is 64 KiB) and splits long lists into
# `name0`, `name1`, ... attributes instead; we mirror that.
HDF5_OBJECT_HEADER_LIMIT = 64512

BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")

# Targets from bench/README.md, keyed by the generated file's name.
# (method, metric, comparison, threshold)
TARGETS: Dict[str, List[Tuple[str, str, str, float]]] = {
    RESNET_FILE: [
        ("weightio.load_file", "vs_h5py", ">=", 4.0),
        ("weightio.load_file", "vs_memcpy", "<=", 1.5),
        ("weightio.view", "median_ms", "<", 2.0),
    ],
    MANY_SMALL_FILE: [
        ("weightio.load_file", "vs_h5py", ">=", 30.0),
    ],
}


# ---------------------------------------------------------------------------
# Test-file generation (Keras legacy `save_weights` .h5 layout)
# ---------------------------------------------------------------------------

LayerSpec = Tuple[str, List[Tuple[str, Tuple[int, ...]]]]


def resnet50_layers() -> List[LayerSpec]:
    """ResNet50's layers as Keras lists them: (name, [(weight, shape), ...]).

    Layers without weights (pads, activations, adds, pools) are included
    because Keras lists them in `layer_names` and writes an empty group for
    each.  Totals: 177 layers, 320 weights, 25,636,712 parameters.
    """
    layers: List[LayerSpec] = []

    def conv(name: str, k: int, cin: int, cout: int) -> None:
        layers.append((name, [("kernel", (k, k, cin, cout)), ("bias", (cout,))]))

    def bn(name: str, c: int) -> None:
        layers.append((name, [(w, (c,)) for w in BN_WEIGHTS]))

    def plain(name: str) -> None:
        layers.append((name, []))

    plain("input_1")
    plain("conv1_pad")
    conv("conv1_conv", 7, 3, 64)
    bn("conv1_bn", 64)
    plain("conv1_relu")
    plain("pool1_pad")
    plain("pool1_pool")
    cin = 64
    for stage, filters, blocks in ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3)):
        for b in range(1, blocks + 1):
            p = f"conv{stage}_block{b}"
            conv(p + "_1_conv", 1, cin, filters)
            bn(p + "_1_bn", filters)
            plain(p + "_1_relu")
            conv(p + "_2_conv", 3, filters, filters)
            bn(p + "_2_bn", filters)
            plain(p + "_2_relu")
            if b == 1:  # projection shortcut
                conv(p + "_0_conv", 1, cin, 4 * filters)
            conv(p + "_3_conv", 1, filters, 4 * filters)
            if b == 1:
                bn(p + "_0_bn", 4 * filters)
            bn(p + "_3_bn", 4 * filters)
            plain(p + "_add")
            plain(p + "_out")
            cin = 4 * filters
    plain("avg_pool")
    layers.append(("predictions", [("kernel", (2048, 1000)), ("bias", (1000,))]))
    return layers


def _save_attributes(group: Any, name: str, data: List[bytes]) -> None:
    """Keras's `save_attributes_to_hdf5_group`: split lists too big for one attribute.

    Stored as a numpy array of bytes, i.e. fixed-length strings, as in the
    h5py-2-era Keras files (e.g. the published keras-applications weights).
    Keras under h5py 3 passes the plain list, which h5py 3 stores as
    variable-length strings; readers must handle both.  An empty list becomes
    a (0,) float64 attribute, exactly as Keras writes it for weightless layers.
    """
    data_npy = np.asarray(data)
    num_chunks = 1
    chunks = [data_npy]
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in chunks):
        num_chunks += 1
        chunks = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = data_npy


def _write_keras_legacy(
    path: str,
    layers: Sequence[LayerSpec],
    value: Callable[[str, Tuple[int, ...]], np.ndarray],
) -> None:
    """Write `layers` the way Keras 2's `model.save_weights("x.h5")` does.

    Root attrs `layer_names` / `backend` / `keras_version`; one group per
    layer (created in sorted-name order, like Keras) with attr `weight_names`;
    weights at `<layer>/<layer>/<weight>:0`, contiguous and uncompressed.
    The file is written under a temporary name and renamed, so an interrupted
    run never leaves a truncated file behind to be picked up as "cached".
    """
    import h5py

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            _save_attributes(f, "layer_names", [n.encode("utf8") for n, _ in layers])
            f.attrs["backend"] = np.bytes_(b"tensorflow")  # np.bytes_: fixed-length, as above
            f.attrs["keras_version"] = np.bytes_(b"2.13.1")
            for layer, weights in sorted(layers, key=lambda lw: lw[0]):
                g = f.create_group(layer)
                names = [f"{layer}/{w}:0" for w, _ in weights]
                _save_attributes(g, "weight_names", [n.encode("utf8") for n in names])
                for name, (w, shape) in zip(names, weights):
                    g.create_dataset(name, data=value(w, shape))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _random_values(seed: int) -> Callable[[str, Tuple[int, ...]], np.ndarray]:
    rng = np.random.default_rng(seed)

    def value(weight: str, shape: Tuple[int, ...]) -> np.ndarray:
        a = rng.standard_normal(shape, dtype=np.float32)
        # A variance is never negative; keeps the file plausible for loaders
        # that sanity-check BN statistics.
        return np.abs(a, out=a) if weight == "moving_variance" else a

    return value


def make_resnet_like(path: str) -> str:
    """Write a ResNet50-size Keras legacy weight file (~102.5 MB float32, 320 datasets)."""
    _write_keras_legacy(path, resnet50_layers(), _random_values(SEED))
    return path


def make_many_small(path: str, n: int = 10_000) -> str:
    """Write a Keras legacy file with `n` datasets: n/4 BatchNormalization layers x 4 (64,) float32."""
    if n % len(BN_WEIGHTS):
        raise ValueError(f"n must be a multiple of {len(BN_WEIGHTS)}, got {n}")
    # Keras's automatic names: batch_normalization, batch_normalization_1, ...
    names = ["batch_normalization"] + [f"batch_normalization_{i}" for i in range(1, n // 4)]
    layers = [(name, [(w, (64,)) for w in BN_WEIGHTS]) for name in names]
    _write_keras_legacy(path, layers, _random_values(SEED + 1))
    return path


def default_workdir() -> str:
    return os.environ.get("WEIGHTIO_BENCH_DIR") or os.path.join(tempfile.gettempdir(), "weightio-bench")


def generate_default_files(workdir: str) -> List[str]:
    """The two benchmark files in `workdir`, generated only if missing."""
    os.makedirs(workdir, exist_ok=True)
    out = []
    for name, make in ((RESNET_FILE, make_resnet_like), (MANY_SMALL_FILE, make_many_small)):
        path = os.path.join(workdir, name)
        if not os.path.exists(path):
            t0 = time.perf_counter()
            make(path)
            _log(f"generated {path} in {time.perf_counter() - t0:.1f} s")
        out.append(path)
    return out


# ---------------------------------------------------------------------------
# What is in a file (untimed, via h5py)
# ---------------------------------------------------------------------------

# dtypes every reader under test can return as a plain ndarray.
_NUMERIC_KINDS = "biuf"


class FileInfo:
    """Dataset inventory of one file, gathered once with h5py (untimed)."""

    def __init__(self, path: str) -> None:
        import h5py

        self.path = path
        self.size = os.path.getsize(path)
        self.all_paths: List[str] = []
        self.paths: List[str] = []  # numeric datasets: what every reader is asked for
        self.nbytes: Dict[str, int] = {}
        data_offsets: List[int] = []
        with h5py.File(path, "r") as f:

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    self.all_paths.append(name)
                    if obj.dtype.kind in _NUMERIC_KINDS:
                        self.paths.append(name)
                        self.nbytes[name] = obj.size * obj.dtype.itemsize
                        offset = obj.id.get_offset()  # None unless contiguous + allocated
                        if offset is not None:
                            data_offsets.append(offset)

            f.visititems(visit)
        self.total_bytes = sum(self.nbytes.values())
        self.first_data_offset = min(data_offsets) if data_offsets else 0
        self._reference: Optional[Dict[str, np.ndarray]] = None

    def reference(self) -> Dict[str, np.ndarray]:
        """Every numeric dataset as read by h5py: the ground truth for checks."""
        if self._reference is None:
            import h5py

            with h5py.File(self.path, "r") as f:
                self._reference = {p: f[p][()] for p in self.paths}
        return self._reference

    def drop_reference(self) -> None:
        self._reference = None


# ---------------------------------------------------------------------------
# The methods under test
# ---------------------------------------------------------------------------


class NotAvailable(Exception):
    """The method cannot run here (library missing); its row reads n/a."""


class Case:
    """One timed method.  `setup`/`teardown` are untimed; `run` is timed.

    `run` returns what it produced so that freeing it happens after the clock
    stops (for every method alike); `outputs` turns that into (name, array)
    pairs for the one-off correctness check against h5py.
    """

    key = ""
    label = ""

    def __init__(self, info: FileInfo) -> None:
        self.info = info

    def setup(self) -> None:
        pass

    def run(self) -> Any:
        raise NotImplementedError

    def teardown(self) -> None:
        pass

    def outputs(self, result: Any) -> Optional[Iterable[Tuple[str, np.ndarray]]]:
        return None  # None: nothing to check


def _import_weightio() -> Any:
    try:
        import weightio

        weightio.load_file, weightio.File  # noqa: B018  (AttributeError if not wired up)
    except ImportError as e:
        raise NotAvailable(f"weightio extension not importable: {e}") from None
    except AttributeError as e:
        raise NotAvailable(f"weightio API incomplete: {e}") from None
    return weightio


def _as_named(result: Any, paths: Sequence[str]) -> Iterable[Tuple[str, np.ndarray]]:
    """(name, array) pairs from either a {path: array} mapping or a list in `paths` order."""
    if isinstance(result, Mapping):
        return ((str(k).lstrip("/"), v) for k, v in result.items())
    return zip(paths, result)


class H5pyCase(Case):
    key = "h5py"
    label = "h5py open+visit+read"

    def setup(self) -> None:
        try:
            import h5py
        except ImportError as e:
            raise NotAvailable(str(e)) from None
        self.h5py = h5py

    def run(self) -> Any:
        # What a careful user writes: discover datasets with visititems
        # (no assumptions about the layout), then read each into a new array.
        h5py = self.h5py
        with h5py.File(self.info.path, "r") as f:
            found: List[Tuple[str, Any]] = []

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    found.append((name, obj))

            f.visititems(visit)
            return {name: ds[()] for name, ds in found}


class WeightioLoadFileCase(Case):
    key = "weightio.load_file"
    label = "weightio.load_file"

    # fallback=False: weightio would otherwise quietly hand datasets its native
    # reader does not support to h5py, and this row would time h5py.
    def __init__(self, info: FileInfo, threads: Optional[int]) -> None:
        super().__init__(info)
        self.kwargs = {} if threads is None else {"threads": threads}

    def setup(self) -> None:
        self.wio = _import_weightio()

    def run(self) -> Any:
        return self.wio.load_file(self.info.path, fallback=False, **self.kwargs)

    def outputs(self, result: Any) -> Iterable[Tuple[str, np.ndarray]]:
        return _as_named(result, self.info.paths)


class WeightioReadManyCase(WeightioLoadFileCase):
    key = "weightio.read_many"
    label = "weightio File+read_many"

    def run(self) -> Any:
        with self.wio.File(self.info.path, fallback=False) as f:
            return f.read_many(self.info.paths, **self.kwargs)


class WeightioViewCase(Case):
    key = "weightio.view"
    label = "weightio view (no open)"

    def setup(self) -> None:
        self.wio = _import_weightio()
        self._ctx = self.wio.File(self.info.path, fallback=False)
        self.f = self._ctx.__enter__()

    def run(self) -> Any:
        # Lookup + view per dataset: what "give me every weight, zero-copy"
        # costs once the file is open.
        f = self.f
        return [f[p].view() for p in self.info.paths]

    def teardown(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            self._ctx = self.f = None
            ctx.__exit__(None, None, None)

    def outputs(self, result: Any) -> Iterable[Tuple[str, np.ndarray]]:
        return zip(self.info.paths, result)


# dtypes safetensors can store (its numpy helper maps these one to one).
_SAFETENSORS_DTYPES = {
    np.dtype(t)
    for t in ("bool", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8")
}


def safetensors_path(info: FileInfo, workdir: str) -> str:
    """Where the .safetensors twin of `info.path` lives (name unique per source path)."""
    tag = hashlib.sha1(os.path.abspath(info.path).encode()).hexdigest()[:8]
    stem = os.path.splitext(os.path.basename(info.path))[0]
    return os.path.join(workdir, f"{stem}-{tag}.safetensors")


class SafetensorsCase(Case):
    key = "safetensors"
    label = "safetensors load_file"

    def __init__(self, info: FileInfo, workdir: str) -> None:
        super().__init__(info)
        self.workdir = workdir
        self.note: Optional[str] = None

    def setup(self) -> None:
        try:
            import safetensors.numpy as stnp
        except ImportError as e:
            raise NotAvailable(str(e)) from None
        self.load_file = stnp.load_file
        self.st_path = safetensors_path(self.info, self.workdir)
        ref = self.info.reference()
        tensors = {p: a for p, a in ref.items() if a.dtype in _SAFETENSORS_DTYPES}
        if len(tensors) < len(ref):
            self.note = f"{len(tensors)} of {len(ref)} datasets (others: dtype unsupported)"
        # Conversion is setup, not what is measured; redo it only when the
        # h5 file is newer than the cached conversion.
        if not os.path.exists(self.st_path) or os.path.getmtime(self.st_path) < os.path.getmtime(
            self.info.path
        ):
            tmp = f"{self.st_path}.tmp{os.getpid()}"
            stnp.save_file(tensors, tmp)
            os.replace(tmp, self.st_path)

    def run(self) -> Any:
        return self.load_file(self.st_path)

    def outputs(self, result: Any) -> Iterable[Tuple[str, np.ndarray]]:
        return result.items()


class MemcpyCase(Case):
    """The floor: one copy of the same number of bytes, page cache -> fresh memory.

    The h5 file is mapped once in setup and the warm-up run faults it in, so
    the timed runs pay neither open() nor page-table setup for the source;
    the destination is a newly allocated array every run, because every
    reader under test must hand back fresh memory and pays for first-touch
    page faults on it.  It is a single copy with no per-dataset work at all,
    so for files of many tiny datasets it is well below anything achievable:
    the "x memcpy" ratio there measures per-dataset overhead.
    """

    key = "memcpy"
    label = "memcpy floor"

    def setup(self) -> None:
        self._file = open(self.info.path, "rb")
        size = self.info.size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        src = np.frombuffer(self._map, dtype=np.uint8) if size else np.zeros(0, np.uint8)
        # Copy the data region (the bytes the readers copy), clamped to the
        # file; `total` can exceed the file only if data is compressed, and
        # then the region is copied repeatedly to make up the byte count.
        total = self.info.total_bytes
        start = max(0, min(self.info.first_data_offset, size - total))
        self._pieces: List[np.ndarray] = []
        remaining = total
        while remaining > 0:
            n = min(remaining, size - start)
            self._pieces.append(src[start : start + n])
            remaining -= n
            start = 0
        del src

    def run(self) -> Any:
        dst = np.empty(self.info.total_bytes, dtype=np.uint8)
        pos = 0
        for piece in self._pieces:
            np.copyto(dst[pos : pos + piece.size], piece)
            pos += piece.size
        return dst

    def teardown(self) -> None:
        self._pieces = []  # release the exported buffers before closing the map
        if getattr(self, "_map", None) is not None:
            self._map.close()
            self._map = None
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    """Run `fn` once; return (milliseconds, result).

    The cyclic GC is collected beforehand and disabled while the clock runs
    (as `timeit` does), so a collection triggered by one method's garbage
    never lands in another method's time.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        t1 = time.perf_counter()
    finally:
        if enabled:
            gc.enable()
    return (t1 - t0) * 1e3, result


def pin_fresh_allocations() -> bool:
    """Make every large allocation come from fresh mmap'd pages, on glibc.

    glibc's malloc raises its mmap threshold (up to 32 MiB) each time a large
    block is freed, after which later blocks of that size are served from
    the heap, whose pages are already faulted in.  A method that allocates
    many < 32 MiB arrays would then get pre-faulted memory from the second
    repeat on, while the memcpy floor's single large array never does, so
    the same code measured 19 or 55 ms (safetensors, ResNet file) depending
    on what ran before.  Fixing the threshold at its default disables that
    adaptation: every repeat pays for fresh memory, as a one-shot model load
    in a new process does.  Returns False where this does not apply.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        M_MMAP_THRESHOLD = -3
        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 128 * 1024))
    except (OSError, AttributeError):  # not glibc (no mallopt)
        return False


def can_drop_caches() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)


def drop_caches() -> None:
    os.sync()  # only clean pages can be dropped
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _check(case: Case, result: Any) -> Optional[str]:
    """Compare `case`'s output with h5py's, bit for bit.  None if it matches."""
    named = case.outputs(result)
    if named is None:
        return None
    ref = case.info.reference()
    seen = set()
    for name, arr in named:
        arr = np.asarray(arr)
        want = ref.get(name)
        if want is None:
            continue  # e.g. a non-numeric dataset the reference skips
        seen.add(name)
        if arr.dtype != want.dtype or arr.shape != want.shape:
            return f"{name}: got {arr.dtype}{arr.shape}, want {want.dtype}{want.shape}"
        if arr.tobytes() != want.tobytes():  # bitwise: NaNs compare equal, -0.0 != 0.0
            return f"{name}: values differ from h5py's"
    missing = len(ref) - len(seen)
    if missing:
        return f"{missing} of {len(ref)} datasets missing from the result"
    return None


def _measure(case: Case, repeat: int, cold: bool) -> Dict[str, Any]:
    row: Dict[str, Any] = {"label": case.label, "status": "ok"}
    try:
        case.setup()
        try:
            # Warm-up: fills the page cache and lazy imports, and its output
            # is the one checked for correctness (untimed).
            result = case.run()
            mismatch = _check(case, result)
            del result
            if mismatch:
                row["status"] = "mismatch"
                row["note"] = mismatch
            times = []
            for _ in range(repeat):
                ms, result = _timed(case.run)
                del result  # freed outside the clock
                times.append(ms)
        finally:
            case.teardown()
        row["times_ms"] = times
        row["median_ms"] = statistics.median(times)
        row["min_ms"] = min(times)
        if cold:
            drop_caches()
            case.setup()
            try:
                row["cold_ms"], result = _timed(case.run)
                del result
            finally:
                case.teardown()
    except NotAvailable as e:
        return {"label": case.label, "status": "n/a", "note": str(e)}
    except ImportError as e:  # e.g. weightio importing its extension on first use
        return {"label": case.label, "status": "n/a", "note": f"{type(e).__name__}: {e}"}
    except Exception as e:  # report and carry on with the other methods
        traceback.print_exc(file=sys.stderr)
        return {"label": case.label, "status": "error", "note": f"{type(e).__name__}: {e}"}
    note = getattr(case, "note", None)
    if note and "note" not in row:
        row["note"] = note
    return row


def bench_file(
    path: str, repeat: int = DEFAULT_REPEAT, threads: Optional[int] = None, cold: bool = False,
    workdir: Optional[str] = None,
) -> Dict[str, Any]:
    """Time every method on one file; returns the per-file result dict."""
    workdir = workdir or default_workdir()
    os.makedirs(workdir, exist_ok=True)
    info = FileInfo(path)
    cases: List[Case] = [
        H5pyCase(info),
        WeightioLoadFileCase(info, threads),
        WeightioReadManyCase(info, threads),
        WeightioViewCase(info),
        SafetensorsCase(info, workdir),
        MemcpyCase(info),
    ]
    methods: Dict[str, Dict[str, Any]] = {}
    for case in cases:
        _log(f"  {os.path.basename(path)}: {case.key} ...")
        methods[case.key] = _measure(case, repeat, cold)
    info.drop_reference()

    base = methods["h5py"].get("median_ms")
    floor = methods["memcpy"].get("median_ms")
    for row in methods.values():
        med = row.get("median_ms")
        row["vs_h5py"] = base / med if med and base else None  # speedup: >1 is faster
        row["vs_memcpy"] = med / floor if med and floor else None  # slowdown: 1 is the floor
        if med:
            row["gb_per_s"] = info.total_bytes / med / 1e6
    result = {
        "path": path,
        "file_bytes": info.size,
        "datasets": len(info.all_paths),
        "numeric_datasets": len(info.paths),
        "data_bytes": info.total_bytes,
        "repeat": repeat,
        "methods": methods,
    }
    result["targets"] = _check_targets(os.path.basename(path), methods)
    return result


def _check_targets(name: str, methods: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for key, metric, op, threshold in TARGETS.get(name, []):
        row = methods.get(key, {})
        value = row.get(metric) if row.get("status") == "ok" else None
        if value is None:
            ok = None
        else:
            ok = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        out.append(
            {"method": key, "metric": metric, "op": op, "threshold": threshold, "value": value, "pass": ok}
        )
    return out


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt(v: Optional[float], spec: str, suffix: str = "") -> str:
    return "-" if v is None else format(v, spec) + suffix


def format_table(res: Mapping[str, Any], cold: bool = False) -> str:
    mb = res["data_bytes"] / 1e6
    lines = [
        f"{res['path']}",
        f"  {mb:.1f} MB in {res['numeric_datasets']} datasets, file {res['file_bytes'] / 1e6:.1f} MB,"
        f" median/min of {res['repeat']} warm runs",
    ]
    head = f"  {'method':<26}{'median ms':>11}{'min ms':>10}{'vs h5py':>10}{'x memcpy':>10}"
    if cold:
        head += f"{'cold ms':>10}"
    lines += [head, "  " + "-" * (len(head) - 2)]
    notes = []
    for row in res["methods"].values():
        label = row["label"]
        if row["status"] in ("n/a", "error"):
            line = f"  {label:<26}{row['status']:>11}"
        else:
            flag = " !" if row["status"] == "mismatch" else ""
            line = (
                f"  {label + flag:<26}{_fmt(row['median_ms'], '.2f'):>11}{_fmt(row['min_ms'], '.2f'):>10}"
                f"{_fmt(row['vs_h5py'], '.2f', 'x'):>10}{_fmt(row['vs_memcpy'], '.2f', 'x'):>10}"
            )
            if cold:
                line += f"{_fmt(row.get('cold_ms'), '.1f'):>10}"
        lines.append(line)
        if row.get("note"):
            notes.append(f"  {label}: {row['note']}")
    for t in res["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        notes.append(
            f"  target {t['method']} {t['metric']} {t['op']} {t['threshold']:g}: {value} -> {verdict}"
        )
    return "\n".join(lines + notes)


def _environment() -> Dict[str, Any]:
    env: Dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }
    for mod in ("h5py", "safetensors", "weightio"):
        try:
            env[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception:  # a missing library is reported as such, not fatal
            env[mod] = None
    return env


def run(
    files: Optional[Sequence[str]] = None,
    repeat: int = DEFAULT_REPEAT,
    threads: Optional[int] = None,
    json: bool = False,
    cold: bool = False,
    workdir: Optional[str] = None,
) -> Dict[str, Any]:
    """Benchmark `files` (default: the two generated files); print and return the results.

    Prints a table per file, or with `json=True` the returned dict as JSON.
    """
    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    workdir = workdir or default_workdir()
    if cold and not can_drop_caches():
        _log("--cold skipped: needs root and a writable /proc/sys/vm/drop_caches")
        cold = False
    if not files:
        files = generate_default_files(workdir)
    env = _environment()
    env["fresh_allocations_pinned"] = pin_fresh_allocations()
    results = {
        "environment": env,
        "threads": threads,
        "files": [bench_file(p, repeat, threads, cold, workdir) for p in files],
    }
    if json:
        print(_json.dumps(results, indent=2))
    else:
        print("\n\n".join(format_table(r, cold) for r in results["files"]))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m weightio.bench",
        description="Time reading every dataset of HDF5 weight files: weightio vs h5py, "
        "safetensors and a memcpy floor.",
    )
    ap.add_argument("files", nargs="*", help="HDF5 files (default: generate a ResNet50-size "
                    "and a 10,000-dataset Keras file into --workdir)")
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                    help=f"timed runs per method after one warm-up (default {DEFAULT_REPEAT})")
    ap.add_argument("--threads", type=int, default=None,
                    help="passed as threads= to weightio.load_file and read_many")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--cold", action="store_true",
                    help="also time one run per method after dropping the page cache (root only)")
    ap.add_argument("--workdir", default=None,
                    help="where generated files and .safetensors copies are cached "
                    "(default $WEIGHTIO_BENCH_DIR or <tmp>/weightio-bench)")
    ap.add_argument("--keras", default=None, metavar="BACKENDS",
                    help="also time Keras's load_weights against weightio.keras on these Keras "
                    "backends (comma-separated, one process each; default: numpy,tensorflow,jax "
                    "when no files are given and keras is installed; 'none' to skip)")
    args = ap.parse_args(argv)
    run(args.files, repeat=args.repeat, threads=args.threads, json=args.json,
        cold=args.cold, workdir=args.workdir)
    run_keras(args.keras, bool(args.files), args.repeat, args.json)
    return 0


def run_keras(option: Optional[str], files_given: bool, repeat: int, json: bool) -> List[Dict[str, Any]]:
    """The Keras part of the benchmark (see ``weightio.bench_keras``), when asked for or when
    generating files with keras installed; prints its table and returns its rows."""
    backends = _keras_backends(option, files_given)
    if not backends:
        return []
    from . import bench_keras

    if {"tensorflow", "tf-keras"} & set(backends):
        _log(bench_keras.build_tf_ops())
    _log(f"Keras load_weights on {', '.join(backends)} (one process per backend) ...")
    rows = bench_keras.run(backends, repeat=max(3, repeat // 2))
    print(_json.dumps(rows) if json else "\n" + bench_keras.format_table(rows))
    return rows


def _keras_backends(option: Optional[str], files_given: bool) -> Tuple[str, ...]:
    if option is None:
        import importlib.util

        if files_given or importlib.util.find_spec("keras") is None:
            return ()
        option = ",".join(
            ["numpy", "tensorflow", "jax"]
            + (["torch"] if importlib.util.find_spec("torch") else [])
            + (["tf-keras"] if importlib.util.find_spec("tf_keras") else [])
        )
    if option.strip().lower() == "none":
        return ()
    return tuple(b.strip() for b in option.split(",") if b.strip())


if __name__ == "__main__":
    main()
