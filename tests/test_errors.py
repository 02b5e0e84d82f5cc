"""Errors: missing and non-HDF5 files, truncation, corruption, missing names.

The rule for damaged files: weightio raises a weightio.Error (naming the
file) or returns exactly what the intact file holds; it never crashes,
never leaks another exception type and never returns wrong data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import weightio

import h5inspect
import oracle
from fixtures import LIBVERS

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def snapshot(f) -> dict[str, object]:
    """Every attribute and dataset value reachable by hard links, keyed by path.

    Walks with keys()/[] rather than visit() so that group iteration and
    lookup are exercised too.  Hard-link cycles are cut by depth.
    """
    out: dict[str, object] = {}

    def walk(group, depth):
        for key, value in group.attrs.items():
            out[f"{group.name}@{key}"] = value
        if depth > 12:
            return
        for name in group:
            if type(group.get(name, getlink=True)).__name__ != "HardLink":
                continue
            obj = group[name]
            if isinstance(obj, weightio.Group):
                walk(obj, depth + 1)
            elif isinstance(obj, weightio.Dataset):
                for key, value in obj.attrs.items():
                    out[f"{obj.name}@{key}"] = value
                out[obj.name] = obj[()]

    walk(f, 0)
    return out


def read_everything(path) -> dict[str, object]:
    with weightio.File(path, fallback=False) as f:
        return snapshot(f)


def assert_names_file(exc: BaseException, path: Path) -> None:
    assert path.name in str(exc), f"error message should name the file {path}: {exc}"


def assert_error_or_intact(path: Path, intact: dict[str, object]) -> None:
    """Reading the damaged file raises weightio.Error naming it, or gives `intact` exactly."""
    try:
        damaged = read_everything(path)
    except weightio.Error as exc:
        assert_names_file(exc, path)
        return
    assert damaged.keys() == intact.keys(), "damaged file read without error but its tree differs"
    for key, value in intact.items():
        oracle.assert_same_value(damaged[key], value, f"damaged file: {key}", weightio)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0xFF]))


# --------------------------------------------------------------------------
# Missing and non-HDF5 files
# --------------------------------------------------------------------------


def test_missing_file_raises_file_not_found(tmp_path):
    path = tmp_path / "does_not_exist.h5"
    with pytest.raises(FileNotFoundError) as excinfo:
        weightio.File(path)
    assert_names_file(excinfo.value, path)


def test_missing_file_raises_file_not_found_from_load_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        weightio.load_file(tmp_path / "does_not_exist.h5")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(OSError):
        weightio.File(tmp_path)


NOT_HDF5 = {
    "empty": b"",
    "text": b"this is not an HDF5 file\n" * 40,
    "zeros": bytes(4096),
    "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(100),
    "json": b'{"weights": [1, 2, 3]}',
}


@pytest.mark.parametrize("kind", NOT_HDF5)
def test_not_hdf5_raises_format_error_naming_the_path(tmp_path, kind):
    path = tmp_path / f"not_hdf5_{kind}.h5"
    path.write_bytes(NOT_HDF5[kind])
    with pytest.raises(weightio.FormatError) as excinfo:
        weightio.File(path)
    assert str(path) in str(excinfo.value)
    # FormatError is both a weightio.Error and an OSError (like h5py's errors).
    assert isinstance(excinfo.value, weightio.Error)
    assert isinstance(excinfo.value, OSError)


def test_signature_alone_is_a_format_error(tmp_path):
    path = tmp_path / "signature_only.h5"
    path.write_bytes(h5inspect.SIGNATURE)
    with pytest.raises(weightio.FormatError):
        weightio.File(path)


def test_error_hierarchy():
    assert issubclass(weightio.FormatError, weightio.Error)
    assert issubclass(weightio.FormatError, OSError)
    assert issubclass(weightio.ChecksumError, weightio.FormatError)
    assert issubclass(weightio.UnsupportedFeatureError, weightio.Error)
    assert issubclass(weightio.UnsupportedFeatureError, NotImplementedError)


# --------------------------------------------------------------------------
# Missing names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("libver", LIBVERS)
def test_missing_names_raise_key_error(variant_path, wfile, libver):
    f = wfile(variant_path("keras2_weights", libver))
    for name in ("nope", "dense/nope", "nope/deeper", "/nope", "dense/dense/kernel:0/below_a_dataset"):
        with pytest.raises(KeyError):
            f[name]
        assert name not in f
        assert f.get(name) is None
    with pytest.raises(KeyError):
        f["dense"]["nope"]


@pytest.mark.parametrize("libver", LIBVERS)
def test_missing_attributes_raise_key_error(variant_path, wfile, libver):
    f = wfile(variant_path("keras2_weights", libver))
    with pytest.raises(KeyError):
        f.attrs["nope"]
    with pytest.raises(KeyError):
        f["dense/dense/kernel:0"].attrs["nope"]


# --------------------------------------------------------------------------
# Truncated files
# --------------------------------------------------------------------------

TRUNCATED_VARIANTS = ["keras2_weights", "datasets_chunked", "groups_link_counts", "attrs_big", "datasets_compact"]


def _cut_points(size: int) -> list[int]:
    fixed = [1, 8, 9, 16, 40, 47, 48, 95, 96, 200, 511, 512, 800, 1024, 2048, 4096]
    relative = [size // 4, size // 2, (3 * size) // 4, size - 100, size - 8, size - 1]
    return sorted({n for n in fixed + relative if 0 < n < size})


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("variant", TRUNCATED_VARIANTS)
def test_truncated_files_raise_a_weightio_error(variant_path, tmp_path, variant, libver):
    source = variant_path(variant, libver)
    data = source.read_bytes()
    intact = read_everything(source)
    for cut in _cut_points(len(data)):
        path = tmp_path / f"cut_{cut}.h5"
        path.write_bytes(data[:cut])
        assert_error_or_intact(path, intact)


@pytest.mark.parametrize("variant", TRUNCATED_VARIANTS)
def test_truncated_files_with_consistent_superblock_raise_a_weightio_error(variant_path, tmp_path, variant):
    """The superblock's end-of-file address is rewritten to the cut, so the
    reader only notices when an address points past the end."""
    source = variant_path(variant, "earliest")
    data = source.read_bytes()
    intact = read_everything(source)
    for cut in _cut_points(len(data)):
        if cut < 96:  # the v0 superblock itself must survive the cut
            continue
        path = tmp_path / f"cut_{cut}.h5"
        path.write_bytes(h5inspect.with_eof_address(data[:cut], cut))
        assert_error_or_intact(path, intact)


# --------------------------------------------------------------------------
# Corruption of checksummed structures (libver="latest")
# --------------------------------------------------------------------------

# (variant, structure signature, strict).  Strict: the structure must be read
# to produce the file's contents, so corrupting it must raise FormatError.
# Not strict: a reader may legitimately never read it (the name-index
# B-trees of dense groups; fractal-heap direct blocks, which libhdf5 does
# not checksum for links), so "error or intact" is the rule.
SIGNATURE_CASES = [
    ("datasets_many_chunks", b"FAHD", True),
    ("datasets_many_chunks", b"FADB", True),
    ("datasets_many_chunks", b"EAHD", True),
    ("datasets_many_chunks", b"EAIB", True),
    ("datasets_many_chunks", b"EASB", True),
    ("datasets_many_chunks", b"EADB", True),
    ("datasets_many_chunks", b"BTHD", True),  # the only v2 B-tree is a chunk index
    ("datasets_many_chunks", b"BTIN", True),
    ("datasets_many_chunks", b"BTLF", True),
    ("datasets_many_chunks", b"OCHK", True),
    ("groups_link_counts", b"FRHP", True),
    ("groups_link_counts", b"FHIB", True),
    ("groups_link_counts", b"FHDB", False),
    ("groups_link_counts", b"BTHD", False),
    ("groups_link_counts", b"BTLF", False),
    ("attrs_many", b"FRHP", True),
]


@pytest.mark.parametrize("variant,signature,strict", SIGNATURE_CASES, ids=lambda v: v.decode() if isinstance(v, bytes) else None)
@pytest.mark.parametrize("which", ["first", "last"])
def test_flipped_byte_in_checksummed_structure(variant_copy, variant_path, variant, signature, strict, which):
    path = variant_copy(variant, "latest")
    offsets = h5inspect.find_signature(path.read_bytes(), signature)
    assert offsets, f"fixture {variant} has no {signature!r} structure"
    # Byte 6: past signature and version, inside every structure's checksummed range.
    flip_byte(path, (offsets[0] if which == "first" else offsets[-1]) + 6)
    if strict:
        with pytest.raises(weightio.FormatError) as excinfo:
            read_everything(path)
        assert_names_file(excinfo.value, path)
    else:
        assert_error_or_intact(path, read_everything(variant_path(variant, "latest")))


def test_flipped_superblock_checksum_raises(variant_copy):
    path = variant_copy("keras2_weights", "latest")
    offset, length = h5inspect.superblock_region(path)
    flip_byte(path, offset + length - 2)  # inside the stored checksum
    with pytest.raises(weightio.FormatError) as excinfo:
        read_everything(path)
    assert_names_file(excinfo.value, path)


def test_flipped_superblock_field_raises(variant_copy):
    path = variant_copy("keras2_weights", "latest")
    offset, _ = h5inspect.superblock_region(path)
    flip_byte(path, offset + 12 + 8 + 3)  # a byte of the superblock-extension address
    with pytest.raises(weightio.FormatError):
        read_everything(path)


@pytest.mark.parametrize("obj", ["/", "dense", "dense/dense/kernel:0"])
@pytest.mark.parametrize("position", ["middle", "checksum"])
def test_flipped_byte_in_object_header_raises(variant_copy, obj, position):
    path = variant_copy("keras2_weights", "latest")
    start, length = h5inspect.checksummed_regions(path, obj)[0]
    flip_byte(path, start + (length // 2 if position == "middle" else length - 3))
    with pytest.raises(weightio.FormatError) as excinfo:
        read_everything(path)
    assert_names_file(excinfo.value, path)


def _chunk_offset(path, dataset) -> int:
    """File offset of the middle of the dataset's first chunk."""
    with h5py.File(path) as h:
        info = h[dataset].id.get_chunk_info(0)
        return info.byte_offset + info.size // 2


@pytest.mark.parametrize("libver", LIBVERS)
def test_corrupted_fletcher32_chunk_raises_checksum_error(variant_copy, libver):
    path = variant_copy("datasets_filters", libver)
    flip_byte(path, _chunk_offset(path, "fletcher32"))
    with weightio.File(path, fallback=False) as f:
        with pytest.raises(weightio.ChecksumError) as excinfo:
            f["fletcher32"][()]
        assert_names_file(excinfo.value, path)
        # Other datasets are unaffected.
        assert f["gzip1"].shape == (40, 30)
        f["gzip1"][()]


@pytest.mark.parametrize("libver", LIBVERS)
def test_corrupted_gzip_chunk_raises_format_error(variant_copy, libver):
    path = variant_copy("datasets_filters", libver)
    flip_byte(path, _chunk_offset(path, "gzip9"))
    with weightio.File(path, fallback=False) as f:
        with pytest.raises(weightio.FormatError):
            f["gzip9"][()]


# --------------------------------------------------------------------------
# Random mutations (slow): any single damaged byte, anywhere
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("libver", LIBVERS)
# No chunked datasets with unallocated chunks here: a mutated dimension would
# make an honest reader allocate a huge fill-value array.
@pytest.mark.parametrize("variant", ["keras2_weights", "attrs_strings", "links", "groups_deep"])
def test_random_byte_mutations_never_crash(variant_path, tmp_path, variant, libver):
    """Without checksums (earliest) a flipped data byte silently changes a
    value, which is fine; what is checked is that only weightio.Error (or a
    KeyError for a damaged name) escapes."""
    source = variant_path(variant, libver)
    shutil.copytree(source.parent, tmp_path, dirs_exist_ok=True)
    path = tmp_path / source.name
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(int.from_bytes(variant.encode(), "little") % 2**32)
    for _ in range(150):
        mutated = bytearray(data)
        for offset in rng.integers(0, len(data), size=rng.integers(1, 4)):
            mutated[offset] = int(rng.integers(0, 256))
        path.write_bytes(mutated)
        try:
            read_everything(path)
        except (weightio.Error, KeyError):
            pass


def test_a_closed_file_reads_nothing_and_drops_its_caches(tmp_path: Path) -> None:
    """``close()`` releases the attributes the file cached at once (a File refers to itself,
    so it may outlive the close until the cyclic collector runs): the root's attributes,
    read before, are not served from a cache afterwards (h5py refuses a closed file too)."""
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.attrs["names"] = [b"a", b"b"]
        f.create_dataset("x", data=np.arange(3))
    f = weightio.File(path)
    assert list(f.attrs["names"]) == ["a", "b"]
    assert f._attr_cache
    f.close()
    assert not f._attr_cache and f._attrs is None
    with pytest.raises(ValueError, match="closed"):
        f.attrs["names"]
