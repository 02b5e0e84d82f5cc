"""The native tree digest (``File._core.layout``, cpp/hdf5/tree_digest.h) that weightio.keras
compares before replaying a remembered legacy load: equal for files a loader would read the
same way, different for any change to what a loader reads (names, attributes, shapes,
element types), indifferent to the datasets' values. Files written by h5py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import weightio


def _write(path: Path, change: str = "") -> Path:
    """A legacy-Keras-like file (root layer_names, per-layer weight_names, nested datasets),
    with one ``change``."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense", b"bn"])
        f.attrs["backend"] = "tensorflow"  # a variable-length string
        f.attrs["keras_version"] = "2.15.0" if change != "vlen_attr" else "2.15.1"
        for layer, names in (("dense", ["kernel:0", "bias:0"]), ("bn", ["gamma:0", "beta:0"])):
            g = f.create_group(layer)
            stored = [f"{layer}/{n}".encode() for n in names]
            if change == "fixed_attr" and layer == "bn":
                stored = stored[::-1]  # the same strings, another order
            g.attrs["weight_names"] = np.array(stored)
            inner = g.create_group(layer)
            for n in names:
                shape = (2, 3) if n == "kernel:0" else (3,)
                if change == "shape" and n == "kernel:0":
                    shape = (3, 2)
                dtype = "<i4" if change == "dtype" and n == "bias:0" else "<f4"
                name = "bias_renamed:0" if change == "rename" and n == "bias:0" else n
                data = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
                if change == "values":
                    data = data + 1
                inner.create_dataset(name, data=data)
        if change == "soft_link":
            del f["bn/bn/beta:0"]
            f["bn/bn/beta:0"] = h5py.SoftLink("/bn/bn/gamma:0")
        opaque = f.create_dataset("opaque", data=np.zeros(3, "V2"))  # how Keras stores bfloat16
        if change == "bf16_tag":
            opaque.attrs["dtype"] = "bfloat16"  # a dataset's attribute, but it makes the dtype
        if change == "new_attr":
            f["bn"].attrs["extra"] = 1
        if change == "empty_group":
            f.create_group("empty")
    return path


def _layout(path: Path, with_paths: bool = False) -> Any:
    with weightio.File(path) as f:
        return f._call("/", "layout", f._addr, with_paths)


def test_equal_for_a_copy_and_for_the_same_content_written_again(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.h5")
    b = tmp_path / "b.h5"
    shutil.copy(a, b)
    c = _write(tmp_path / "c.h5")
    assert _layout(a)[0] == _layout(b)[0] == _layout(c)[0]


def test_addresses_and_paths_are_the_datasets(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.h5")
    digest, addresses, paths = _layout(path, True)
    with weightio.File(path) as f:
        listed = f._core.datasets(f._addr)
        assert paths == [entry[0] for entry in listed]
        assert addresses == [entry[1] for entry in listed]
        assert addresses == [f._core.resolve(f._addr, p) for p in paths]
    with h5py.File(path) as h:
        expected = []
        h.visititems(lambda name, obj: expected.append("/" + name) if isinstance(obj, h5py.Dataset) else None)
    assert paths == expected
    assert _layout(path, False)[2] is None and _layout(path, False)[0] == digest


def test_the_values_are_not_part_of_it(tmp_path: Path) -> None:
    assert _layout(_write(tmp_path / "a.h5"))[0] == _layout(_write(tmp_path / "b.h5", "values"))[0]


@pytest.mark.parametrize(
    "change", ["vlen_attr", "fixed_attr", "shape", "dtype", "rename", "soft_link", "bf16_tag", "new_attr", "empty_group"]
)
def test_what_a_loader_reads_changes_it(tmp_path: Path, change: str) -> None:
    base = _layout(_write(tmp_path / "a.h5"))[0]
    assert _layout(_write(tmp_path / "b.h5", change))[0] != base


def test_a_subtree(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.h5")
    with weightio.File(path) as f:
        digest, addresses, paths = f._core.layout(f["bn"]._addr, True)
    assert paths == ["/bn/beta:0", "/bn/gamma:0"] and len(addresses) == 2
    assert digest != _layout(path)[0]


def test_identity_is_the_opened_files(tmp_path: Path) -> None:
    """``File._core.identity``: (device, inode, size, mtime_ns, ctime_ns) of the file as
    opened, which replays compare instead of digesting an unwritten file again; a write
    changes it; bytes handed in have none."""
    import os
    import time

    path = _write(tmp_path / "a.h5")
    st = os.stat(path)
    with weightio.File(path) as f:
        assert f._core.identity == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        before = f._core.identity
    time.sleep(0.05)  # another clock tick: file times have a tick's resolution
    with h5py.File(path, "a") as f:
        f.attrs["keras_version"] = "2.15.0"  # the same value, written again
    with weightio.File(path) as f:
        assert f._core.identity != before
    with weightio.File("mem.h5", buffer=path.read_bytes()) as f:
        assert f._core.identity is None
