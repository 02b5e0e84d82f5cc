"""Property-based tests: random trees, dtypes, shapes, layouts and filters are
written with h5py, read with weightio and compared with the oracle."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import weightio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oracle

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NUMERIC_DTYPES = [np.dtype(order + code) for code in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8") for order in "<>"]
DTYPES = NUMERIC_DTYPES + [np.dtype(bool)]

# Any character but "/" (the path separator) and NUL (HDF5 names are C
# strings); surrogates cannot be encoded.  "." and ".." are not valid names.
_name_chars = st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",))
names = st.text(_name_chars, min_size=1, max_size=10).filter(lambda s: s not in (".", ".."))


# --------------------------------------------------------------------------
# Specs: plain descriptions of what to write, so failures print readably
# --------------------------------------------------------------------------


@dataclass
class DatasetSpec:
    data: np.ndarray
    layout: str  # "contiguous" | "compact" | "chunked"
    chunks: tuple[int, ...] | None = None
    maxshape: tuple[int | None, ...] | None = None
    gzip: int | None = None
    shuffle: bool = False
    fletcher32: bool = False
    fillvalue: object = None
    written_rows: int | None = None  # chunked only: write data[:written_rows], leave the rest unallocated
    attrs: dict = field(default_factory=dict)


@dataclass
class GroupSpec:
    children: dict
    track_order: bool
    attrs: dict = field(default_factory=dict)


def attribute_values():
    numeric = st.sampled_from(NUMERIC_DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5))
    )
    return st.one_of(
        numeric.map(lambda a: a[()] if a.ndim == 0 else a),  # numpy scalars and arrays
        st.text(_name_chars, max_size=20),  # vlen UTF-8 str
        st.lists(st.binary(min_size=1, max_size=8).filter(lambda b: not b.endswith(b"\0")), min_size=1, max_size=5).map(np.array),
        st.sampled_from(NUMERIC_DTYPES).map(h5py.Empty),
        st.booleans().map(np.bool_),
    )


attribute_dicts = st.dictionaries(names, attribute_values(), max_size=10)


@st.composite
def dataset_specs(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7))
    data = draw(hnp.arrays(dtype, shape))
    layouts = ["contiguous"]
    if data.nbytes < 30_000:
        layouts.append("compact")
    if shape:
        layouts.append("chunked")
    spec = DatasetSpec(data=data, layout=draw(st.sampled_from(layouts)), attrs=draw(attribute_dicts))
    if spec.layout != "chunked":
        return spec
    maxshape, chunks = [], []
    for side in shape:
        # A zero-length dimension can only be chunked if it is unlimited.
        unlimited = side == 0 or draw(st.booleans())
        maxshape.append(None if unlimited else side)
        chunks.append(draw(st.integers(1, max(side, 1) + (3 if unlimited else 0))))
    spec.maxshape, spec.chunks = tuple(maxshape), tuple(chunks)
    spec.gzip = draw(st.none() | st.integers(0, 9))
    spec.shuffle = draw(st.booleans())
    spec.fletcher32 = draw(st.booleans())
    if draw(st.booleans()):
        spec.fillvalue = draw(hnp.from_dtype(dtype))
    if data.size and draw(st.booleans()):
        spec.written_rows = draw(st.integers(0, shape[0]))
    return spec


def group_specs(max_depth: int = 3):
    def group(depth):
        child = dataset_specs() if depth >= max_depth else st.one_of(dataset_specs(), group(depth + 1))
        return st.builds(
            GroupSpec,
            children=st.dictionaries(names, child, max_size=12 if depth == 0 else 5),
            track_order=st.booleans(),
            attrs=attribute_dicts,
        )

    return group(0)


# --------------------------------------------------------------------------
# Writing specs with h5py
# --------------------------------------------------------------------------


def _write_attrs(obj, attrs: dict) -> None:
    for name, value in attrs.items():
        obj.attrs[name] = value


def _write_dataset(parent, name: str, spec: DatasetSpec) -> None:
    if spec.layout == "compact":
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple(spec.data.shape) if spec.data.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
        dsid = h5py.h5d.create(parent.id, name.encode(), h5py.h5t.py_create(spec.data.dtype, logical=True), space, dcpl=dcpl)
        if spec.data.size:
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(spec.data))
        ds = parent[name]
    elif spec.layout == "contiguous":
        ds = parent.create_dataset(name, data=spec.data, track_times=False)
    else:
        ds = parent.create_dataset(
            name,
            shape=spec.data.shape,
            dtype=spec.data.dtype,
            chunks=spec.chunks,
            maxshape=spec.maxshape,
            compression="gzip" if spec.gzip is not None else None,
            compression_opts=spec.gzip,
            shuffle=spec.shuffle,
            fletcher32=spec.fletcher32,
            fillvalue=spec.fillvalue,
            track_times=False,
        )
        rows = spec.data.shape[0] if spec.written_rows is None else spec.written_rows
        if rows and spec.data.size:
            ds[:rows] = spec.data[:rows]
    _write_attrs(ds, spec.attrs)


def _write_group(group, spec: GroupSpec) -> None:
    _write_attrs(group, spec.attrs)
    for name, child in spec.children.items():
        if isinstance(child, GroupSpec):
            _write_group(group.create_group(name, track_order=child.track_order), child)
        else:
            _write_dataset(group, name, child)


def _compare(path: Path) -> None:
    with weightio.File(path, fallback=False) as wf, h5py.File(path, "r") as hf:
        oracle.assert_same_tree(wf, hf)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@SETTINGS
@given(tree=group_specs(), libver=st.sampled_from(["earliest", "latest"]))
def test_random_trees_read_like_h5py(tree, libver):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random_tree.h5"
        with h5py.File(path, "w", libver=libver, track_order=tree.track_order) as f:
            _write_group(f, tree)
        _compare(path)


@SETTINGS
@given(spec=dataset_specs(), libver=st.sampled_from(["earliest", "latest"]))
def test_random_datasets_read_like_h5py(spec, libver):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random_dataset.h5"
        with h5py.File(path, "w", libver=libver) as f:
            _write_dataset(f, "ds", spec)
        _compare(path)


@st.composite
def many_links(draw):
    """Enough links for dense storage (and multi-node symbol tables)."""
    link_names = draw(st.lists(names, min_size=0, max_size=60, unique=True))
    return link_names, draw(st.booleans())


@settings(max_examples=30, deadline=None)
@given(spec=many_links(), libver=st.sampled_from(["earliest", "latest"]))
def test_random_link_names_and_counts_keep_h5py_order(spec, libver):
    link_names, track_order = spec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "links.h5"
        with h5py.File(path, "w", libver=libver) as f:
            g = f.create_group("g", track_order=track_order)
            for i, name in enumerate(link_names):
                if i % 3:
                    g.create_group(name)
                else:
                    g[name] = h5py.SoftLink("/g")
                g.attrs[name] = np.int64(i)
        _compare(path)


FLOAT_TARGETS = [np.dtype("<f2"), np.dtype("<f4"), np.dtype("<f8"), np.dtype(ml_dtypes.bfloat16)]


@settings(max_examples=40, deadline=None)
@given(
    data=st.sampled_from([np.dtype(d) for d in ("<f2", ">f2", "<f4", ">f4", "<f8", ">f8")]).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=2, max_side=20))
    ),
    target=st.sampled_from(FLOAT_TARGETS),
    chunked=st.booleans(),
)
def test_read_many_float_conversions_match_reference(data, target, chunked):
    """f2/f4/f8 in either byte order to f2/f4/f8/bfloat16: what numpy's astype
    (ml_dtypes for bfloat16) gives, NaN for NaN, same sign of zero."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floats.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=data, chunks=True if chunked else None, track_times=False)
        with h5py.File(path, "r") as hf:
            expected = oracle.reference_cast(hf["x"][()], target)
        with weightio.File(path, fallback=False) as wf:
            (result,) = wf.read_many(["x"], dtypes=target)
    oracle.assert_same_floats(result, expected, f"{data.dtype} -> {target}")
