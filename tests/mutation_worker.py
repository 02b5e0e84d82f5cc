"""Mutation testing of weightio's native reader: base files, mutants, and the worker.

This module has three roles (it is imported by ``tests/test_mutations.py`` and also run as
a script):

* ``build_base_files(directory)`` writes a handful of small h5py files covering the
  on-disk structures the reader parses (both libver generations, Keras-like layouts,
  dense/compact groups and attributes, every chunk index, filters, compact and contiguous
  storage, soft/external links). ``python tests/mutation_worker.py seeds DIR`` writes the
  same files (they are the libFuzzer seed corpus in cpp/fuzz/corpus/).
* ``make_mutant(base, base_index, mutant_id, seed)`` derives one mutant deterministically:
  bit flips, byte overwrites (0x00 / 0xFF / random), truncations, zeroed / all-ones /
  duplicated / shifted 8-byte ranges (file addresses), optionally followed by repairing
  the lookup3 checksums of the v2 structures whose extent is known (so the mutation
  reaches the parser behind the checksum instead of stopping at ChecksumError).
* ``python tests/mutation_worker.py run BASE_DIR START STOP SEED WORK_DIR`` opens mutants
  ``START..STOP-1`` with ``weightio.File(path, fallback=False)`` and
  ``weightio.load_file(path, fallback=False)``, walks everything, and prints one JSON line
  per mutant on stdout: ``{"begin": id}`` before touching it (so a parent that sees the
  process die or hang knows the culprit), then ``{"id", "outcome", "detail", "seconds"}``
  with outcome ``ok`` / ``weightio`` (detail: the error class) / ``other`` (detail: the
  traceback).

The worker never imports h5py (only the base-file builder does), so every error it sees
comes from weightio itself.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import time
import traceback
from pathlib import Path

# Datasets whose declared size exceeds this are described but not read: a mutant may
# legitimately declare a huge dataset, and numpy refusing that is not a reader bug.
MAX_READ_BYTES = 64 << 20
# Address-space limit of the worker process: an allocation driven by a hostile value then
# fails fast (MemoryError, reported as a failure) instead of swapping the machine.
WORKER_ADDRESS_SPACE = 3 << 30


# ---------------------------------------------------------------------------------------
# Base files (h5py is imported lazily: the worker itself never needs it)
# ---------------------------------------------------------------------------------------


def _keras_legacy(path: Path, libver: str) -> None:
    """Keras 2 ``save_weights`` layout: root attrs layer_names/backend/keras_version,
    one group per layer with attr weight_names, datasets ``dense/dense/kernel:0``."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(1)
    with h5py.File(path, "w", libver=libver) as f:
        layers = [b"dense", b"dense_1", b"batch_normalization"]
        f.attrs["layer_names"] = np.array(layers)
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.13.1"
        shapes = {
            b"dense": [("kernel:0", (6, 4)), ("bias:0", (4,))],
            b"dense_1": [("kernel:0", (4, 2)), ("bias:0", (2,))],
            b"batch_normalization": [("gamma:0", (2,)), ("beta:0", (2,)), ("moving_mean:0", (2,))],
        }
        for layer in layers:
            name = layer.decode()
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/{w}".encode() for w, _ in shapes[layer]])
            inner = g.create_group(name)
            for w, shape in shapes[layer]:
                inner.create_dataset(w, data=rng.standard_normal(shape).astype("<f4"), track_times=False)


def _keras3(path: Path, libver: str) -> None:
    """Keras 3 ``.weights.h5`` layout: ``layers/<name>/vars/<i>``, an optimizer group with
    more than 8 vars (dense link storage under libver latest), a bfloat16-as-opaque var."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(2)
    with h5py.File(path, "w", libver=libver) as f:
        v = f.create_group("layers").create_group("dense").create_group("vars")
        v.create_dataset("0", data=rng.standard_normal((5, 3)).astype("<f4"), track_times=False)
        v.create_dataset("1", data=np.zeros(3, "<f4"), track_times=False)
        e = f.create_group("layers/embedding/vars")
        bf = e.create_dataset("0", data=np.arange(8, dtype="<u2").view("V2"), track_times=False)
        bf.attrs["dtype"] = "bfloat16"
        opt = f.create_group("optimizer").create_group("vars")
        for i in range(10):
            opt.create_dataset(str(i), data=np.full((2,), i, "<f4"), track_times=False)
        f.attrs["keras_version"] = "3.3.3"


def _groups_attrs(path: Path, libver: str) -> None:
    """Dense and compact groups (with and without creation order), dense and compact
    attributes (numeric, fixed and vlen strings, arrays), soft/external links."""
    import h5py
    import numpy as np

    with h5py.File(path, "w", libver=libver) as f:
        many = f.create_group("many")
        for i in range(12):
            many.create_group(f"g{i:02d}")
        ordered = f.create_group("ordered", track_order=True)
        for name in ("zeta", "alpha", "mid", "beta", "x1", "x2", "x3", "x4", "x5", "x6"):
            ordered.create_group(name)
        small = f.create_group("small")
        small.attrs["int"] = np.int32(7)
        small.attrs["floats"] = np.arange(4, dtype=">f8")
        small.attrs["fixed"] = np.bytes_(b"fixed string")
        small.attrs["vlen"] = "variable length"
        small.attrs["vlen_list"] = ["a", "bb", "ccc"]
        for i in range(12):  # dense attribute storage under libver latest
            many.attrs[f"a{i:02d}"] = np.arange(i + 1, dtype="<i2")
        many.attrs["vlen"] = "dense vlen"
        f["soft"] = h5py.SoftLink("/small")
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["external"] = h5py.ExternalLink("other.h5", "/x")
        f["hard_again"] = f["small"]


def _chunked(path: Path, libver: str) -> None:
    """Chunked datasets with every chunk index of the libver, filters, compact and
    contiguous layouts, fill values, several dtypes and byte orders."""
    import h5py
    import numpy as np

    kw = {"track_times": False}
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("single", data=np.arange(12, dtype="<f4").reshape(3, 4), chunks=(3, 4), **kw)
        f.create_dataset("fixed", data=np.arange(40, dtype="<i2").reshape(5, 8), chunks=(2, 3), **kw)
        f.create_dataset("ext", data=np.arange(30, dtype=">f8"), chunks=(4,), maxshape=(None,), **kw)
        f.create_dataset("bt2", data=np.arange(24, dtype="<u1").reshape(4, 6), chunks=(3, 2),
                         maxshape=(None, None), **kw)
        f.create_dataset("gzip", data=np.arange(60, dtype="<f4"), chunks=(16,), compression="gzip",
                         shuffle=True, fletcher32=True, **kw)
        f.create_dataset("gzip_ext", data=np.arange(50, dtype="<i8"), chunks=(8,), maxshape=(None,),
                         compression="gzip", **kw)
        f.create_dataset("partial", shape=(10,), dtype="<f4", chunks=(4,), fillvalue=1.5, **kw)
        f["partial"][:3] = 2.0
        f.create_dataset("contig", data=np.arange(6, dtype="<f2"), **kw)
        f.create_dataset("empty", shape=(0, 3), dtype="<f4", **kw)
        f.create_dataset("scalar", data=np.float64(3.25), **kw)
        f.create_dataset("bool", data=np.array([True, False, True]), **kw)
        f.create_dataset("strings", data=np.array([b"ab", b"cde"]), **kw)

        def lowlevel(name: str, data: np.ndarray, dcpl) -> None:
            dcpl.set_obj_track_times(False)
            space = h5py.h5s.create_simple(data.shape)
            tid = h5py.h5t.py_create(data.dtype, logical=True)
            ds = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
            ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))

        compact = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        compact.set_layout(h5py.h5d.COMPACT)
        lowlevel("compact", np.arange(10, dtype="<i4"), compact)
        if libver == "latest":
            implicit = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            implicit.set_chunk((2, 2))
            implicit.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            lowlevel("implicit", np.arange(20, dtype="<u4").reshape(4, 5), implicit)


def _paged(path: Path, libver: str) -> None:
    """Datasets with many chunks: paged fixed array, extensible array with super blocks,
    a multi-level v1/v2 B-tree."""
    import h5py
    import numpy as np

    kw = {"track_times": False}
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("fa_paged", data=np.arange(1200, dtype="<u1"), chunks=(1,), **kw)
        f.create_dataset("ea_many", data=np.arange(300, dtype="<u1"), chunks=(1,), maxshape=(None,), **kw)
        f.create_dataset("bt2_many", data=np.arange(400, dtype="<u1").reshape(20, 20), chunks=(1, 1),
                         maxshape=(None, None), **kw)


def _small_earliest(path: Path, libver: str) -> None:
    """Small libver-earliest seed: a Keras 2 layer, a gzip/shuffle/fletcher32 chunked dataset
    (v1 B-tree), a compact dataset, a vlen string attribute, a soft link."""
    import h5py
    import numpy as np

    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g.create_group("dense").create_dataset("kernel:0", data=np.arange(6, dtype="<f4").reshape(2, 3),
                                               track_times=False)
        f.create_dataset("gzip", data=np.arange(20, dtype=">i4"), chunks=(8,), compression="gzip",
                         shuffle=True, fletcher32=True, track_times=False)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dcpl.set_obj_track_times(False)
        data = np.arange(4, dtype="<u2")
        ds = h5py.h5d.create(f.id, b"compact", h5py.h5t.py_create(data.dtype), h5py.h5s.create_simple((4,)),
                             dcpl=dcpl)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
        f["soft"] = h5py.SoftLink("/dense")


BASE_FILES = [
    ("keras_legacy_earliest", _keras_legacy, "earliest"),
    ("keras3_latest", _keras3, "latest"),
    ("groups_attrs_earliest", _groups_attrs, "earliest"),
    ("groups_attrs_latest", _groups_attrs, "latest"),
    ("chunked_earliest", _chunked, "earliest"),
    ("chunked_latest", _chunked, "latest"),
]
# Larger (many chunks): seeds for the fuzzer, and part of the slow mutation run only.
EXTRA_FILES = [("paged_latest", _paged, "latest")]
# The committed libFuzzer seeds (cpp/fuzz/corpus/, kept under 50 KB in total).
CORPUS_FILES = [
    ("small_earliest", _small_earliest, "earliest"),
    ("keras3_latest", _keras3, "latest"),
    ("groups_attrs_latest", _groups_attrs, "latest"),
    ("chunked_latest", _chunked, "latest"),
]


def build_base_files(directory: Path, extra: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make, libver in BASE_FILES + (EXTRA_FILES if extra else []):
        path = directory / f"{name}.h5"
        make(path, libver)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------
# lookup3 (HDF5's metadata checksum), to repair checksums after a mutation
# ---------------------------------------------------------------------------------------

_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _M
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M
        a = (a - c) & _M; a ^= _rot(c, 4); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rot(a, 6); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 8); b = (b + a) & _M  # noqa: E702
        a = (a - c) & _M; a ^= _rot(c, 16); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rot(a, 19); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 4); b = (b + a) & _M  # noqa: E702
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    c ^= b; c = (c - _rot(b, 14)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M  # noqa: E702
    return c


def checksummed_regions(data: bytes, valid_only: bool = True) -> list[tuple[int, int]]:
    """(start, end) of v2 structures whose extent follows from their own fields, where the
    lookup3 checksum stored at ``end`` matches ``data[start:end]`` (false signature hits
    fail that test; ``valid_only=False`` skips it): superblock v2/v3, object headers (OHDR),
    v2 B-tree headers (BTHD), fractal heap headers (FRHP), fixed/extensible array headers
    (FAHD, EAHD)."""
    regions = []
    sb = data.find(b"\x89HDF\r\n\x1a\n")
    so = 8
    if sb >= 0 and len(data) > sb + 10 and data[sb + 8] in (2, 3):
        so = data[sb + 9]
        regions.append((sb, sb + 12 + 4 * so))
    sl = data[sb + 10] if sb >= 0 and len(data) > sb + 10 and data[sb + 8] in (2, 3) else 8

    def find_all(sig: bytes):
        at = data.find(sig)
        while at >= 0:
            yield at
            at = data.find(sig, at + 1)

    for s in find_all(b"OHDR"):
        if s + 6 > len(data):
            continue
        flags = data[s + 5]
        p = s + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        if p + width > len(data):
            continue
        regions.append((s, p + width + int.from_bytes(data[p : p + width], "little")))
    for s in find_all(b"BTHD"):
        regions.append((s, s + 16 + so + 2 + sl))
    for s in find_all(b"FRHP"):
        if s + 7 <= len(data):
            filter_len = int.from_bytes(data[s + 5 : s + 7], "little")
            end = s + 4 + 1 + 2 + 2 + 1 + 4 + sl + so + sl + so + 8 * sl + 2 + sl + sl + 2 + 2 + so + 2
            if filter_len:
                end += sl + 4 + filter_len
            regions.append((s, end))
    for s in find_all(b"FAHD"):
        regions.append((s, s + 8 + sl + so))
    for s in find_all(b"EAHD"):
        regions.append((s, s + 12 + 6 * sl + so))
    return [
        (s, e)
        for s, e in regions
        if 0 <= s < e and e + 4 <= len(data)
        and (not valid_only or lookup3(data[s:e]) == int.from_bytes(data[e : e + 4], "little"))
    ]


def repair_checksums(data: bytes) -> bytes:
    """``data`` with the checksum of every fixed-extent v2 structure recomputed: turns a
    fuzzer artifact (the fuzz build ignores checksums) into a file that reaches the same
    parser in a production build, when the mutation sits in one of those structures."""
    out = bytearray(data)
    regions = checksummed_regions(data, valid_only=False)
    for s, e in regions:
        # A structure whose checksum would land inside another one is a mutated extent.
        if any(s2 <= e + 3 and e < e2 + 4 for s2, e2 in regions if (s2, e2) != (s, e)):
            continue
        struct.pack_into("<I", out, e, lookup3(bytes(out[s:e])))
    return bytes(out)


# ---------------------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------------------

_SIGNATURES = (b"OHDR", b"OCHK", b"TREE", b"SNOD", b"HEAP", b"GCOL", b"BTHD", b"BTIN", b"BTLF",
               b"FRHP", b"FHIB", b"FHDB", b"FAHD", b"FADB", b"EAHD", b"EAIB", b"EASB", b"EADB")


def interesting_offsets(data: bytes) -> list[int]:
    """Offsets of structure signatures: mutations near them hit metadata, not raw data."""
    out = []
    for sig in _SIGNATURES:
        at = data.find(sig)
        while at >= 0:
            out.append(at)
            at = data.find(sig, at + 1)
    return sorted(out) or [0]


def make_mutant(base: bytes, mutant_id: int, seed: int, regions=None, hot=None) -> tuple[bytes, str]:
    """Mutant ``mutant_id`` of ``base`` (deterministic in (base, mutant_id, seed)) and a
    description of what was done."""
    rng = random.Random(f"{seed}:{mutant_id}")
    data = bytearray(base)
    n = len(data)
    hot = hot if hot is not None else interesting_offsets(base)

    def offset(width: int = 1) -> int:
        if rng.random() < 0.6:  # near a structure signature (metadata), else anywhere
            at = rng.choice(hot) + rng.randrange(-16, 256)
        else:
            at = rng.randrange(n)
        return max(0, min(at, n - width))

    ops = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(("bitflip", "bitflip", "byte", "byte", "truncate", "zero8", "ones8", "dup8",
                           "shift8", "small_int"))
        if kind == "truncate":
            if ops:
                continue  # truncation alone, as the last word
            cut = rng.randrange(n)
            del data[cut:]
            ops.append(f"truncate@{cut}")
            break
        if kind == "bitflip":
            at = offset()
            bit = rng.randrange(8)
            data[at] ^= 1 << bit
            ops.append(f"bitflip@{at}.{bit}")
        elif kind == "byte":
            at = offset()
            value = rng.choice((0x00, 0xFF, rng.randrange(256)))
            count = rng.choice((1, 1, 2, 4))
            for k in range(at, min(at + count, n)):
                data[k] = value
            ops.append(f"byte@{at}x{count}={value:#04x}")
        elif kind == "zero8":
            at = offset(8)
            data[at : at + 8] = bytes(8)
            ops.append(f"zero8@{at}")
        elif kind == "ones8":
            at = offset(8)
            data[at : at + 8] = b"\xff" * 8
            ops.append(f"ones8@{at}")
        elif kind == "dup8":  # copy an 8-byte field (often an address) over another
            src, dst = offset(8), offset(8)
            data[dst : dst + 8] = data[src : src + 8]
            ops.append(f"dup8@{src}->{dst}")
        elif kind == "shift8":  # nudge a 64-bit little-endian value (an address or length)
            at = offset(8)
            value = struct.unpack_from("<Q", data, at)[0]
            delta = rng.choice((-16, -8, -1, 1, 8, 16, 512, 1 << 20, 1 << 40))
            struct.pack_into("<Q", data, at, (value + delta) & 0xFFFFFFFFFFFFFFFF)
            ops.append(f"shift8@{at}{delta:+d}")
        else:  # small_int: a plausible-looking count or size in a 1/2/4-byte field
            width = rng.choice((1, 2, 4))
            at = offset(width)
            value = rng.choice((0, 1, 2, 7, 8, 31, 32, 33, 64, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF))
            data[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            ops.append(f"int{width}@{at}={value}")
    # Half of the mutants get their v2 checksums repaired so the parser sees the change.
    if regions and len(data) == n and rng.random() < 0.5:
        changed = [k for k in range(n) if data[k] != base[k]]
        for s, e in regions:
            if any(s <= k < e + 4 for k in changed):
                struct.pack_into("<I", data, e, lookup3(bytes(data[s:e])))
        ops.append("fixsums")
    return bytes(data), " ".join(ops)


# ---------------------------------------------------------------------------------------
# The worker: open, walk, read
# ---------------------------------------------------------------------------------------


def _declared_bytes(ds) -> int:
    shape = ds.shape or ()
    size = 1
    for d in shape:
        size *= int(d)
    try:
        itemsize = ds.dtype.itemsize
    except Exception:  # noqa: BLE001 - the dtype is read again (and judged) by exercise()
        itemsize = 1
    return size * max(itemsize, 1)


def exercise(path: str) -> None:
    """Everything a user of a weight file does with it, with the fallback off."""
    import numpy as np

    import weightio

    def attrs_of(obj) -> None:
        a = obj.attrs
        for key in a.keys():
            value = a[key]
            if isinstance(value, np.ndarray):
                value.tobytes() if value.dtype != object else list(value.reshape(-1))
        len(a)

    def dataset(ds) -> bool:
        """Reads the dataset; True when its declared size allowed reading it."""
        ds.shape, ds.maxshape, ds.chunks, ds.layout, ds.filters, ds.compression, ds.shuffle
        ds.dtype
        ds.fillvalue
        if ds.shape is None:  # null dataspace
            ds[()]
            return True
        if _declared_bytes(ds) > MAX_READ_BYTES:
            # Too big to read whole: read single elements (first, middle, last) instead; a
            # size computation that wraps would read outside the file right here.
            if all(ds.shape):
                for pick in (lambda d: 0, lambda d: d // 2, lambda d: d - 1):
                    ds[tuple(pick(d) for d in ds.shape)]
            return False
        data = ds.read()
        data.tobytes()
        if ds.shape:
            half = tuple(slice(d // 2, None) for d in ds.shape)
            ds[half]
            ds[(0,) * len(ds.shape)] if all(ds.shape) else None
        else:
            ds[()]
        try:
            ds.view()
        except weightio.UnsupportedFeatureError:
            pass
        if data.dtype.kind == "f":
            ds.read(dtype="<f8")
        return True

    readable = True
    with weightio.File(path, fallback=False) as f:
        attrs_of(f)
        seen_paths = []

        def visit(name: str, obj) -> None:
            nonlocal readable
            seen_paths.append(name)
            attrs_of(obj)
            if isinstance(obj, weightio.Dataset):
                readable = dataset(obj) and readable
            else:
                for key in obj.keys():
                    obj.get(key, getlink=True)
                    key in obj  # noqa: B015 - membership test resolves the link
                    obj._hard_group(key)  # the Keras stores' one-call group lookup

        f.visititems(visit)
        for key in f.keys():
            f.get(key, getlink=True)
            try:
                f[key]
            except weightio.Error:
                pass  # dangling soft links, external links: judged by their own error
        for name in seen_paths[:200]:
            f[name]
            f._hard_group(name)
    with weightio.File(path, fallback=False) as f:  # the digest weightio.keras's plans compare
        f._call("/", "layout", f._addr, True)
    if readable:  # load_file reads every dataset: only when each is of sane declared size
        weightio.load_file(path, fallback=False)


def classify(exc: BaseException) -> tuple[str, str]:
    """("weightio", class name) for a weightio error, else ("other", traceback). An OSError
    that is not a weightio error counts as "other" too: mutants are ordinary readable files,
    so the OS has no reason to refuse them. So does MemoryError: the worker reads only
    datasets of sane declared size, so running out of memory means the core over-allocated."""
    import weightio

    if isinstance(exc, weightio.Error):
        return "weightio", type(exc).__name__
    return "other", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def limit_address_space() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    except (ImportError, ValueError, OSError):
        pass


def _selftest(mutant_id: int) -> None:
    """WEIGHTIO_MUTATION_SELFTEST="crash:ID,hang:ID,raise:ID" makes the worker misbehave on
    those mutants, so tests/test_mutations.py can check that its harness notices."""
    for item in filter(None, os.environ.get("WEIGHTIO_MUTATION_SELFTEST", "").split(",")):
        what, _, at = item.partition(":")
        if int(at) != mutant_id:
            continue
        if what == "crash":
            os.abort()
        if what == "hang":
            time.sleep(3600)
        if what == "raise":
            raise ValueError("self-test")


def run(base_dir: Path, start: int, stop: int, seed: int, work_dir: Path, extra: bool) -> None:
    limit_address_space()
    import weightio  # noqa: F401 - imported before the clock starts for the first mutant

    bases = mutation_bases(base_dir, extra)
    work_dir.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    for mutant_id in range(start, stop):
        name, data, regions, hot = bases[mutant_id % len(bases)]
        mutant, _ = make_mutant(data, mutant_id, seed, regions, hot)
        path = work_dir / f"mutant_{mutant_id}.h5"
        path.write_bytes(mutant)
        out.write(json.dumps({"begin": mutant_id}) + "\n")
        out.flush()
        t0 = time.perf_counter()
        try:
            _selftest(mutant_id)
            exercise(str(path))
            outcome, detail = "ok", ""
        except BaseException as exc:  # noqa: BLE001 - classify everything, KeyboardInterrupt aside
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome, detail = classify(exc)
        seconds = time.perf_counter() - t0
        path.unlink()
        out.write(json.dumps({"id": mutant_id, "outcome": outcome, "detail": detail, "seconds": seconds}) + "\n")
        out.flush()


def mutation_bases(base_dir: Path, extra: bool):
    """(name, bytes, checksum regions, hot offsets) of the base files, in a fixed order."""
    names = [n for n, _, _ in BASE_FILES + (EXTRA_FILES if extra else [])]
    out = []
    for name in names:
        data = (base_dir / f"{name}.h5").read_bytes()
        out.append((name, data, checksummed_regions(data), interesting_offsets(data)))
    return out


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] in ("seeds", "corpus"):
        # seeds: every base file (mutation bases and larger fuzz seeds); corpus: the small
        # set committed in cpp/fuzz/corpus/.
        directory = Path(argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        files = CORPUS_FILES if argv[0] == "corpus" else BASE_FILES + EXTRA_FILES + CORPUS_FILES[:1]
        for name, make, libver in files:
            path = directory / f"{name}.h5"
            make(path, libver)
            print(path, path.stat().st_size)
        return 0
    if len(argv) >= 6 and argv[0] == "run":
        run(Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]), Path(argv[5]), "--extra" in argv)
        return 0
    if len(argv) >= 3 and argv[0] == "fixsums":  # fixsums IN OUT: repair_checksums
        Path(argv[2]).write_bytes(repair_checksums(Path(argv[1]).read_bytes()))
        return 0
    if len(argv) >= 2 and argv[0] == "one":  # one PATH: exercise one file, print its outcome
        limit_address_space()
        t0 = time.perf_counter()
        try:
            exercise(argv[1])
            outcome, detail = "ok", ""
        except Exception as exc:  # noqa: BLE001 - classify everything
            outcome, detail = classify(exc)
        print(json.dumps({"outcome": outcome, "detail": detail, "seconds": time.perf_counter() - t0}))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
