"""Basic slicing (ints, negative indices, slices with steps, Ellipsis) gives h5py's results."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import weightio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from fixtures import LIBVERS

E = Ellipsis
SELECTIONS_2D = [
    (),
    E,
    0,
    -1,
    5,
    slice(2, 5),
    slice(None, None, 2),
    slice(-10, None),
    slice(3, 3),  # empty
    slice(5000, 6000),  # past the end: empty, like numpy
    (1, slice(None)),
    (slice(None), 7),
    (E, 3),
    (2, E),
    (-3, slice(-5, -1)),
    (slice(1, None, 3), slice(5, None, 7)),
    (slice(100, 200, 9), slice(None, 50, 4)),
    (7, -9),
    (-1, -1),
    (slice(None), slice(2000, None, 3)),
]

# (variant, dataset) pairs covering every storage kind; all are 2-D.
SLICED_DATASETS = [
    ("datasets_big", "big"),  # 8 MB contiguous
    ("datasets_big", "big_chunked"),  # gzip, 64x100 chunks with edges
    ("datasets_chunked", "fixed_array"),
    ("datasets_chunked", "implicit"),
    ("datasets_chunked", "btree_v2"),
    ("datasets_chunked", "unit_chunks"),
    ("datasets_compact", "f8_be_2d"),
    ("datasets_filters", "shuffle_gzip_fletcher32"),
    ("datasets_fill", "partial_fill"),
    ("datasets_shapes", "empty_2d"),
]


def _assert_same_selection(w, h, selection):
    try:
        expected = h[selection]
    except (IndexError, ValueError) as exc:  # e.g. an int past the end of a small dataset
        with pytest.raises(type(exc)):
            w[selection]
        return
    oracle.assert_same_value(w[selection], expected, f"{h.name}[{selection!r}]", weightio)


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("variant,dataset", SLICED_DATASETS)
def test_basic_slicing_matches_h5py(variant_path, wfile, h5file, libver, variant, dataset):
    path = variant_path(variant, libver)
    w, h = wfile(path)[dataset], h5file(path)[dataset]
    for selection in SELECTIONS_2D:
        _assert_same_selection(w, h, selection)


@pytest.mark.parametrize("libver", LIBVERS)
def test_slicing_3d_and_4d(variant_path, wfile, h5file, libver):
    cases = [
        ("datasets_chunked", "fixed_array_3d", [(1, slice(None), slice(3, 7)), (E, -1), (slice(None, None, 2), 1, E), (-1, -2, -3)]),
        ("datasets_chunked", "extensible_array_3d", [(slice(1, 4), slice(None, None, 3)), (0, E, 0)]),
        ("datasets_shapes", "d4", [(1, 0), (E, 1), (slice(None), 0, slice(None, None, 2), -1)]),
    ]
    for variant, dataset, selections in cases:
        path = variant_path(variant, libver)
        w, h = wfile(path)[dataset], h5file(path)[dataset]
        for selection in selections:
            _assert_same_selection(w, h, selection)


@pytest.mark.parametrize("libver", LIBVERS)
def test_scalar_dataset_selections(variant_path, wfile, h5file, libver):
    path = variant_path("datasets_shapes", libver)
    for dataset in ("scalar_f8", "scalar_i2_be", "scalar_bool", "scalar_S5"):
        w, h = wfile(path)[dataset], h5file(path)[dataset]
        _assert_same_selection(w, h, ())  # numpy scalar
        _assert_same_selection(w, h, E)  # 0-d array


@pytest.mark.parametrize("libver", LIBVERS)
def test_1d_selections(variant_path, wfile, h5file, libver):
    path = variant_path("datasets_many_chunks", libver)
    w, h = wfile(path)["extensible_array"], h5file(path)["extensible_array"]
    for selection in (0, -1, 1999, slice(None, None, 7), slice(-5, None), slice(1, 1990, 13), slice(0, 0)):
        _assert_same_selection(w, h, selection)


@pytest.mark.parametrize("libver", LIBVERS)
def test_out_of_range_index_raises_index_error(variant_path, wfile, libver):
    w = wfile(variant_path("datasets_shapes", libver))["d2"]  # (5, 6)
    for selection in (5, -6, (0, 6), (0, -7)):
        with pytest.raises(IndexError):
            w[selection]


@pytest.mark.parametrize("libver", LIBVERS)
def test_too_many_indices_raise(variant_path, wfile, libver):
    w = wfile(variant_path("datasets_shapes", libver))["d2"]
    with pytest.raises((IndexError, ValueError)):
        w[0, 0, 0]
    with pytest.raises((IndexError, ValueError)):
        w[::0]


# --------------------------------------------------------------------------
# Random selections (hypothesis) over one chunked and one contiguous dataset
# --------------------------------------------------------------------------

_SHAPE = (13, 1, 17)


@pytest.fixture(scope="module")
def random_slicing_file():
    rng = np.random.default_rng(42)
    data = rng.standard_normal(_SHAPE).astype("<f4")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slices.h5"
        with h5py.File(path, "w", libver="latest") as f:
            f.create_dataset("contiguous", data=data, track_times=False)
            f.create_dataset("chunked", data=data, chunks=(4, 1, 5), compression="gzip", track_times=False)
        yield path


def _index(size: int):
    return st.integers(-size, size - 1)


def _slice(size: int):
    bound = st.none() | st.integers(-size - 3, size + 3)
    return st.builds(slice, bound, bound, st.none() | st.integers(1, size + 2))


@st.composite
def basic_selections(draw):
    parts = [draw(_index(n) | _slice(n)) for n in _SHAPE]
    if draw(st.booleans()):  # replace a run of trailing (or leading) axes by Ellipsis
        cut = draw(st.integers(0, len(parts)))
        parts = parts[:cut] + [E] if draw(st.booleans()) else [E] + parts[cut:]
    return tuple(parts)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selection=basic_selections(), dataset=st.sampled_from(["contiguous", "chunked"]))
def test_random_basic_selections_match_h5py(random_slicing_file, selection, dataset):
    with weightio.File(random_slicing_file, fallback=False) as wf, h5py.File(random_slicing_file, "r") as hf:
        _assert_same_selection(wf[dataset], hf[dataset], selection)
