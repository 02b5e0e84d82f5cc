"""Features weightio does not decode itself: read through h5py with fallback=True,
refused with a precise UnsupportedFeatureError with fallback=False."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import weightio

import oracle
from fixtures import LIBVERS, variant_cases

# Dataset name -> words of which the error message must contain at least one.
UNSUPPORTED = {
    "compound": ("compound",),
    "vlen_str": ("variable-length", "variable length", "vlen"),
    "vlen_str_scalar": ("variable-length", "variable length", "vlen"),
    "vlen_str_chunked": ("variable-length", "variable length", "vlen"),
    "vlen_int": ("variable-length", "variable length", "vlen"),
    "lzf": ("lzf",),
    "szip": ("szip",),
}


def _present(path, names):
    with h5py.File(path) as h:
        return [n for n in names if n in h]


@pytest.mark.parametrize("libver", LIBVERS)
def test_fallback_reads_unsupported_datasets_like_h5py(variant_path, wfile, h5file, libver):
    path = variant_path("fallback_features", libver)
    oracle.assert_same_tree(wfile(path, fallback=True), h5file(path))


def test_fallback_is_on_by_default(variant_path, h5file):
    path = variant_path("fallback_features", "latest")
    with weightio.File(path) as f:
        oracle.assert_same_value(f["compound"][()], h5file(path)["compound"][()], "compound", weightio)


@pytest.mark.parametrize("libver", LIBVERS)
def test_without_fallback_unsupported_datasets_raise_naming_the_feature(variant_path, wfile, libver):
    path = variant_path("fallback_features", libver)
    f = wfile(path, fallback=False)
    # Unsupported datasets must not poison the rest of the file.
    assert set(_present(path, UNSUPPORTED)) <= set(f.keys())
    np.testing.assert_array_equal(f["plain"][()], np.arange(6, dtype="<f4"))
    for name in _present(path, UNSUPPORTED):
        for read in (lambda ds: ds[()], lambda ds: ds.read(), lambda ds: ds[:1] if ds.shape else ds[()]):
            with pytest.raises(weightio.UnsupportedFeatureError) as excinfo:
                read(f[name])
            message = str(excinfo.value).lower()
            assert any(word in message for word in UNSUPPORTED[name]), f"{name}: {excinfo.value}"


@pytest.mark.parametrize("libver", LIBVERS)
def test_unsupported_feature_error_is_a_not_implemented_error(variant_path, wfile, libver):
    f = wfile(variant_path("fallback_features", libver), fallback=False)
    with pytest.raises(NotImplementedError):
        f["lzf"][()]


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_many_uses_the_fallback_only_when_allowed(variant_path, wfile, h5file, libver):
    path = variant_path("fallback_features", libver)
    names = ["plain"] + _present(path, UNSUPPORTED)
    h = h5file(path)
    arrays = wfile(path, fallback=True).read_many(names)
    for name, array in zip(names, arrays):
        oracle.assert_same_value(array, h[name][...], f"read_many {name}", weightio)
    with pytest.raises(weightio.UnsupportedFeatureError):
        wfile(path, fallback=False).read_many(names)


@pytest.mark.parametrize("libver", LIBVERS)
def test_view_is_never_served_by_the_fallback(variant_path, wfile, libver):
    f = wfile(variant_path("fallback_features", libver), fallback=True)
    for name in ("compound", "vlen_str", "lzf"):
        with pytest.raises(weightio.UnsupportedFeatureError):
            f[name].view()


@pytest.mark.parametrize("libver", LIBVERS)
def test_load_file_reads_unsupported_datasets_through_the_fallback(variant_path, h5file, libver):
    path = variant_path("fallback_features", libver)
    h = h5file(path)
    loaded = weightio.load_file(path)
    for name in oracle.dataset_names(h):
        oracle.assert_same_value(loaded[name], h[name][...], f"load_file {name}", weightio)


@pytest.mark.parametrize("libver", LIBVERS)
def test_unknown_filter_is_refused_without_fallback(variant_path, wfile, libver):
    f = wfile(variant_path("unknown_filter", libver), fallback=False)
    np.testing.assert_array_equal(f["plain"][()], np.arange(4))
    with pytest.raises(weightio.UnsupportedFeatureError, match="32001|blosc"):
        f["blosc"][()]


@pytest.mark.parametrize("libver", LIBVERS)
def test_unknown_filter_fails_cleanly_with_fallback(variant_path, wfile, libver):
    """h5py cannot decode it either: any clean error is fine, silently wrong data is not."""
    f = wfile(variant_path("unknown_filter", libver), fallback=True)
    with pytest.raises((weightio.Error, OSError)):
        f["blosc"][()]


@pytest.mark.parametrize("name,libver", variant_cases(native=True, oracle=True, names=["keras2_weights", "datasets_filters", "links"]))
def test_fallback_does_not_change_natively_readable_files(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    oracle.assert_same_tree(wfile(path, fallback=True), h5file(path))


@pytest.mark.parametrize("libver", LIBVERS)
def test_read_many_into_arrays_through_the_fallback(variant_path, wfile, h5file, libver):
    path = variant_path("fallback_features", libver)
    h = h5file(path)
    names = ["plain"] + [n for n in _present(path, ["lzf", "szip"]) if h[n].dtype.kind in "fiu"]
    outs = [np.empty(h[n].shape, h[n].dtype) for n in names]
    arrays = wfile(path, fallback=True).read_many(names, out=outs)
    for name, array, out in zip(names, arrays, outs):
        assert array is out
        oracle.assert_same_value(out, h[name][...], f"read_many into {name}", weightio)
    wrong = [np.zeros(h[n].size + 1, h[n].dtype) for n in names]
    with pytest.raises(ValueError):
        wfile(path, fallback=True).read_many(names, out=wrong)
    assert not any(w.any() for w in wrong)
