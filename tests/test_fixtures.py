"""Checks of the test infrastructure itself; these need h5py only, not weightio.

* every fixture variant writes, and h5py reads it back in full;
* the oracle accepts h5py compared with itself (and rejects a difference);
* fixture files are byte-for-byte reproducible;
* the on-disk features each variant claims (dense links, chunk indexes,
  superblock versions, ...) are really in the files, decoded with the
  independent ``h5inspect`` reader.  If a libhdf5 upgrade changes what it
  writes, these fail loudly instead of the weightio tests silently losing
  coverage.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import h5inspect
import oracle
from fixtures import LINK_COUNTS, VARIANTS, variant_cases, write_variant

ALL_CASES = variant_cases(native=None, oracle=None)
ORACLE_CASES = variant_cases(native=None, oracle=True)


@pytest.mark.parametrize("name,libver", ORACLE_CASES)
def test_oracle_accepts_h5py_compared_with_itself(variant_path, h5file, name, libver):
    path = variant_path(name, libver)
    oracle.assert_same_tree(h5file(path), h5file(path))


def test_oracle_rejects_a_different_value(tmp_path, h5file):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, value in ((a, 0.0), (b, -0.0)):  # equal as numbers, different bits
        with h5py.File(path, "w") as f:
            f["x"] = np.array([1.0, value])
    with pytest.raises(AssertionError, match="different bits"):
        oracle.assert_same_tree(h5file(a), h5file(b))


def test_oracle_rejects_a_different_attribute_order(tmp_path, h5file):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, track_order in ((a, False), (b, True)):
        with h5py.File(path, "w", track_order=track_order) as f:
            f.attrs["z"] = 1
            f.attrs["a"] = 2
    with pytest.raises(AssertionError, match="attribute names/order"):
        oracle.assert_same_tree(h5file(a), h5file(b))


def test_oracle_rejects_bytes_for_str(h5file, variant_path):
    hfile = h5file(variant_path("attrs_strings", "latest"))
    with pytest.raises(AssertionError, match="type"):
        oracle.assert_same_value(b"plain", hfile.attrs["vlen_ascii"], "vlen_ascii")


REPRODUCIBLE_CASES = [c for c in ALL_CASES if VARIANTS[c[0]].reproducible]


@pytest.mark.parametrize("name,libver", REPRODUCIBLE_CASES)
def test_variant_files_are_reproducible(tmp_path, name, libver):
    first = write_variant(name, libver, tmp_path / "first")
    second = write_variant(name, libver, tmp_path / "second")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("name,libver", REPRODUCIBLE_CASES)
def test_variant_files_store_no_timestamps(variant_path, name, libver):
    """Two writes in the same second are identical anyway; timestamps are what
    would make them differ across seconds, so look for them directly."""
    path = variant_path(name, libver)
    with h5py.File(path) as f:
        names = ["/"]
        f.visit(names.append)
    stamped = [n for n in names if h5inspect.inspect_object(path, n).has_timestamps]
    assert stamped == []


def _layout(variant_path, variant, libver, obj):
    return h5inspect.inspect_object(variant_path(variant, libver), obj)


@pytest.mark.parametrize("n", LINK_COUNTS)
def test_link_storage_follows_libver_and_link_count(variant_path, n):
    latest = "compact" if n <= 8 else "dense"
    for prefix in ("by_name", "by_creation"):
        assert _layout(variant_path, "groups_link_counts", "latest", f"{prefix}_{n}").link_storage == latest
    assert _layout(variant_path, "groups_link_counts", "earliest", f"by_name_{n}").link_storage == "symbol_table"
    # Creation-order tracking needs link messages, even under "earliest".
    assert _layout(variant_path, "groups_link_counts", "earliest", f"by_creation_{n}").link_storage == latest


def test_utf8_names_convert_earliest_groups_to_link_messages(variant_path):
    for n, storage in ((4, "compact"), (12, "dense")):
        layout = _layout(variant_path, "groups_link_counts", "earliest", f"utf8_names_{n}")
        assert (layout.header_version, layout.link_storage) == (1, storage)


@pytest.mark.parametrize(
    "variant,obj",
    [("attrs_many", "/"), ("attrs_many", "grp"), ("attrs_many", "ds"), ("attrs_big", "/"), ("attrs_track_order", "many")],
)
def test_dense_attribute_storage_under_latest(variant_path, variant, obj):
    assert _layout(variant_path, variant, "latest", obj).attr_storage == "dense"


def test_compact_attribute_storage_holds_100_attributes_under_earliest(variant_path):
    layout = _layout(variant_path, "attrs_many", "earliest", "grp")
    assert (layout.attr_storage, layout.num_compact_attrs) == ("compact", 100)


CHUNK_INDEX_CLAIMS = [
    ("datasets_chunked", "single", "single"),
    ("datasets_chunked", "single_gzip", "single"),
    ("datasets_chunked", "implicit", "implicit"),
    ("datasets_chunked", "fixed_array", "fixed_array"),
    ("datasets_chunked", "extensible_array", "extensible_array"),
    ("datasets_chunked", "extensible_array_3d", "extensible_array"),
    ("datasets_chunked", "btree_v2", "btree_v2"),
    ("datasets_many_chunks", "fixed_array", "fixed_array"),
    ("datasets_many_chunks", "extensible_array", "extensible_array"),
    ("datasets_many_chunks", "btree_v2", "btree_v2"),
    ("datasets_filters", "single_shuffle_gzip_fletcher32", "single"),
    ("datasets_filters", "extensible_shuffle_gzip", "extensible_array"),
    ("datasets_filters", "btree_v2_gzip_fletcher32", "btree_v2"),
    ("datasets_fill", "chunked_never_written", "fixed_array"),
    ("datasets_fill", "extensible_never_written", "extensible_array"),
    ("datasets_fill", "btree_v2_never_written", "btree_v2"),
]


@pytest.mark.parametrize("variant,dataset,latest_index", CHUNK_INDEX_CLAIMS)
def test_chunk_index_type(variant_path, variant, dataset, latest_index):
    assert _layout(variant_path, variant, "latest", dataset).chunk_index == latest_index
    assert _layout(variant_path, variant, "earliest", dataset).chunk_index == "btree_v1"


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_compact_layout(variant_path, libver):
    with h5py.File(variant_path("datasets_compact", libver)) as f:
        names = list(f)
    for name in names:
        assert _layout(variant_path, "datasets_compact", libver, name).layout == "compact"


@pytest.mark.parametrize("libver,version", [("earliest", 0), ("v108", 2), ("latest", 3)])
def test_superblock_version(variant_path, libver, version):
    assert h5inspect.superblock_version(variant_path("superblock", libver)) == version


@pytest.mark.parametrize("size", [512, 1024])
@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_user_block_moves_the_superblock(variant_path, size, libver):
    data = variant_path(f"userblock_{size}", libver).read_bytes()
    assert h5inspect.find_superblock(data).offset == size
    assert data.startswith(b"user block text")


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_small_offsets_use_4_byte_addresses(variant_path, libver):
    sb = h5inspect.find_superblock(variant_path("small_offsets", libver).read_bytes())
    assert (sb.sizeof_addr, sb.sizeof_size) == (4, 4)


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_fill_fixture_leaves_storage_unallocated(variant_path, libver):
    with h5py.File(variant_path("datasets_fill", libver)) as f:
        assert f["contiguous_never_written_fill"].id.get_storage_size() == 0
        assert f["chunked_never_written"].id.get_num_chunks() == 0
        partial = f["partial_fill"]
        assert 0 < partial.id.get_num_chunks() < 9  # 3x3 chunks in total


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_spacepad_and_nullterm_strings_are_on_disk_as_written(variant_path, libver):
    with h5py.File(variant_path("attrs_strings", libver)) as f:
        assert f.attrs.get_id("spacepad_scalar").get_type().get_strpad() == h5py.h5t.STR_SPACEPAD
        assert f.attrs.get_id("nullterm_scalar").get_type().get_strpad() == h5py.h5t.STR_NULLTERM
        # h5py converts SPACEPAD to NULLPAD on read, which strips the padding.
        assert f.attrs["spacepad_scalar"] == b"abc"


def test_checksummed_regions_found_in_latest_files(variant_path):
    path = variant_path("datasets_chunked", "latest")
    regions = h5inspect.checksummed_regions(path, "fixed_array")
    assert regions and all(length > 4 for _, length in regions)
    assert h5inspect.superblock_region(path) == (0, 48)
