"""Fixture factory: small, deterministic HDF5 files written with h5py.

Every variant is a function ``make_<name>(path, libver)`` that writes one file
(plus, for external links, a sibling file) and is registered in ``VARIANTS``.
``libver`` is passed to ``h5py.File(libver=...)``:

* ``"earliest"``: superblock v0, symbol-table groups, v1 object headers,
  v1 B-tree chunk index (what h5py writes by default, e.g. Keras 2 files);
* ``"latest"``: superblock v3, link/attribute info messages with compact or
  dense (fractal heap + v2 B-tree) storage, v2 object headers with
  checksums, and the single-chunk / implicit / fixed-array /
  extensible-array / v2 B-tree chunk indexes;
* ``"v108"`` (superblock variant only): superblock v2.

Files are deterministic (fixed seeds, ``track_times=False``) so a failure can
be reproduced byte for byte; ``tests/test_fixtures.py`` checks that, and that
each variant really has the on-disk features its docstring claims.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import ml_dtypes
import numpy as np

LIBVERS = ("earliest", "latest")

INT_CODES = ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")
FLOAT_CODES = ("f2", "f4", "f8")
BYTE_ORDERS = {"le": "<", "be": ">"}

# Group sizes straddling the compact/dense threshold of libver="latest"
# (compact up to 8 links by default, dense from 9 on).
LINK_COUNTS = (3, 8, 9, 50, 200)

# (low, high) bounds, as h5py.File(libver=...) maps its names.
_LIBVER_BOUNDS = {
    "earliest": (h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST),
    "latest": (h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST),
    "v108": (h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18),
}


# --------------------------------------------------------------------------
# Small helpers shared by the variants
# --------------------------------------------------------------------------


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _new_file(
    path: Path, libver: str, *, track_order: bool = False, userblock_size: int = 0, sizes: tuple[int, int] | None = None
) -> h5py.File:
    """Create a file whose root group stores no timestamps.

    Built from low-level property lists because not every h5py version lets
    ``h5py.File`` switch off timestamps (h5py < 3.15 stores them for the root
    group, which makes files differ from run to run).  ``sizes`` sets the
    width of file addresses and lengths in bytes (default 8, 8).
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(*_LIBVER_BOUNDS[libver])
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    if track_order:
        fcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
        fcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    if userblock_size:
        fcpl.set_userblock(userblock_size)
    if sizes:
        fcpl.set_sizes(*sizes)
    fid = h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def _group(parent: h5py.Group, path: str, track_order: bool = False) -> h5py.Group:
    """Create group ``path`` (and missing intermediate groups) without timestamps.

    ``track_order`` applies to the last component only.
    """
    *intermediate, last = path.split("/")
    for name in intermediate:
        parent = parent[name] if name in parent else _group(parent, name)
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if track_order:
        gcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
        gcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    # Like h5py: names are flagged ASCII when they are, UTF-8 otherwise (the
    # flag matters: libhdf5 cannot keep UTF-8 names in a symbol table).
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_char_encoding(h5py.h5t.CSET_ASCII if last.isascii() else h5py.h5t.CSET_UTF8)
    return h5py.Group(h5py.h5g.create(parent.id, last.encode(), lcpl=lcpl, gcpl=gcpl))


def _dataset(parent: h5py.Group, name: str, data=None, **kwargs) -> h5py.Dataset:
    """create_dataset without timestamps, so files are byte-for-byte reproducible.

    Missing intermediate groups ("dense/kernel:0") are created without
    timestamps too (h5py would create them with).
    """
    head, _, _ = name.rpartition("/")
    if head and head not in parent:
        _group(parent, head)
    kwargs.setdefault("track_times", False)
    return parent.create_dataset(name, data=data, **kwargs)


def _scrambled(names: list[str], seed: int) -> list[str]:
    """A fixed permutation, so creation order differs from name order."""
    order = _rng(seed).permutation(len(names))
    return [names[i] for i in order]


def _sample_values(dtype: np.dtype, n: int, seed: int = 0) -> np.ndarray:
    """n values of ``dtype`` that include its extremes and special values."""
    dtype = np.dtype(dtype)
    rng = _rng(seed)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        special = [info.min, info.max, 0, 1]
        if dtype.kind == "i":
            special.append(-1)
        body = rng.integers(info.min, info.max, size=n, dtype=dtype.newbyteorder("="), endpoint=True)
    elif dtype.kind == "f":
        info = np.finfo(dtype)
        special = [0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, info.max, info.min, info.tiny, info.smallest_subnormal]
        body = rng.standard_normal(n)
    elif dtype.kind == "b":
        special = [True, False]
        body = rng.integers(0, 2, size=n).astype(bool)
    else:
        raise ValueError(dtype)
    values = np.concatenate([np.array(special, dtype=dtype.newbyteorder("=")), body.astype(dtype.newbyteorder("="))])
    return values[:n].astype(dtype)


def _fixed_string_type(size: int, strpad: int, cset: int = h5py.h5t.CSET_ASCII) -> h5py.h5t.TypeStringID:
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(strpad)
    tid.set_cset(cset)
    return tid


def _raw_fixed_string_attr(obj, name: str, raw: bytes | list[bytes], size: int, strpad: int, cset=h5py.h5t.CSET_ASCII):
    """Write exactly these bytes (padding included) as a fixed-length string attribute.

    Writing with mtype == file type bypasses libhdf5's string conversion, so
    the file holds the padding we choose (h5py's high-level API would always
    write NULLPAD and let libhdf5 convert).
    """
    tid = _fixed_string_type(size, strpad, cset)
    arr = np.array(raw, dtype=f"S{size}")
    space = h5py.h5s.create(h5py.h5s.SCALAR) if arr.ndim == 0 else h5py.h5s.create_simple(arr.shape)
    attr = h5py.h5a.create(obj.id, name.encode(), tid, space)
    attr.write(arr, mtype=tid)


def _raw_fixed_string_dataset(parent, name: str, raw: list[bytes], size: int, strpad: int):
    tid = _fixed_string_type(size, strpad)
    arr = np.array(raw, dtype=f"S{size}")
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    dsid = h5py.h5d.create(parent.id, name.encode(), tid, h5py.h5s.create_simple(arr.shape), dcpl=dcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=tid)


def _lowlevel_dataset(parent, name: str, data: np.ndarray, dcpl) -> None:
    """Create a dataset from a hand-made dataset creation property list."""
    data = np.asarray(data)
    dcpl.set_obj_track_times(False)
    space = h5py.h5s.create(h5py.h5s.SCALAR) if data.ndim == 0 else h5py.h5s.create_simple(data.shape)
    tid = h5py.h5t.py_create(data.dtype, logical=True)
    dsid = h5py.h5d.create(parent.id, name.encode(), tid, space, dcpl=dcpl)
    if data.size:
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))


def _compact_dcpl():
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return dcpl


def _implicit_dcpl(chunks: tuple[int, ...]):
    # Early allocation with no filters and fixed dims selects the implicit index
    # under libver="latest" (chunk addresses are computed, not stored).
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


# --------------------------------------------------------------------------
# Groups and links
# --------------------------------------------------------------------------


def make_groups_link_counts(path: Path, libver: str) -> None:
    """Groups with 3, 8, 9, 50 and 200 links, in name order and in creation order.

    ``by_name_<n>``: default groups (iteration in name order; compact links
    up to 8, dense above, with libver="latest"; symbol tables, i.e. v1
    B-tree + local heap, with "earliest").  ``by_creation_<n>``:
    track_order=True groups whose links were created in a scrambled order,
    so creation order != name order.  Names such as item10 < item9 make
    byte order differ from "natural" order.

    ``utf8_names_<n>``: groups with non-ASCII names.  Under "earliest"
    libhdf5 cannot keep them in a symbol table and converts the group to
    link messages (compact for 4 links, dense for 12) inside a v1 header.
    """
    with _new_file(path, libver) as f:
        for n in LINK_COUNTS:
            names = [f"item{i}" for i in range(n)]
            for prefix, track_order in (("by_name", False), ("by_creation", True)):
                g = _group(f, f"{prefix}_{n}", track_order=track_order)
                for i, name in enumerate(_scrambled(names, seed=n)):
                    # A few datasets among the groups, so kinds vary too.
                    if i % 5 == 0:
                        _dataset(g, name, data=np.int32(i))
                    else:
                        _group(g, name)
        utf8 = ["Zeta", "alpha", "ünïcode", "日本語", "naïve", "e\u0301", "ß", "A", "a b", "x.y", "UPPER", "émoji 🙂"]
        for n in (4, 12):
            g = _group(f, f"utf8_names_{n}")
            for name in utf8[:n]:
                _group(g, name)


def make_groups_deep(path: Path, libver: str) -> None:
    """A chain of 10 nested groups with a dataset at the bottom and attributes along the way."""
    with _new_file(path, libver) as f:
        g = f
        for level in range(10):
            g = _group(g, f"level{level}")
            g.attrs["depth"] = np.int64(level)
            _dataset(g, f"data{level}", data=np.arange(level + 1, dtype="<i2"))
        _dataset(g, "leaf", data=np.linspace(0, 1, 7, dtype="<f8"))
        # A second, track-ordered chain next to the first one.
        g = _group(f, "ordered", track_order=True)
        for level in range(10):
            g = _group(g, f"z{level}", track_order=True)
            _group(g, "b")
            _group(g, "a")


def make_links(path: Path, libver: str) -> None:
    """Soft (absolute, relative, dangling, chained), hard (dataset and group twice,
    a cycle back to the parent) and external links (to an existing sibling
    file and to a missing file).

    The external link target is ``<stem>_target.h5`` in the same directory.
    """
    target = path.with_name(path.stem + "_target.h5")
    with _new_file(target, libver) as t:
        _dataset(t, "target_ds", data=np.arange(4, dtype="<f4"))
    with _new_file(path, libver) as f:
        data = _group(f, "data")
        x = _dataset(data, "x", data=np.arange(6, dtype="<i4").reshape(2, 3))
        x.attrs["role"] = "the original"
        g = _group(data, "g")
        _dataset(g, "y", data=np.float64(2.5))
        f["soft_abs"] = h5py.SoftLink("/data/x")
        data["soft_rel"] = h5py.SoftLink("x")  # relative to /data
        data["soft_rel_nested"] = h5py.SoftLink("g/y")
        f["soft_grp"] = h5py.SoftLink("/data/g")
        f["soft_chain"] = h5py.SoftLink("/soft_abs")
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["x_again"] = x  # hard link: same dataset, second name
        f["g_again"] = g  # hard link: same group, second name
        g["parent"] = data  # hard link cycle: /data/g/parent -> /data
        f["ext"] = h5py.ExternalLink(target.name, "/target_ds")
        f["ext_missing"] = h5py.ExternalLink("missing_file.h5", "/x")


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------


def _numeric_attrs(obj, seed: int) -> None:
    for code in INT_CODES + FLOAT_CODES:
        for order_name, order in BYTE_ORDERS.items():
            dt = np.dtype(order + code)
            values = _sample_values(dt, 12, seed=seed)
            obj.attrs[f"{code}_{order_name}_scalar"] = values[3]
            obj.attrs[f"{code}_{order_name}_array"] = values
            obj.attrs[f"{code}_{order_name}_2d"] = values.reshape(3, 4)
            obj.attrs[f"{code}_{order_name}_len1"] = values[:1]
    obj.attrs["bool_scalar"] = np.bool_(True)
    obj.attrs["bool_array"] = np.array([True, False, True])
    obj.attrs["python_int"] = 7
    obj.attrs["python_float"] = 0.1
    obj.attrs["nan_scalar"] = np.float32(np.nan)


def make_attrs_numeric(path: Path, libver: str) -> None:
    """Every integer and float dtype in both byte orders as scalar, 1-D, 2-D and
    length-1 attributes, on the root group, a group and a dataset."""
    with _new_file(path, libver) as f:
        _numeric_attrs(f, seed=1)
        _numeric_attrs(_group(f, "grp"), seed=2)
        _numeric_attrs(_dataset(f, "ds", data=np.zeros(3, "<f4")), seed=3)


def make_attrs_strings(path: Path, libver: str) -> None:
    """Fixed-length strings with each padding (raw bytes chosen by hand), UTF-8
    fixed-length strings, vlen UTF-8 and ASCII strings (scalars and arrays),
    and Keras-style ``layer_names`` / ``weight_names`` byte arrays."""
    nullterm, nullpad, spacepad = h5py.h5t.STR_NULLTERM, h5py.h5t.STR_NULLPAD, h5py.h5t.STR_SPACEPAD
    with _new_file(path, libver) as f:
        for obj in (f, _group(f, "grp"), _dataset(f, "ds", data=np.arange(2))):
            _raw_fixed_string_attr(obj, "nullterm_scalar", b"abc\0\0\0", 6, nullterm)
            _raw_fixed_string_attr(obj, "nullterm_array", [b"dense\0", b"a\0\0\0\0\0", b"\0" * 6], 6, nullterm)
            _raw_fixed_string_attr(obj, "nullpad_scalar", b"abc\0\0\0", 6, nullpad)
            _raw_fixed_string_attr(obj, "nullpad_full", b"abcdef", 6, nullpad)
            _raw_fixed_string_attr(obj, "nullpad_array", [b"dense\0", b"abcdef", b"a\0b\0\0\0", b"\0" * 6], 6, nullpad)
            _raw_fixed_string_attr(obj, "spacepad_scalar", b"abc   ", 6, spacepad)
            _raw_fixed_string_attr(obj, "spacepad_array", [b"a b   ", b"abcdef", b"      "], 6, spacepad)
            _raw_fixed_string_attr(obj, "utf8_fixed", "héllo".encode() + b"\0", 7, nullpad, h5py.h5t.CSET_UTF8)
            obj.attrs["vlen_utf8"] = "héllo wörld"
            obj.attrs["vlen_empty"] = ""
            obj.attrs.create("vlen_ascii", "plain", dtype=h5py.string_dtype("ascii"))
            obj.attrs["vlen_array"] = np.array(["a", "bé", ""], dtype=h5py.string_dtype())
            obj.attrs["vlen_2d"] = np.array([["a", "b"], ["c", "ddd"]], dtype=h5py.string_dtype())
            obj.attrs["vlen_ascii_array"] = np.array([b"x", b"yz"], dtype=h5py.string_dtype("ascii"))
            obj.attrs["python_bytes"] = b"tensorflow"  # Keras' `backend` attr: h5py stores vlen ASCII
            obj.attrs["layer_names"] = np.array([b"dense", b"dense_1", b"batch_normalization"])
            obj.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
            obj.attrs["fixed_S_scalar"] = np.bytes_(b"fixed")


def make_attrs_special(path: Path, libver: str) -> None:
    """Empty (0-size) arrays as Keras writes them for layers without weights,
    null-dataspace attributes (h5py.Empty) of several dtypes, and names with
    spaces, punctuation and non-ASCII characters."""
    with _new_file(path, libver) as f:
        for obj in (f, _group(f, "grp"), _dataset(f, "ds", data=np.float32(1))):
            obj.attrs["weight_names"] = np.array([])  # float64, shape (0,): Keras' empty list
            obj.attrs["empty_i4"] = np.zeros((0,), "<i4")
            obj.attrs["empty_2d"] = np.zeros((0, 3), ">f4")
            obj.attrs["empty_S"] = np.array([], dtype="S3")
            obj.attrs["empty_vlen"] = np.array([], dtype=h5py.string_dtype())
            obj.attrs["null_f4"] = h5py.Empty("<f4")
            obj.attrs["null_i8_be"] = h5py.Empty(">i8")
            obj.attrs["null_S5"] = h5py.Empty("S5")
            obj.attrs["null_vlen_str"] = h5py.Empty(h5py.string_dtype())
            obj.attrs["with space, comma"] = np.int8(1)
            obj.attrs["naïve ünicode 名前"] = np.int8(2)
            obj.attrs["dotted.name"] = np.int8(3)


def _many_attrs(obj, n: int, seed: int) -> None:
    names = [f"attr_{i:03d}" for i in range(n)]
    for i, name in enumerate(_scrambled(names, seed)):
        obj.attrs[name] = f"value {i}" if i % 3 == 0 else np.int32(i)


def make_attrs_many(path: Path, libver: str) -> None:
    """20 and 100 attributes per object: dense attribute storage with
    libver="latest" (compact holds at most 8), object-header continuation
    blocks with "earliest"."""
    with _new_file(path, libver) as f:
        _many_attrs(f, 20, seed=1)
        _many_attrs(_group(f, "grp"), 100, seed=2)
        _many_attrs(_dataset(f, "ds", data=np.arange(3)), 20, seed=3)
        _many_attrs(_dataset(f, "chunked", data=np.arange(30), chunks=(7,)), 20, seed=4)


def make_attrs_big(path: Path, libver: str) -> None:
    """Big attributes: ~60 KB (fits an object-header message), a 200 KB vlen
    string (like Keras' ``model_config``, lives in the global heap) and,
    for libver="latest" only, ~100 KB arrays which force dense attribute
    storage (libver="earliest" cannot store attributes over 64 KB at all)."""
    rng = _rng(5)
    config = {"layers": [{"name": f"dense_{i}", "units": i, "activation": "relu"} for i in range(3000)]}
    with _new_file(path, libver) as f:
        ds = _dataset(f, "ds", data=np.arange(3))
        for obj in (f, ds):
            obj.attrs["big_60k"] = rng.standard_normal(7500)  # 60,000 bytes of float64
            obj.attrs["model_config"] = json.dumps(config)
            if libver != "earliest":
                obj.attrs["big_100k"] = rng.standard_normal(12800).astype(">f8")
                obj.attrs["big_names"] = np.array([f"layer_{i:06d}".encode() for i in range(8000)])
            obj.attrs["small_after_big"] = np.int16(42)


def make_attrs_track_order(path: Path, libver: str) -> None:
    """Attributes on track_order=True objects, created in scrambled order: 4
    (compact) and 20 (dense under "latest", creation-order index) per object."""
    with _new_file(path, libver, track_order=True) as f:
        _many_attrs(f, 4, seed=11)
        _many_attrs(_group(f, "few", track_order=True), 4, seed=12)
        _many_attrs(_group(f, "many", track_order=True), 20, seed=13)
        _many_attrs(_dataset(f, "ds", data=np.arange(3), track_order=True), 20, seed=14)
        # A default (name-ordered) group inside a track-ordered file.
        _many_attrs(_group(f, "by_name", track_order=False), 20, seed=15)


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------


def make_datasets_dtypes(path: Path, libver: str) -> None:
    """Contiguous 1-D datasets of every int/float dtype in both byte orders,
    plus bool, 2-byte opaque and fixed-length strings ('S10', NULLPAD;
    NULLTERM and SPACEPAD written as raw bytes)."""
    with _new_file(path, libver) as f:
        for code in INT_CODES + FLOAT_CODES:
            for order_name, order in BYTE_ORDERS.items():
                dt = np.dtype(order + code)
                _dataset(f, f"{code}_{order_name}", data=_sample_values(dt, 20, seed=len(code)))
        _dataset(f, "bool", data=_sample_values(np.dtype(bool), 20))
        _dataset(f, "opaque_V2", data=np.frombuffer(bytes(range(40)), dtype="V2"))
        _dataset(f, "opaque_V7", data=np.frombuffer(bytes(range(70)), dtype="V7"))
        _dataset(f, "S10", data=np.array([b"", b"a", b"0123456789", b"dense_1", b"a\0b"], dtype="S10"))
        _raw_fixed_string_dataset(f, "S6_nullterm", [b"abc\0\0\0", b"abcde\0"], 6, h5py.h5t.STR_NULLTERM)
        _raw_fixed_string_dataset(f, "S6_spacepad", [b"abc   ", b"a b   ", b"abcdef"], 6, h5py.h5t.STR_SPACEPAD)


def make_datasets_shapes(path: Path, libver: str) -> None:
    """Scalar, 0-size, null-dataspace (h5py.Empty) and 1-D to 4-D datasets."""
    rng = _rng(7)
    with _new_file(path, libver) as f:
        _dataset(f, "scalar_f8", data=np.float64(3.25))
        _dataset(f, "scalar_i2_be", data=np.array(-7, ">i2"))
        _dataset(f, "scalar_bool", data=np.bool_(True))
        _dataset(f, "scalar_S5", data=np.bytes_(b"abc"), dtype="S5")
        _dataset(f, "empty_1d", data=np.zeros((0,), "<f4"))
        _dataset(f, "empty_2d", data=np.zeros((3, 0), "<i8"))
        _dataset(f, "empty_chunked", shape=(0, 4), dtype="<f4", chunks=(2, 4), maxshape=(None, 4))
        _dataset(f, "null_f4", data=h5py.Empty("<f4"))
        _dataset(f, "null_i2_be", data=h5py.Empty(">i2"))
        _dataset(f, "d1", data=rng.standard_normal(17).astype("<f4"))
        _dataset(f, "d2", data=rng.standard_normal((5, 6)).astype("<f4"))
        _dataset(f, "d3", data=rng.integers(-100, 100, (2, 3, 4)).astype(">i4"))
        _dataset(f, "d4", data=rng.standard_normal((2, 1, 3, 2)).astype("<f8"))
        _dataset(f, "length_one", data=np.array([5], "<u2"))


def make_datasets_compact(path: Path, libver: str) -> None:
    """Compact layout (raw data inside the object header), created with a
    low-level dcpl: several dtypes/byte orders, scalar and 2-D, and a compact
    dataset with a fill value that was never written."""
    with _new_file(path, libver) as f:
        _lowlevel_dataset(f, "i4", np.arange(10, dtype="<i4"), _compact_dcpl())
        _lowlevel_dataset(f, "f8_be_2d", np.linspace(-1, 1, 12).reshape(3, 4).astype(">f8"), _compact_dcpl())
        _lowlevel_dataset(f, "scalar_f4", np.float32(1.25), _compact_dcpl())
        _lowlevel_dataset(f, "S5", np.array([b"ab", b"cdefg"], dtype="S5"), _compact_dcpl())
        _lowlevel_dataset(f, "bool", np.array([True, False, True]), _compact_dcpl())
        # Compact storage is allocated at creation, so an unwritten compact
        # dataset holds its fill value in the object header.
        dcpl = _compact_dcpl()
        dcpl.set_fill_value(np.array([-3], "<i2"))
        dcpl.set_obj_track_times(False)
        h5py.h5d.create(f.id, b"unwritten_with_fill", h5py.h5t.STD_I16LE, h5py.h5s.create_simple((5,)), dcpl=dcpl)


# The same 2-D shape and edge-chunk pattern under every chunk index.
_CHUNKED_SHAPE = (10, 7)
_CHUNKS = (4, 3)


def make_datasets_chunked(path: Path, libver: str) -> None:
    """Chunked datasets named after the chunk index libver="latest" picks for
    them (with "earliest" every one uses a v1 B-tree): single chunk,
    implicit, fixed array, extensible array (one unlimited dim), v2 B-tree
    (two unlimited dims); edge chunks everywhere (10x7 in 4x3 chunks),
    plus 1-D, 3-D and chunk-bigger-than-data cases."""
    rng = _rng(8)
    data = rng.standard_normal(_CHUNKED_SHAPE).astype("<f4")
    with _new_file(path, libver) as f:
        _dataset(f, "single", data=data, chunks=_CHUNKED_SHAPE)
        _dataset(f, "single_gzip", data=data, chunks=_CHUNKED_SHAPE, compression="gzip")
        _lowlevel_dataset(f, "implicit", data, _implicit_dcpl(_CHUNKS))
        _dataset(f, "fixed_array", data=data, chunks=_CHUNKS)
        _dataset(f, "extensible_array", data=data, chunks=_CHUNKS, maxshape=(None, 7))
        _dataset(f, "btree_v2", data=data, chunks=_CHUNKS, maxshape=(None, None))
        _dataset(f, "fixed_array_1d", data=np.arange(11, dtype=">i8"), chunks=(4,))
        _dataset(f, "fixed_array_3d", data=rng.integers(0, 255, (5, 6, 7), dtype="u1"), chunks=(2, 4, 3))
        _dataset(f, "extensible_array_3d", data=rng.standard_normal((5, 6, 7)), chunks=(2, 4, 3), maxshape=(5, None, 7))
        _dataset(f, "chunk_bigger_than_data", data=np.arange(3, dtype="<i2"), chunks=(10,), maxshape=(None,))
        _dataset(f, "unit_chunks", data=np.arange(12, dtype="<u4").reshape(3, 4), chunks=(1, 1))
        _dataset(f, "strings", data=np.array([b"a", b"bb", b"ccc", b"", b"eeeee"], "S5"), chunks=(2,))
        _dataset(f, "bool", data=_sample_values(np.dtype(bool), 9), chunks=(4,))
        resized = _dataset(f, "resized", data=data[:2], chunks=_CHUNKS, maxshape=(None, 7))
        resized.resize(_CHUNKED_SHAPE)
        resized[2:] = data[2:]


def make_datasets_many_chunks(path: Path, libver: str) -> None:
    """~2000 chunks per dataset: paged fixed arrays, extensible arrays with
    secondary blocks, multi-level v2 B-trees (latest) and multi-level v1
    B-trees (earliest)."""
    rng = _rng(9)
    with _new_file(path, libver) as f:
        _dataset(f, "fixed_array", data=np.arange(2000, dtype="<i2"), chunks=(1,))
        _dataset(f, "fixed_array_gzip", data=np.arange(1500, dtype="<i4"), chunks=(1,), compression="gzip")
        _dataset(f, "extensible_array", data=np.arange(2000, dtype="<i2"), chunks=(1,), maxshape=(None,))
        _dataset(f, "extensible_array_gzip", data=np.arange(1500, dtype="<i4"), chunks=(1,), maxshape=(None,), compression="gzip")
        _dataset(f, "btree_v2", data=rng.standard_normal((50, 40)).astype("<f4"), chunks=(1, 1), maxshape=(None, None))
        # Sparse: only every 7th chunk allocated, the rest read as the fill value.
        sparse = _dataset(f, "sparse_extensible", shape=(2000,), dtype="<i2", chunks=(1,), maxshape=(None,), fillvalue=-1)
        sparse[::7] = np.arange(0, 2000, 7, dtype="<i2")


_FILTER_COMBOS = {
    "gzip1": dict(compression="gzip", compression_opts=1),
    "gzip9": dict(compression="gzip", compression_opts=9),
    "shuffle": dict(shuffle=True),
    "fletcher32": dict(fletcher32=True),
    "shuffle_gzip": dict(shuffle=True, compression="gzip", compression_opts=4),
    "gzip_fletcher32": dict(compression="gzip", fletcher32=True),
    "shuffle_gzip_fletcher32": dict(shuffle=True, compression="gzip", compression_opts=6, fletcher32=True),
}


def make_datasets_filters(path: Path, libver: str) -> None:
    """gzip (levels 1, 4, 6, 9), shuffle, fletcher32 and their combinations on
    edge-chunked data; shuffled multi-byte ints and big-endian floats;
    filtered chunks under each chunk index; a chunk stored unfiltered with
    its filter-mask bit set (written with write_direct_chunk)."""
    rng = _rng(10)
    # Compressible but not trivial: small integers as float32.
    data = (rng.integers(0, 50, (40, 30)) / 8).astype("<f4")
    with _new_file(path, libver) as f:
        for name, kwargs in _FILTER_COMBOS.items():
            _dataset(f, name, data=data, chunks=(16, 8), **kwargs)
        _dataset(f, "shuffle_i2_be", data=rng.integers(-999, 999, 300).astype(">i2"), chunks=(64,), shuffle=True)
        _dataset(f, "gzip_f8_be", data=rng.standard_normal(300).astype(">f8"), chunks=(50,), compression="gzip")
        _dataset(f, "shuffle_gzip_u1", data=rng.integers(0, 4, 300).astype("u1"), chunks=(100,), shuffle=True, compression="gzip")
        _dataset(f, "gzip_random_incompressible", data=rng.integers(0, 256, 1000).astype("u1"), chunks=(300,), compression="gzip")
        # Filtered chunks under the other indexes (all v1 B-tree with "earliest").
        _dataset(f, "single_shuffle_gzip_fletcher32", data=data, chunks=data.shape, shuffle=True, compression="gzip", fletcher32=True)
        _dataset(f, "extensible_shuffle_gzip", data=data, chunks=(16, 8), maxshape=(None, 30), shuffle=True, compression="gzip")
        _dataset(f, "btree_v2_gzip_fletcher32", data=data, chunks=(16, 8), maxshape=(None, None), compression="gzip", fletcher32=True)
        # A gzip dataset whose second chunk is stored raw: its filter mask says
        # "gzip skipped", which readers must honour.
        ds = _dataset(f, "gzip_chunk_skipped", shape=(8,), dtype="<i4", chunks=(4,), compression="gzip")
        ds[:4] = np.arange(4, dtype="<i4")
        ds.id.write_direct_chunk((4,), np.arange(100, 104, dtype="<i4").tobytes(), filter_mask=0b1)


def make_datasets_fill(path: Path, libver: str) -> None:
    """Unallocated storage: chunked datasets partly written (with and without
    fillvalue=), chunked and contiguous datasets never written, and fill
    values of several dtypes/byte orders."""
    with _new_file(path, libver) as f:
        ds = _dataset(f, "partial_no_fill", shape=(10, 7), dtype="<f4", chunks=(4, 3))
        ds[:4, :3] = 1.5
        ds = _dataset(f, "partial_fill", shape=(10, 7), dtype="<f4", chunks=(4, 3), fillvalue=-2.5)
        ds[4:8, 3:6] = 1.5
        ds = _dataset(f, "partial_fill_i2_be", shape=(9,), dtype=">i2", chunks=(2,), fillvalue=-300)
        ds[2:4] = 7
        ds = _dataset(f, "partial_fill_extensible", shape=(10, 7), dtype="<i4", chunks=(4, 3), maxshape=(None, 7), fillvalue=9)
        ds[8:] = 1
        ds = _dataset(f, "partial_fill_btree_v2", shape=(10, 7), dtype="<f8", chunks=(4, 3), maxshape=(None, None), fillvalue=np.nan)
        ds[0, 0] = 1
        ds = _dataset(f, "partial_fill_S4", shape=(5,), dtype="S4", chunks=(2,), fillvalue=b"xy")
        ds[0] = b"abcd"
        _dataset(f, "chunked_never_written", shape=(10, 7), dtype="<f4", chunks=(4, 3), fillvalue=0.75)
        _dataset(f, "extensible_never_written", shape=(10, 7), dtype="<f4", chunks=(4, 3), maxshape=(None, 7), fillvalue=0.75)
        _dataset(f, "btree_v2_never_written", shape=(10, 7), dtype="<u1", chunks=(4, 3), maxshape=(None, None), fillvalue=200)
        _dataset(f, "contiguous_never_written_fill", shape=(6, 5), dtype="<f8", fillvalue=3.25)
        _dataset(f, "contiguous_never_written", shape=(6,), dtype="<i8")
        _dataset(f, "contiguous_never_written_be", shape=(4,), dtype=">u4", fillvalue=0xDEADBEEF)


def make_datasets_big(path: Path, libver: str) -> None:
    """An 8 MB contiguous float32 dataset and a 2 MB gzip-chunked one, for slicing."""
    rng = _rng(12)
    with _new_file(path, libver) as f:
        _dataset(f, "big", data=rng.standard_normal((1024, 2048)).astype("<f4"))
        chunked = (np.arange(512 * 1024, dtype="<f4") % 1000).reshape(512, 1024)
        _dataset(f, "big_chunked", data=chunked, chunks=(64, 100), compression="gzip", compression_opts=1)


# --------------------------------------------------------------------------
# Keras-like layouts
# --------------------------------------------------------------------------

# (layer name, [(weight name, shape)]) as Keras 2 `model.save_weights("x.h5")` writes them.
_KERAS2_LAYERS = [
    ("conv2d", [("conv2d/kernel:0", (3, 3, 2, 4)), ("conv2d/bias:0", (4,))]),
    ("flatten", []),
    ("dense", [("dense/kernel:0", (8, 5)), ("dense/bias:0", (5,))]),
    (
        "batch_normalization",
        [(f"batch_normalization/{n}:0", (5,)) for n in ("gamma", "beta", "moving_mean", "moving_variance")],
    ),
    ("dense_1", [("dense_1/kernel:0", (5, 2)), ("dense_1/bias:0", (2,))]),
]


def _write_keras2_weights(group: h5py.Group, seed: int) -> None:
    """Mirror of keras.saving.legacy.hdf5_format.save_weights_to_hdf5_group."""
    rng = _rng(seed)
    # Keras passes Python lists of bytes; depending on the h5py version they
    # become fixed-length (S) or vlen strings.  Pin the fixed-length form.
    group.attrs["layer_names"] = np.array([name.encode("utf8") for name, _ in _KERAS2_LAYERS])
    group.attrs["backend"] = "tensorflow".encode("utf8")
    group.attrs["keras_version"] = "2.15.0".encode("utf8")
    for layer_name, weights in _KERAS2_LAYERS:
        g = _group(group, layer_name)
        # An empty list becomes float64 with shape (0,).
        g.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in weights]) if weights else []
        for weight_name, shape in weights:
            value = rng.standard_normal(shape).astype("<f4")
            ds = _dataset(g, weight_name, shape=value.shape, dtype=value.dtype)
            ds[()] = value


def make_keras2_weights(path: Path, libver: str) -> None:
    """Keras 2 ``model.save_weights("x.h5")`` layout: root attrs layer_names /
    backend / keras_version, one group per layer with weight_names, weights at
    ``dense/dense/kernel:0``."""
    with _new_file(path, libver) as f:
        _write_keras2_weights(f, seed=20)


def make_keras2_model(path: Path, libver: str) -> None:
    """Keras 2 ``model.save("x.h5")`` layout: JSON model_config/training_config
    attrs, weights under ``model_weights``, optimizer state under
    ``optimizer_weights``."""
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 5}}]}}
    with _new_file(path, libver) as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps({"loss": "mse", "optimizer_config": {"class_name": "Adam"}})
        _write_keras2_weights(_group(f, "model_weights"), seed=21)
        opt = _group(f, "optimizer_weights")
        # As Keras writes it: a plain list (fixed-length or vlen, per h5py version).
        opt.attrs["weight_names"] = [b"Adam/iter:0", b"Adam/dense/kernel/m:0", b"Adam/dense/kernel/v:0"]
        _dataset(opt, "Adam/iter:0", data=np.int64(10))
        _dataset(opt, "Adam/dense/kernel/m:0", data=np.zeros((8, 5), "<f4"))
        _dataset(opt, "Adam/dense/kernel/v:0", data=np.full((8, 5), 1e-3, "<f4"))


def _bfloat16_as_opaque(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=ml_dtypes.bfloat16).view("V2")


def make_keras3_weights(path: Path, libver: str) -> None:
    """Keras 3 ``.weights.h5`` layout (``layers/<name>/vars/<i>``, nested
    layers, optimizer vars, empty ``vars`` groups) with a bfloat16 variable
    stored as 2-byte opaque data plus attr ``dtype="bfloat16"``."""
    rng = _rng(22)
    with _new_file(path, libver) as f:
        layers = _group(f, "layers")
        dense = _group(layers, "dense/vars")
        _dataset(dense, "0", data=rng.standard_normal((8, 5)).astype("<f4"))
        _dataset(dense, "1", data=np.zeros(5, "<f4"))
        emb = _group(layers, "embedding/vars")
        bf = _dataset(emb, "0", data=_bfloat16_as_opaque(rng.standard_normal((16, 4))))
        bf.attrs["dtype"] = "bfloat16"
        _group(layers, "dropout/vars")  # a layer without weights
        inner = _group(layers, "functional/layers/dense_1/vars")
        _dataset(inner, "0", data=rng.standard_normal((5, 2)).astype("<f2"))
        opt_vars = _group(f, "optimizer/vars")
        _dataset(opt_vars, "0", data=np.int64(3))
        _dataset(opt_vars, "1", data=np.float32(1e-3))
        for i in range(2, 12):  # >8 links: dense link storage under "latest"
            _dataset(opt_vars, str(i), data=np.full((3,), i, "<f4"))


# --------------------------------------------------------------------------
# File-level features
# --------------------------------------------------------------------------


def _small_content(f: h5py.File) -> None:
    f.attrs["title"] = "small"
    g = _group(f, "grp")
    _dataset(g, "contiguous", data=np.arange(12, dtype="<f4").reshape(3, 4))
    _dataset(g, "chunked_gzip", data=np.arange(50, dtype=">i4"), chunks=(8,), compression="gzip")
    g.attrs["names"] = [b"a", b"bc"]
    f["soft"] = h5py.SoftLink("/grp/contiguous")


def make_userblock(path: Path, libver: str, size: int = 512) -> None:
    """A file with a user block: the superblock (and the base address) at ``size``."""
    with _new_file(path, libver, userblock_size=size) as f:
        _small_content(f)
    with open(path, "r+b") as fh:
        fh.write(b"user block text, not HDF5\n")


def make_superblock(path: Path, libver: str) -> None:
    """Small file per superblock version: v0 (earliest), v2 (v108), v3 (latest)."""
    with _new_file(path, libver) as f:
        _small_content(f)


def make_small_offsets(path: Path, libver: str) -> None:
    """4-byte file addresses and lengths (fcpl set_sizes(4, 4)) instead of 8."""
    with _new_file(path, libver, sizes=(4, 4)) as f:
        _small_content(f)
        many = _group(f, "many")
        for i in range(12):
            _dataset(many, f"d{i}", data=np.arange(i + 1, dtype="<i2"))
        # No unlimited dimensions: with 4-byte lengths libhdf5 writes
        # H5S_UNLIMITED truncated to 0xffffffff and then cannot reopen
        # extensible-array datasets ("didn't find unlimited dimension").
        _dataset(f, "chunked", data=np.arange(40, dtype="<f8"), chunks=(3,))
        _many_attrs(f, 12, seed=30)


def make_committed_datatype(path: Path, libver: str) -> None:
    """Named (committed) datatypes linked into the tree and used by datasets
    and attributes."""
    with _new_file(path, libver) as f:
        f["t_f4"] = np.dtype("<f4")
        f["t_i8_be"] = np.dtype(">i8")
        g = _group(f, "grp")
        g["t_S3"] = np.dtype("S3")
        _dataset(f, "uses_f4", data=np.arange(5), dtype=f["t_f4"])
        _dataset(g, "uses_i8_be", data=np.arange(4), dtype=f["t_i8_be"])
        _dataset(g, "uses_S3", data=np.array([b"ab", b"xyz"]), dtype=g["t_S3"])
        f.attrs.create("attr_uses_f4", data=np.arange(3), dtype=f["t_f4"])


# --------------------------------------------------------------------------
# Features weightio reads only through the h5py fallback
# --------------------------------------------------------------------------

COMPOUND_DTYPE = np.dtype([("a", "<f4"), ("b", "<i2"), ("c", "S3")])


def make_fallback_features(path: Path, libver: str) -> None:
    """Compound, vlen string, vlen int and enum datasets, lzf and szip
    compression; plus one plain dataset. Names are the feature."""
    with _new_file(path, libver) as f:
        _dataset(f, "plain", data=np.arange(6, dtype="<f4"))
        compound = np.array([(1.5, 2, b"ab"), (-1.0, 7, b"xyz")], dtype=COMPOUND_DTYPE)
        _dataset(f, "compound", data=compound)
        _dataset(f, "vlen_str", data=np.array(["a", "héllo", ""], dtype=h5py.string_dtype()))
        _dataset(f, "vlen_str_scalar", data="scalar string", dtype=h5py.string_dtype())
        _dataset(f, "vlen_str_chunked", data=np.array(["x", "yy"] * 10, dtype=h5py.string_dtype()), chunks=(4,))
        vlen_int = np.empty(3, dtype=object)
        vlen_int[:] = [np.arange(1, dtype="<i4"), np.arange(3, dtype="<i4"), np.arange(0, dtype="<i4")]
        _dataset(f, "vlen_int", data=vlen_int, dtype=h5py.vlen_dtype(np.dtype("<i4")))
        enum = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 42}, basetype="i1")
        _dataset(f, "enum", data=np.array([0, 1, 42, 1], dtype="i1"), dtype=enum)
        _dataset(f, "lzf", data=np.arange(1000, dtype="<f4").reshape(10, 100), chunks=(3, 30), compression="lzf")
        if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
            _dataset(f, "szip", data=np.arange(1000, dtype="<i4"), chunks=(100,), compression="szip")


BLOSC_FILTER_ID = 32001


def make_unknown_filter(path: Path, libver: str) -> None:
    """A dataset whose pipeline names an unregistered filter (blosc's id 32001):
    chunk 0 is "filtered" (neither weightio nor h5py can decode it), chunk 1 is
    stored raw with its filter-mask bit set (readable).  Not part of the
    oracle variants: h5py itself cannot read all of it."""
    with _new_file(path, libver) as f:
        _dataset(f, "plain", data=np.arange(4, dtype="<i4"))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4,))
        dcpl.set_filter(BLOSC_FILTER_ID, h5py.h5z.FLAG_OPTIONAL, (2, 2, 4, 16))
        dcpl.set_obj_track_times(False)
        dsid = h5py.h5d.create(f.id, b"blosc", h5py.h5t.STD_I32LE, h5py.h5s.create_simple((8,)), dcpl=dcpl)
        dsid.write_direct_chunk((0,), b"\x02\x01\x13\x04" + bytes(28), filter_mask=0)
        dsid.write_direct_chunk((4,), np.arange(4, dtype="<i4").tobytes(), filter_mask=0b1)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    make: Callable[[Path, str], None]
    libvers: tuple[str, ...] = LIBVERS
    # False: the file contains features weightio reads only through h5py
    # (fallback=True) or that no reader can fully decode.
    native: bool = True
    # True: h5py reads the whole file, so it can serve as an oracle variant.
    oracle: bool = True
    # False: libhdf5 stamps times we cannot switch off (committed datatypes
    # have no creation property list in h5py), so two runs differ in bytes.
    reproducible: bool = True

    @property
    def doc(self) -> str:
        return (self.make.func.__doc__ if isinstance(self.make, functools.partial) else self.make.__doc__) or ""


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("groups_link_counts", make_groups_link_counts),
        Variant("groups_deep", make_groups_deep),
        Variant("links", make_links),
        Variant("attrs_numeric", make_attrs_numeric),
        Variant("attrs_strings", make_attrs_strings),
        Variant("attrs_special", make_attrs_special),
        Variant("attrs_many", make_attrs_many),
        Variant("attrs_big", make_attrs_big),
        Variant("attrs_track_order", make_attrs_track_order),
        Variant("datasets_dtypes", make_datasets_dtypes),
        Variant("datasets_shapes", make_datasets_shapes),
        Variant("datasets_compact", make_datasets_compact),
        Variant("datasets_chunked", make_datasets_chunked),
        Variant("datasets_many_chunks", make_datasets_many_chunks),
        Variant("datasets_filters", make_datasets_filters),
        Variant("datasets_fill", make_datasets_fill),
        Variant("datasets_big", make_datasets_big),
        Variant("keras2_weights", make_keras2_weights),
        Variant("keras2_model", make_keras2_model),
        Variant("keras3_weights", make_keras3_weights),
        Variant("userblock_512", functools.partial(make_userblock, size=512)),
        Variant("userblock_1024", functools.partial(make_userblock, size=1024)),
        Variant("superblock", make_superblock, libvers=("earliest", "v108", "latest")),
        Variant("small_offsets", make_small_offsets),
        Variant("committed_datatype", make_committed_datatype, reproducible=False),
        Variant("fallback_features", make_fallback_features, native=False),
        Variant("unknown_filter", make_unknown_filter, native=False, oracle=False),
    ]
}


def write_variant(name: str, libver: str, directory: Path) -> Path:
    """Write variant ``name`` into ``directory`` and return the main file's path."""
    variant = VARIANTS[name]
    if libver not in variant.libvers:
        raise ValueError(f"variant {name!r} is not defined for libver={libver!r}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{libver}.h5"
    variant.make(path, libver)
    return path


def variant_cases(*, native: bool | None = True, oracle: bool | None = True, names=None) -> list[tuple[str, str]]:
    """(name, libver) pairs of the selected variants, for parametrize.

    ``native``/``oracle`` filter on the Variant flags (None: don't filter).
    """
    out = []
    for v in VARIANTS.values():
        if names is not None and v.name not in names:
            continue
        if native is not None and v.native != native:
            continue
        if oracle is not None and v.oracle != oracle:
            continue
        out.extend((v.name, libver) for libver in v.libvers)
    return out


# -- damaging a Keras file (all-or-nothing tests) ------------------------------------------


def recompress_and_corrupt(path: Path, shape: tuple[int, ...]) -> None:
    """Rewrites the dataset of ``shape`` in ``path`` as one gzip chunk, then garbles the
    middle of that chunk: its metadata stays valid, decompressing it fails."""
    with h5py.File(path, "r+") as f:
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and obj.shape == shape else None)
        assert len(found) == 1, found
        data, attrs = f[found[0]][...], dict(f[found[0]].attrs)
        del f[found[0]]
        dataset = f.create_dataset(found[0], data=data, chunks=shape, compression="gzip")
        dataset.attrs.update(attrs)
        info = dataset.id.get_chunk_info(0)
        offset, size = info.byte_offset, info.size
    with open(path, "r+b") as raw:
        raw.seek(offset + size // 4)
        raw.write(b"\xff" * (size // 2))


def swap_gamma_and_beta(path: Path) -> None:
    """Rewrites a Keras file of a model with a BatchNormalization layer in place: its first two
    values (gamma and beta, the same shape) change places, in the layer's ``weight_names`` (a
    legacy file; the layer's group named "bn") or as the layer's ``vars/0`` and ``vars/1``
    (``.weights.h5``): the same size, another layout."""
    with h5py.File(path, "r+") as f:
        legacy = "layer_names" in f.attrs or "model_weights" in f
        if legacy:
            group = f["model_weights"] if "model_weights" in f else f
            names = list(group["bn"].attrs["weight_names"])
            names[0], names[1] = names[1], names[0]
            group["bn"].attrs["weight_names"] = names
        else:
            found: list[str] = []
            f.visit(found.append)
            group = f[next(name for name in found if name.endswith("normalization/vars"))]
            group.move("0", "moved")
            group.move("1", "0")
            group.move("moved", "1")
