"""Attributes, compared with h5py: names, order, Python/numpy types, dtypes, values."""

from __future__ import annotations

import numpy as np
import pytest
import weightio

import oracle
from fixtures import BYTE_ORDERS, FLOAT_CODES, INT_CODES, LIBVERS, variant_cases

ATTR_VARIANTS = ["attrs_numeric", "attrs_strings", "attrs_special", "attrs_many", "attrs_big", "attrs_track_order"]
ATTR_CASES = variant_cases(names=ATTR_VARIANTS)
KERAS_CASES = variant_cases(names=["keras2_weights", "keras2_model", "keras3_weights"])


def _objects_with_attrs(hfile) -> list[str]:
    names = ["/"]
    hfile.visit(names.append)
    return names


@pytest.mark.parametrize("name,libver", ATTR_CASES + KERAS_CASES)
def test_attributes_of_every_object_match_h5py(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    for obj in _objects_with_attrs(h):
        oracle.assert_same_attrs(f[obj].attrs, h[obj].attrs, obj, weightio)


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("order", BYTE_ORDERS)
@pytest.mark.parametrize("code", INT_CODES + FLOAT_CODES)
def test_numeric_attributes_keep_type_and_byte_order(variant_path, wfile, h5file, libver, order, code):
    path = variant_path("attrs_numeric", libver)
    attrs, hattrs = wfile(path)["grp"].attrs, h5file(path)["grp"].attrs
    scalar = attrs[f"{code}_{order}_scalar"]
    assert isinstance(scalar, np.generic)  # a numpy scalar, not a 0-d array
    assert scalar.dtype == hattrs[f"{code}_{order}_scalar"].dtype  # h5py keeps the file's byte order
    for suffix in ("scalar", "array", "2d", "len1"):
        key = f"{code}_{order}_{suffix}"
        oracle.assert_same_value(attrs[key], hattrs[key], key, weightio)
    assert attrs[f"{code}_{order}_len1"].shape == (1,)


@pytest.mark.parametrize("libver", LIBVERS)
def test_bool_attributes(variant_path, wfile, libver):
    attrs = wfile(variant_path("attrs_numeric", libver)).attrs
    assert type(attrs["bool_scalar"]) is np.bool_ and attrs["bool_scalar"]
    assert attrs["bool_array"].dtype == np.bool_
    np.testing.assert_array_equal(attrs["bool_array"], [True, False, True])


@pytest.mark.parametrize("libver", LIBVERS)
def test_vlen_string_attributes_are_str(variant_path, wfile, libver):
    attrs = wfile(variant_path("attrs_strings", libver)).attrs
    assert attrs["vlen_utf8"] == "héllo wörld" and type(attrs["vlen_utf8"]) is str
    assert attrs["vlen_ascii"] == "plain" and type(attrs["vlen_ascii"]) is str
    assert attrs["vlen_empty"] == ""
    # h5py stores a Python bytes object as a vlen ASCII string and reads back str.
    assert attrs["python_bytes"] == "tensorflow"
    arr = attrs["vlen_array"]
    assert arr.dtype == object and arr.shape == (3,)
    assert [type(x) for x in arr] == [str, str, str]
    assert list(arr) == ["a", "bé", ""]
    assert attrs["vlen_2d"].shape == (2, 2)


@pytest.mark.parametrize("libver", LIBVERS)
def test_fixed_length_string_attributes_are_bytes(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_strings", libver)
    attrs, hattrs = wfile(path).attrs, h5file(path).attrs
    for key in ("nullterm_scalar", "nullpad_scalar", "nullpad_full", "spacepad_scalar", "utf8_fixed", "fixed_S_scalar"):
        assert type(attrs[key]) is np.bytes_, key
        assert attrs[key] == hattrs[key], key
    assert attrs["nullpad_scalar"] == b"abc"
    assert attrs["nullpad_full"] == b"abcdef"
    assert attrs["spacepad_scalar"] == b"abc"  # SPACEPAD padding is stripped, as h5py does
    assert attrs["utf8_fixed"] == "héllo".encode()
    for key in ("nullterm_array", "nullpad_array", "spacepad_array"):
        oracle.assert_same_value(attrs[key], hattrs[key], key, weightio)
        assert attrs[key].dtype == np.dtype("S6")


@pytest.mark.parametrize("name,libver", KERAS_CASES)
def test_keras_name_lists_are_fixed_length_byte_arrays(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    root = f["model_weights"] if name == "keras2_model" else f
    if name == "keras3_weights":
        assert f["layers/embedding/vars/0"].attrs["dtype"] == "bfloat16"
        return
    layer_names = root.attrs["layer_names"]
    assert layer_names.dtype.kind == "S"
    assert [n.decode() for n in layer_names] == ["conv2d", "flatten", "dense", "batch_normalization", "dense_1"]
    assert list(root["dense"].attrs["weight_names"]) == [b"dense/kernel:0", b"dense/bias:0"]
    # A layer without weights stores an empty float64 array, not strings.
    empty = root["flatten"].attrs["weight_names"]
    assert empty.dtype == np.float64 and empty.shape == (0,)
    hroot = h["model_weights"] if name == "keras2_model" else h
    oracle.assert_same_attrs(root.attrs, hroot.attrs, "/", weightio)


@pytest.mark.parametrize("libver", LIBVERS)
def test_null_dataspace_attributes_are_empty(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_special", libver)
    attrs, hattrs = wfile(path)["ds"].attrs, h5file(path)["ds"].attrs
    for key in ("null_f4", "null_i8_be", "null_S5", "null_vlen_str"):
        value = attrs[key]
        assert isinstance(value, weightio.Empty), key
        assert value.dtype == hattrs[key].dtype, key


@pytest.mark.parametrize("libver", LIBVERS)
def test_zero_size_attributes_are_empty_arrays(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_special", libver)
    attrs, hattrs = wfile(path)["grp"].attrs, h5file(path)["grp"].attrs
    for key in ("weight_names", "empty_i4", "empty_2d", "empty_S", "empty_vlen"):
        oracle.assert_same_value(attrs[key], hattrs[key], key, weightio)
        assert attrs[key].size == 0


@pytest.mark.parametrize("libver", LIBVERS)
def test_unusual_attribute_names(variant_path, wfile, libver):
    attrs = wfile(variant_path("attrs_special", libver)).attrs
    assert attrs["with space, comma"] == 1
    assert attrs["naïve ünicode 名前"] == 2
    assert attrs["dotted.name"] == 3


@pytest.mark.parametrize("libver", LIBVERS)
def test_attributes_iterate_in_name_order_by_default(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_many", libver)
    for obj in ("/", "grp", "ds", "chunked"):
        keys = list(wfile(path)[obj].attrs)
        assert keys == sorted(keys)
        assert keys == list(h5file(path)[obj].attrs)


@pytest.mark.parametrize("libver", LIBVERS)
def test_attributes_iterate_in_creation_order_with_track_order(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_track_order", libver)
    for obj in ("/", "few", "many", "ds"):
        keys = list(wfile(path)[obj].attrs.keys())
        assert keys == list(h5file(path)[obj].attrs.keys())
        assert keys != sorted(keys)
    by_name = list(wfile(path)["by_name"].attrs)
    assert by_name == sorted(by_name)


@pytest.mark.parametrize("libver", LIBVERS)
def test_big_attributes(variant_path, wfile, h5file, libver):
    path = variant_path("attrs_big", libver)
    for obj in ("/", "ds"):
        attrs, hattrs = wfile(path)[obj].attrs, h5file(path)[obj].attrs
        assert attrs["big_60k"].nbytes == 60_000
        assert len(attrs["model_config"]) > 100_000
        for key in hattrs:
            oracle.assert_same_value(attrs[key], hattrs[key], f"{obj}.attrs[{key}]", weightio)


def test_attribute_manager_mapping_protocol(variant_path, wfile):
    attrs = wfile(variant_path("attrs_many", "latest"))["grp"].attrs
    assert len(attrs) == 100
    assert "attr_000" in attrs and "attr_100" not in attrs
    assert attrs.get("attr_100") is None
    assert attrs.get("attr_100", "x") == "x"
    assert dict(attrs.items()).keys() == set(attrs.keys())
    assert len(list(attrs.values())) == 100
    with pytest.raises(KeyError):
        attrs["attr_100"]
