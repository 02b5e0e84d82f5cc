"""Datasets, compared with h5py: metadata, values, read(), read(out=), view(), np.asarray."""

from __future__ import annotations

import h5py
import ml_dtypes
import numpy as np
import pytest
import weightio

import oracle
from fixtures import LIBVERS, variant_cases
from oracle import dataset_names, is_null

NATIVE_CASES = variant_cases(native=True, oracle=True)
DATASET_VARIANTS = [
    "datasets_dtypes",
    "datasets_shapes",
    "datasets_compact",
    "datasets_chunked",
    "datasets_many_chunks",
    "datasets_filters",
    "datasets_fill",
]
DATASET_CASES = variant_cases(names=DATASET_VARIANTS)


def _strpad(hds):
    return hds.id.get_type().get_strpad() if hds.dtype.kind == "S" else None


def view_expectation(hds) -> str:
    """What ``view()`` must do for this dataset: "view", "refuse", "either" or "skip".

    The contract: contiguous, allocated, unfiltered data can be viewed (a
    non-native byte order gives a view with that byte order, values intact);
    anything else raises UnsupportedFeatureError.  Cases the
    contract leaves open are "either" (a correct view or a refusal) or, when
    not even the values are settled (0-size data, strings whose padding
    h5py converts), "skip".
    """
    if is_null(hds) or hds.size == 0:
        return "skip"
    if hds.dtype.kind == "S" and _strpad(hds) != h5py.h5t.STR_NULLPAD:
        return "skip"
    if hds.dtype.hasobject or hds.dtype.names is not None:
        return "refuse"
    layout = hds.id.get_create_plist().get_layout()
    if layout == h5py.h5d.COMPACT:
        # The bytes sit unfiltered in the object header, so a view is
        # possible; the contract says "contiguous" and does not settle it.
        return "either"
    allocated = hds.id.get_offset() is not None
    return "view" if layout == h5py.h5d.CONTIGUOUS and allocated else "refuse"


@pytest.mark.parametrize("name,libver", DATASET_CASES)
def test_dataset_metadata_and_values_match_h5py(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        oracle.assert_same_dataset(f[ds], h[ds], weightio)


@pytest.mark.parametrize("name,libver", NATIVE_CASES)
def test_read_returns_a_new_writeable_array(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        if is_null(h[ds]):
            continue
        first = f[ds].read()
        oracle.assert_same_value(first, h[ds][...], f"{ds}.read()", weightio)
        assert first.flags.writeable, ds
        assert not np.shares_memory(first, f[ds].read()), ds


@pytest.mark.parametrize("name,libver", NATIVE_CASES)
def test_np_asarray_matches_h5py(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        if not is_null(h[ds]):
            oracle.assert_same_value(np.asarray(f[ds]), np.asarray(h[ds]), f"np.asarray({ds})", weightio)


@pytest.mark.parametrize("name,libver", DATASET_CASES)
def test_read_into_preallocated_array_of_same_dtype(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        if is_null(h[ds]):
            continue
        out = np.empty(h[ds].shape, h[ds].dtype)
        out.reshape(-1).view(np.uint8)[:] = 0x5A  # garbage that a no-op read would leave behind
        f[ds].read(out=out)
        oracle.assert_same_value(out, h[ds][...], f"{ds}.read(out=)", weightio)


@pytest.mark.parametrize("target", ["<f8", "<f4", "<f2", "<i8"])
@pytest.mark.parametrize("name,libver", variant_cases(names=["datasets_dtypes", "datasets_chunked", "datasets_filters"]))
def test_read_into_preallocated_array_converts_dtype(variant_path, wfile, h5file, name, libver, target):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        values = h[ds][...]
        if values.dtype.kind not in "iuf" or values.size == 0:
            continue
        if np.dtype(target).kind == "i":
            # Out-of-range values (libhdf5 saturates, numpy wraps) and
            # float->int are not part of the contract.
            info = np.iinfo(target)
            if values.dtype.kind == "f" or values.min() < info.min or values.max() > info.max:
                continue
        out = np.empty(values.shape, target)
        f[ds].read(out=out)
        expected = oracle.reference_cast(values, target)
        if expected.dtype.kind == "f":
            oracle.assert_same_floats(out, expected, f"{ds}.read(out={target})")
        else:
            oracle.assert_same_value(out, expected, f"{ds}.read(out={target})", weightio)


@pytest.mark.parametrize("name,libver", NATIVE_CASES)
def test_view_is_zero_copy_where_allowed_and_refused_elsewhere(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for ds in dataset_names(h):
        expectation = view_expectation(h[ds])
        if expectation == "either":
            try:
                f[ds].view()
            except weightio.UnsupportedFeatureError:
                continue
            expectation = "view"
        if expectation == "view":
            view = f[ds].view()
            oracle.assert_same_value(view, h[ds][...], f"{ds}.view()", weightio)
            assert not view.flags.writeable, f"{ds}: view must be read-only"
            assert np.shares_memory(view, f[ds].view()), f"{ds}: two views should share the file mapping"
        elif expectation == "refuse":
            try:
                f[ds].view()
            except weightio.UnsupportedFeatureError:
                continue
            raise AssertionError(f"{ds}: view() should raise UnsupportedFeatureError ({h[ds].dtype}, not viewable)")


@pytest.mark.parametrize("libver", LIBVERS)
def test_view_refuses_chunked_and_unallocated_data(variant_path, wfile, libver):
    for variant, ds in [
        ("datasets_chunked", "fixed_array"),
        ("datasets_chunked", "single"),
        ("datasets_fill", "contiguous_never_written_fill"),
    ]:
        with pytest.raises(weightio.UnsupportedFeatureError):
            wfile(variant_path(variant, libver))[ds].view()


@pytest.mark.parametrize("libver", LIBVERS)
def test_view_of_big_endian_data_keeps_its_byte_order(variant_path, wfile, h5file, libver):
    path = variant_path("datasets_dtypes", libver)
    view = wfile(path)["f4_be"].view()
    assert view.dtype == np.dtype(">f4") and not view.flags.writeable
    np.testing.assert_array_equal(view, h5file(path)["f4_be"][()])


def test_view_of_a_big_contiguous_dataset(variant_path, wfile, h5file):
    path = variant_path("datasets_big", "latest")
    view = wfile(path)["big"].view()
    assert view.shape == (1024, 2048) and view.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(view[100:110, -5:], h5file(path)["big"][100:110, -5:])


@pytest.mark.parametrize("libver", LIBVERS)
def test_unallocated_storage_reads_as_fill_value(variant_path, wfile, libver):
    f = wfile(variant_path("datasets_fill", libver))
    partial = f["partial_fill"][()]
    assert (partial[4:8, 3:6] == 1.5).all()
    assert partial[0, 0] == -2.5 and partial[-1, -1] == -2.5
    assert (f["partial_no_fill"][4:, :] == 0).all()
    assert (f["contiguous_never_written_fill"][()] == 3.25).all()
    assert (f["btree_v2_never_written"][()] == 200).all()
    assert f["partial_fill_i2_be"].fillvalue == -300 and f["partial_fill_i2_be"].dtype == np.dtype(">i2")
    assert list(f["partial_fill_S4"][()]) == [b"abcd", b"xy", b"xy", b"xy", b"xy"]
    sparse = wfile(variant_path("datasets_many_chunks", libver))["sparse_extensible"][()]
    assert (sparse[::7] == np.arange(0, 2000, 7)).all() and sparse[1] == -1


@pytest.mark.parametrize("libver", LIBVERS)
def test_scalar_empty_and_null_datasets(variant_path, wfile, libver):
    f = wfile(variant_path("datasets_shapes", libver))
    scalar = f["scalar_f8"]
    assert scalar.shape == () and scalar.ndim == 0 and scalar.size == 1
    assert type(scalar[()]) is np.float64 and scalar[()] == 3.25
    assert f["empty_2d"].shape == (3, 0) and f["empty_2d"][()].shape == (3, 0)
    null = f["null_f4"]
    assert null.shape is None
    value = null[()]
    assert isinstance(value, weightio.Empty) and value.dtype == np.dtype("<f4")


@pytest.mark.parametrize("libver", LIBVERS)
def test_opaque_and_string_dtypes(variant_path, wfile, libver):
    f = wfile(variant_path("datasets_dtypes", libver))
    assert f["opaque_V2"].dtype == np.dtype("V2")
    assert f["opaque_V2"][()].tobytes() == bytes(range(40))
    assert f["S10"].dtype == np.dtype("S10")
    assert list(f["S10"][()]) == [b"", b"a", b"0123456789", b"dense_1", b"a\0b"]
    assert f["bool"].dtype == np.bool_


@pytest.mark.parametrize("libver", LIBVERS)
def test_bfloat16_weights_stored_as_opaque(variant_path, wfile, h5file, libver):
    path = variant_path("keras3_weights", libver)
    ds = wfile(path)["layers/embedding/vars/0"]
    assert ds.dtype == np.dtype("V2")  # h5py has no bfloat16: it reports 2-byte opaque
    assert ds.attrs["dtype"] == "bfloat16"
    values = ds.read().view(ml_dtypes.bfloat16)
    expected = h5file(path)["layers/embedding/vars/0"][()].view(ml_dtypes.bfloat16)
    assert values.shape == (16, 4)
    np.testing.assert_array_equal(values.astype(np.float32), expected.astype(np.float32))


@pytest.mark.parametrize("libver", LIBVERS)
def test_filter_properties(variant_path, wfile, libver):
    f = wfile(variant_path("datasets_filters", libver))

    def props(ds):
        return ds.compression, ds.compression_opts, ds.shuffle, ds.fletcher32

    assert props(f["gzip1"]) == ("gzip", 1, False, False)
    assert props(f["gzip9"]) == ("gzip", 9, False, False)
    assert props(f["shuffle"]) == (None, None, True, False)
    assert props(f["fletcher32"]) == (None, None, False, True)
    assert props(f["shuffle_gzip_fletcher32"]) == ("gzip", 6, True, True)
    assert f["gzip1"].chunks == (16, 8)
    contiguous = wfile(variant_path("datasets_dtypes", libver))["f4_le"]
    assert (contiguous.chunks, contiguous.compression, contiguous.maxshape) == (None, None, (20,))


@pytest.mark.parametrize("libver", LIBVERS)
def test_chunk_stored_unfiltered_by_filter_mask(variant_path, wfile, libver):
    ds = wfile(variant_path("datasets_filters", libver))["gzip_chunk_skipped"]
    np.testing.assert_array_equal(ds[()], [0, 1, 2, 3, 100, 101, 102, 103])


@pytest.mark.parametrize("libver", LIBVERS)
def test_maxshape_reports_unlimited_as_none(variant_path, wfile, libver):
    f = wfile(variant_path("datasets_chunked", libver))
    assert f["extensible_array"].maxshape == (None, 7)
    assert f["btree_v2"].maxshape == (None, None)
    assert f["fixed_array"].maxshape == (10, 7)
    assert f["resized"].shape == (10, 7)


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_out_rejects_a_wrong_shape(variant_path, wfile, libver):
    ds = wfile(variant_path("datasets_shapes", libver))["d2"]  # (5, 6) float32
    for shape in ((6, 5), (5, 7), (30,), (1, 5, 6)):
        with pytest.raises((ValueError, TypeError)):
            ds.read(out=np.empty(shape, "<f4"))


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_out_into_non_c_contiguous_array_raises_or_fills_it(variant_path, wfile, h5file, libver):
    """The contract asks for C-contiguous arrays; other arrays may be refused,
    but if accepted they must be filled correctly."""
    path = variant_path("datasets_shapes", libver)
    ds, expected = wfile(path)["d2"], h5file(path)["d2"][()]
    for out in (np.zeros((5, 12), "<f4")[:, ::2], np.asfortranarray(np.zeros((5, 6), "<f4"))):
        try:
            ds.read(out=out)
        except (ValueError, TypeError):
            continue
        np.testing.assert_array_equal(out, expected)
