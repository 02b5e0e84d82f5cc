"""File.read_many (batched, optionally converting, optionally threaded) and weightio.load_file."""

from __future__ import annotations

import os

import h5py
import ml_dtypes
import numpy as np
import pytest
import weightio

import oracle
from fixtures import LIBVERS, variant_cases
from oracle import dataset_names, is_null

READ_MANY_CASES = variant_cases(
    names=["datasets_dtypes", "datasets_chunked", "datasets_filters", "datasets_fill", "datasets_compact", "keras2_weights", "keras3_weights"]
)
KERAS_WEIGHTS = [
    "conv2d/conv2d/kernel:0",
    "conv2d/conv2d/bias:0",
    "dense/dense/kernel:0",
    "dense/dense/bias:0",
    "batch_normalization/batch_normalization/gamma:0",
    "dense_1/dense_1/kernel:0",
]


def _readable_datasets(hfile) -> list[str]:
    return [name for name in dataset_names(hfile) if not is_null(hfile[name])]


def assert_same_array(array, hds, where: str) -> None:
    """``array`` equals h5py's full read of ``hds``.

    One liberty: Keras 3 marks bfloat16 weights (stored as 2-byte opaque
    data) with attr dtype="bfloat16", and a loader may hand them back as
    ml_dtypes.bfloat16 instead of h5py's V2 -- with the very same bytes.
    """
    expected = hds[...]
    if array.dtype == np.dtype(ml_dtypes.bfloat16) and expected.dtype == np.dtype("V2") and hds.attrs.get("dtype") == "bfloat16":
        expected = expected.view(ml_dtypes.bfloat16)
    oracle.assert_same_value(array, expected, where, weightio)


@pytest.mark.parametrize("name,libver", READ_MANY_CASES)
def test_read_many_without_dtypes_matches_h5py(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    names = _readable_datasets(h)
    arrays = f.read_many(names)
    assert isinstance(arrays, list) and len(arrays) == len(names)
    for ds, array in zip(names, arrays):
        assert_same_array(array, h[ds], f"read_many {ds}")


@pytest.mark.parametrize("threads", [None, 1, 2, 8])
def test_read_many_gives_the_same_result_with_any_thread_count(variant_path, wfile, h5file, threads):
    path = variant_path("datasets_filters", "latest")
    f, h = wfile(path), h5file(path)
    names = _readable_datasets(h) * 3  # more work items than threads
    for ds, array in zip(names, f.read_many(names, threads=threads)):
        assert_same_array(array, h[ds], f"read_many {ds} threads={threads}")


def test_read_many_returns_independent_arrays_for_repeated_paths(variant_path, wfile):
    f = wfile(variant_path("keras2_weights", "latest"))
    a, b = f.read_many(["dense/dense/bias:0", "/dense/dense/bias:0"])
    np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(a, b)
    assert a.flags.writeable


def test_read_many_of_nothing_is_an_empty_list(variant_path, wfile):
    assert wfile(variant_path("keras2_weights", "latest")).read_many([]) == []


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("dtype", ["<f2", "<f8", "<f4"])
def test_read_many_converts_all_to_one_dtype(variant_path, wfile, h5file, libver, dtype):
    path = variant_path("keras2_weights", libver)
    f, h = wfile(path), h5file(path)
    for ds, array in zip(KERAS_WEIGHTS, f.read_many(KERAS_WEIGHTS, dtypes=dtype)):
        oracle.assert_same_floats(array, oracle.reference_cast(h[ds][...], dtype), f"{ds} as {dtype}")


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_many_converts_float32_to_bfloat16(variant_path, wfile, h5file, libver):
    path = variant_path("keras2_weights", libver)
    f, h = wfile(path), h5file(path)
    arrays = f.read_many(KERAS_WEIGHTS, dtypes=ml_dtypes.bfloat16)
    for ds, array in zip(KERAS_WEIGHTS, arrays):
        assert array.dtype == np.dtype(ml_dtypes.bfloat16), ds
        # ml_dtypes rounds to nearest even; weightio must agree bit for bit.
        assert array.tobytes() == oracle.reference_cast(h[ds][...], ml_dtypes.bfloat16).tobytes(), ds


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_many_with_a_list_of_dtypes(variant_path, wfile, h5file, libver):
    path = variant_path("keras2_weights", libver)
    f, h = wfile(path), h5file(path)
    dtypes = ["<f2", np.float64, np.dtype("<f4"), ml_dtypes.bfloat16, ">f4", "f8"]
    arrays = f.read_many(KERAS_WEIGHTS, dtypes=dtypes)
    for ds, dtype, array in zip(KERAS_WEIGHTS, dtypes, arrays):
        oracle.assert_same_floats(array, oracle.reference_cast(h[ds][...], dtype), f"{ds} as {dtype}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow to inf is expected here
@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize(
    "source,target",
    [
        ("f4_le", "<f2"),
        ("f4_be", "<f2"),
        ("f8_le", "<f4"),
        ("f8_be", "<f4"),
        ("f8_le", "<f2"),
        ("f2_be", "<f4"),
        ("f4_le", "<f8"),
        ("f4_le", ml_dtypes.bfloat16),
        ("f4_be", ml_dtypes.bfloat16),
        ("f2_le", ml_dtypes.bfloat16),
    ],
    ids=lambda v: v if isinstance(v, str) else np.dtype(v).name,
)
def test_float_conversions_of_special_values(variant_path, wfile, h5file, libver, source, target):
    """NaN, +-inf, +-0, subnormals and values that overflow the target."""
    path = variant_path("datasets_dtypes", libver)
    (array,) = wfile(path).read_many([source], dtypes=target)
    expected = oracle.reference_cast(h5file(path)[source][...], target)
    oracle.assert_same_floats(array, expected, f"{source} -> {np.dtype(target)}")


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize(
    "source,target",
    [("i1_le", "<i8"), ("i2_be", "<i4"), ("u1_le", "<i2"), ("u2_be", "<u4"), ("i4_le", "<f8"), ("u1_le", "<f4"), ("i8_be", "<i8"), ("u4_le", "<i8")],
)
def test_integer_conversions_match_h5py(variant_path, wfile, h5file, libver, source, target):
    """Widening and int->float conversions, where every value fits the target."""
    path = variant_path("datasets_dtypes", libver)
    (array,) = wfile(path).read_many([source], dtypes=target)
    expected = oracle.reference_cast(h5file(path)[source][...], target)
    oracle.assert_same_value(array, expected, f"{source} -> {target}", weightio)


def test_read_many_accepts_absolute_and_relative_paths(variant_path, wfile):
    f = wfile(variant_path("keras3_weights", "latest"))
    a, b = f.read_many(["/layers/dense/vars/0", "layers/dense/vars/0"])
    np.testing.assert_array_equal(a, b)


def test_read_many_through_a_soft_link(variant_path, wfile, h5file):
    path = variant_path("links", "latest")
    (array,) = wfile(path).read_many(["soft_abs"])
    oracle.assert_same_value(array, h5file(path)["data/x"][...], "soft_abs", weightio)


def test_read_many_missing_path_raises_key_error(variant_path, wfile):
    f = wfile(variant_path("keras2_weights", "latest"))
    with pytest.raises(KeyError):
        f.read_many(["dense/dense/bias:0", "dense/dense/nope:0"])


def test_read_many_rejects_a_dtype_list_of_the_wrong_length(variant_path, wfile):
    f = wfile(variant_path("keras2_weights", "latest"))
    with pytest.raises((ValueError, TypeError)):
        f.read_many(KERAS_WEIGHTS[:2], dtypes=["<f4"])


# --------------------------------------------------------------------------
# load_file
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name,libver", variant_cases(native=True, oracle=True))
def test_load_file_returns_every_dataset_by_absolute_name(variant_path, h5file, name, libver):
    path = variant_path(name, libver)
    h = h5file(path)
    loaded = weightio.load_file(path)
    assert isinstance(loaded, dict)
    # h5py's visititems reaches each object once (hard links) and skips soft
    # and external links: the same set of names.  What load_file gives for
    # a null-dataspace dataset is not specified, so those are left out.
    expected = [ds for ds in dataset_names(h) if not is_null(h[ds])]
    nulls = {ds for ds in dataset_names(h) if is_null(h[ds])}
    assert set(loaded) - nulls == set(expected)
    for ds in expected:
        assert_same_array(loaded[ds], h[ds], f"load_file {ds}")


def test_load_file_accepts_str_and_path(variant_path):
    path = variant_path("keras3_weights", "latest")
    assert set(weightio.load_file(str(path))) == set(weightio.load_file(path))
    assert "/layers/dense/vars/0" in weightio.load_file(path)


def test_load_file_of_a_keras2_weights_file(variant_path):
    path = variant_path("keras2_weights", "earliest")
    loaded = weightio.load_file(path)
    assert loaded["/dense/dense/kernel:0"].shape == (8, 5)
    assert loaded["/dense/dense/kernel:0"].dtype == np.float32
    with h5py.File(path) as h:
        np.testing.assert_array_equal(loaded["/dense/dense/kernel:0"], h["dense/dense/kernel:0"][()])


# -- out=: reading into the caller's arrays ------------------------------------------------


@pytest.mark.parametrize("name,libver", READ_MANY_CASES)
def test_read_many_into_given_arrays_matches_h5py(variant_path, wfile, h5file, name, libver):
    """Every layout (contiguous, compact, chunked, filtered, never written) read into the
    caller's arrays, every other one left to read_many (None)."""
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    names = [n for n in _readable_datasets(h) if h[n].dtype.kind in "fiub"]
    assert names
    outs = [np.full(h[n].shape, 77, h[n].dtype) if k % 2 == 0 else None for k, n in enumerate(names)]
    arrays = f.read_many(names, out=outs)
    for k, (ds, array) in enumerate(zip(names, arrays)):
        if outs[k] is not None:
            assert array is outs[k]
        assert_same_array(array, h[ds], f"read_many into {ds}")


def test_read_many_into_arrays_converts_to_their_dtype_and_ignores_their_shape(variant_path, wfile, h5file):
    path = variant_path("keras2_weights", "latest")
    f, h = wfile(path), h5file(path)
    outs = [np.empty(h[n].size, "<f8") for n in KERAS_WEIGHTS]  # flat, float64
    f.read_many(KERAS_WEIGHTS, dtypes="<f2", out=outs)  # out's dtype wins over dtypes
    for ds, out in zip(KERAS_WEIGHTS, outs):
        oracle.assert_same_floats(out, h[ds][...].astype("<f8").reshape(-1), ds)


def test_read_many_rejects_unusable_outputs_without_writing(variant_path, wfile, h5file):
    path = variant_path("keras2_weights", "latest")
    f, h = wfile(path), h5file(path)
    first, second = KERAS_WEIGHTS[:2]
    good = np.zeros(h[first].shape, "<f4")
    wrong_size = np.zeros(h[second].size + 1, "<f4")
    read_only = np.zeros(h[second].shape, "<f4")
    read_only.flags.writeable = False
    strided = np.zeros((h[second].size, 2), "<f4")[:, 0]
    for bad in (wrong_size, read_only, strided, [0.0] * h[second].size):
        with pytest.raises(ValueError):
            f.read_many([first, second], out=[good, bad])
        assert not good.any()
    with pytest.raises(ValueError):
        f.read_many([first, second], out=[good])


def test_read_many_into_arrays_writes_nothing_when_a_chunk_is_corrupt(tmp_path, wfile):
    """The contiguous dataset is read straight into its output, but only once nothing else
    can fail: a garbled gzip chunk in the same call leaves every output as it was."""
    path = tmp_path / "corrupt.h5"
    with h5py.File(path, "w") as h:
        h.create_dataset("plain", data=np.arange(50_000, dtype="<f4"))
        chunked = h.create_dataset("gz", data=np.arange(4096, dtype="<f4"), chunks=(4096,), compression="gzip")
        info = chunked.id.get_chunk_info(0)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 4)
        raw.write(b"\xff" * (info.size // 2))
    f = wfile(path)
    outs = [np.full(50_000, -1, "<f4"), np.full(4096, -1, "<f4")]
    with pytest.raises(weightio.FormatError):
        f.read_many(["plain", "gz"], out=outs, threads=2)
    assert (outs[0] == -1).all() and (outs[1] == -1).all()
    # the same output alone: read straight in
    (array,) = f.read_many(["plain"], out=[outs[0]])
    assert array is outs[0] and (outs[0] == np.arange(50_000, dtype="<f4")).all()


# Large contiguous blocks (256 KiB and more) are copied with pread() rather than through the
# mapping (MappedFile::copy_out): sizes around that threshold, at unaligned file offsets,
# into new arrays and into given ones, must read exactly what h5py reads.
PREAD_MIN = 256 << 10


def test_large_blocks_around_the_pread_threshold_match_h5py(tmp_path, h5file):
    path = tmp_path / "large.h5"
    rng = np.random.default_rng(11)
    sizes = {"below": PREAD_MIN - 1, "at": PREAD_MIN, "above": PREAD_MIN + 1, "big": 3 * PREAD_MIN + 7}
    with h5py.File(path, "w") as h:
        h["odd"] = np.arange(3, dtype="u1")  # the large blocks start at unaligned offsets
        for name, n in sizes.items():
            h.create_dataset(name, data=rng.integers(0, 256, n, dtype="u1"))
        h["f4"] = rng.standard_normal((257, 300)).astype("<f4")
        h["f4_big_endian"] = rng.standard_normal((257, 300)).astype(">f4")  # converted, not copied
    h = h5file(path)
    names = [*sizes, "f4", "f4_big_endian"]
    with weightio.File(path) as f:
        arrays = f.read_many(names)
        given = [np.empty(h[n].shape, h[n].dtype) for n in names]
        f.read_many(names, out=given)
        single = [f[n][()] for n in names]
    for n, a, g, s in zip(names, arrays, given, single):
        for got in (a, g, s):
            assert_same_array(got, h[n], n)
    for n, a in weightio.load_file(path).items():
        assert_same_array(a, h[n], n)


_TRUNCATE_WHILE_OPEN = r"""
import os, sys
import numpy as np, weightio
path = sys.argv[1]
f = weightio.File(path)
os.truncate(path, 4096)  # the large dataset's bytes are gone; the mapping is still there
try:
    f.read_many(["big"])
except weightio.Error as exc:
    print(type(exc).__name__, exc)
else:
    print("no error")
"""


def test_a_file_truncated_while_open_raises_instead_of_crashing(tmp_path):
    """Reading mapped pages past a file's new end kills the process (SIGBUS); the large
    blocks read with pread() come back short instead, and the read raises."""
    import subprocess
    import sys

    path = tmp_path / "truncated.h5"
    with h5py.File(path, "w") as h:
        h["big"] = np.ones(4 * PREAD_MIN, "u1")
    proc = subprocess.run([sys.executable, "-c", _TRUNCATE_WHILE_OPEN, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "became shorter while being read" in proc.stdout
    assert str(path) in proc.stdout


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps (Linux)")
def test_close_unmaps_the_file_at_once(tmp_path):
    """A File refers to itself, so after close the object waits for the cyclic collector;
    its mapping must not wait with it (every page read through it would stay in memory: a
    loop of loads grew by the file's size each time). Views keep the mapping alive."""
    import gc

    path = tmp_path / "mapped.h5"
    with h5py.File(path, "w") as h:
        h["x"] = np.arange(100_000, dtype="f4")

    def mapped() -> int:
        with open("/proc/self/maps") as maps:
            return sum(str(path) in line for line in maps)

    enabled = gc.isenabled()
    gc.disable()  # the collector must not be what unmaps it
    try:
        with weightio.File(path) as f:
            f.read_many(["x"])
            view = f["x"].view()
            assert mapped() == 1
        assert mapped() == 1  # the view holds it
        assert view[12345] == 12345
        del view
        assert mapped() == 0
        for _ in range(3):
            weightio.load_file(path)
        assert mapped() == 0
    finally:
        if enabled:
            gc.enable()


# -- read_ahead: whole datasets read by threads of their own (weightio.keras's first loads) --


def _read_ahead(f, names, outs, threads):
    return f._core.read_ahead([f[n]._addr for n in names], outs, threads)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("name,libver", READ_MANY_CASES)
def test_read_ahead_matches_h5py(variant_path, wfile, h5file, name, libver, threads):
    """Every layout read into given arrays while the caller goes on; ``finish`` says all were read."""
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    names = [n for n in _readable_datasets(h) if h[n].dtype.kind in "fiub"] * 2
    outs = [np.full(h[n].shape, 77, h[n].dtype) for n in names]
    job = _read_ahead(f, names, outs, threads)
    assert job.finish() == [True] * len(names)
    for ds, out in zip(names, outs):
        assert_same_array(out, h[ds], f"read_ahead {ds}")


def test_read_ahead_leaves_what_it_cannot_read_to_the_caller(tmp_path, wfile):
    """A chunk that cannot be decompressed: that dataset is reported unread, the others read."""
    path = tmp_path / "corrupt.h5"
    with h5py.File(path, "w") as h:
        h.create_dataset("plain", data=np.arange(50_000, dtype="<f4"))
        chunked = h.create_dataset("gz", data=np.arange(4096, dtype="<f4"), chunks=(4096,), compression="gzip")
        h.create_dataset("after", data=np.arange(300, dtype="<i8"))
        info = chunked.id.get_chunk_info(0)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 4)
        raw.write(b"\xff" * (info.size // 2))
    f = wfile(path)
    outs = [np.empty(50_000, "<f4"), np.empty(4096, "<f4"), np.empty(300, "<i8")]
    assert _read_ahead(f, ["plain", "gz", "after"], outs, 2).finish() == [True, False, True]
    assert (outs[0] == np.arange(50_000)).all() and (outs[2] == np.arange(300)).all()


def test_read_ahead_refuses_unusable_outputs(variant_path, wfile, h5file):
    path = variant_path("keras2_weights", "latest")
    f, h = wfile(path), h5file(path)
    name = KERAS_WEIGHTS[0]
    read_only = np.zeros(h[name].shape, "<f4")
    read_only.flags.writeable = False
    strided = np.zeros((h[name].size, 2), "<f4")[:, 0]
    for bad in (np.zeros(h[name].size + 1, "<f4"), read_only, strided, [0.0] * h[name].size):
        with pytest.raises(ValueError):
            _read_ahead(f, [name], [bad], 1)
    with pytest.raises(ValueError):
        _read_ahead(f, [name, name], [np.zeros(h[name].shape, "<f4")], 1)


def test_read_ahead_keeps_its_file_open(tmp_path):
    """The reading outlives ``File.close()`` (the job holds the file); a job dropped
    unfinished stops after the datasets it is reading."""
    path = tmp_path / "big.h5"
    values = [np.random.default_rng(k).standard_normal(300_000).astype("<f4") for k in range(6)]
    with h5py.File(path, "w") as h:
        for k, v in enumerate(values):
            h[f"d{k}"] = v
    names = [f"d{k}" for k in range(6)]
    for _ in range(20):
        f = weightio.File(path)
        outs = [np.empty(300_000, "<f4") for _ in names]
        job = _read_ahead(f, names, outs, 2)
        f.close()
        assert job.finish() == [True] * 6
        for out, v in zip(outs, values):
            np.testing.assert_array_equal(out, v)
        f = weightio.File(path)
        dropped = _read_ahead(f, names, [np.empty(300_000, "<f4") for _ in names], 2)
        f.close()
        del dropped


def test_reading_ahead_only_what_the_file_can_hold(tmp_path):
    """weightio.keras reads ahead into arrays allocated before any dataset is checked: not
    for a file declaring more than twice its size (here a 4 MB dataset never written); the
    load then reads the ordinary way, which checks before it allocates."""
    from weightio.keras.prefetch import Deferred, aligned_arrays, reading_ahead

    path = tmp_path / "declared.h5"
    with h5py.File(path, "w") as h:
        h.create_dataset("written", data=np.arange(100_000, dtype="<f4"))
        h.create_dataset("unwritten", shape=(1_000_000,), dtype="<f4")
    requests: list = []

    def allocate(wanted):
        requests.extend(wanted)
        return aligned_arrays(wanted)

    with weightio.File(path) as f:
        deferred = Deferred(f, 2)
        with reading_ahead([deferred], 2, allocate):
            assert deferred.source.ahead is None
        del deferred.index["/unwritten"]
        with reading_ahead([deferred], 2, allocate):
            assert deferred.source.ahead is not None
            lazy = deferred.index["/written"]
            array = deferred.source.ahead.take(lazy.address, np.dtype("<f4"))
        assert deferred.source.ahead is None
    assert requests == [((100_000,), np.dtype("<f4"))]
    assert (array == np.arange(100_000)).all()
