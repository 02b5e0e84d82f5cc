"""h5py as the test oracle.

``assert_same_tree(wfile, hfile)`` walks a file opened with weightio and the
same file opened with h5py side by side and fails on the first difference:
link names and order, link kinds and targets, object kinds, attributes
(names, order, types, dtypes, shapes and bit-exact values) and datasets
(metadata and bit-exact values).

The comparison is written against the *API* both libraries share, so it also
runs h5py against h5py; ``tests/test_fixtures.py`` does that to check the
oracle itself.  Classes the API names per library (Empty, SoftLink, Group,
...) are looked up in the package that produced ``wfile``.
"""

from __future__ import annotations

import posixpath
import sys
from types import ModuleType

import h5py
import numpy as np

LINK_CLASSES = ("HardLink", "SoftLink", "ExternalLink")

DATASET_PROPERTIES = (
    "name",
    "shape",
    "dtype",
    "ndim",
    "size",
    "nbytes",
    "maxshape",
    "chunks",
    "compression",
    "compression_opts",
    "shuffle",
    "fletcher32",
)

_MISSING = "no such name in this file"


def library_of(obj) -> ModuleType:
    """The top-level package whose class ``obj`` is (weightio or h5py)."""
    return sys.modules[type(obj).__module__.split(".")[0]]


def kind_of(obj) -> str:
    """"group", "dataset" or the lowercase class name (e.g. "datatype").

    h5py's ``values()`` yields None for dangling soft links: "none".
    """
    if obj is None:
        return "none"
    lib = library_of(obj)
    if isinstance(obj, lib.Group):  # File is a Group
        return "group"
    if isinstance(obj, lib.Dataset):
        return "dataset"
    return type(obj).__name__.lower()


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


def assert_same_value(w, h, where: str, wlib: ModuleType | None = None) -> None:
    """``w`` must equal h5py's ``h`` in type, dtype, shape and bits.

    Bit equality (``tobytes``) rather than ``==`` so that NaN payloads,
    -0.0 and string padding count; ``assert_array_equal`` runs first for a
    readable message.  ``wlib`` is the package expected to provide ``Empty``
    (defaults to the package of ``w``).
    """
    if isinstance(h, h5py.Empty):
        empty_cls = (wlib or library_of(w)).Empty
        assert isinstance(w, empty_cls), f"{where}: expected {empty_cls.__module__}.Empty, got {w!r}"
        assert w.dtype == h.dtype, f"{where}: Empty dtype {w.dtype} != {h.dtype}"
        return
    assert type(w) is type(h), f"{where}: type {type(w).__name__} ({w!r}) != {type(h).__name__} ({h!r})"
    if isinstance(h, np.ndarray):
        assert w.dtype == h.dtype, f"{where}: dtype {w.dtype!r} != {h.dtype!r}"
        assert w.shape == h.shape, f"{where}: shape {w.shape} != {h.shape}"
        if h.dtype.hasobject:
            for index in np.ndindex(h.shape):
                assert_same_value(w[index], h[index], f"{where}[{index}]", wlib)
        else:
            np.testing.assert_array_equal(w, h, err_msg=where, strict=True)
            assert w.tobytes() == h.tobytes(), f"{where}: equal values but different bits"
    elif isinstance(h, np.generic):
        assert w.dtype == h.dtype, f"{where}: dtype {w.dtype!r} != {h.dtype!r}"
        assert np.asarray(w).tobytes() == np.asarray(h).tobytes(), f"{where}: {w!r} != {h!r}"
    else:
        assert w == h, f"{where}: {w!r} != {h!r}"


def reference_cast(values, dtype) -> np.ndarray:
    """The conversion weightio must match: numpy's ``astype`` (round to nearest
    even, overflow to +-inf, ml_dtypes for bfloat16).

    Not libhdf5's: its soft float conversions (used for float16 before HDF5
    2.0) mis-round when the rounding carries into the exponent, e.g.
    float32 0.99999 -> float16 0.5 with HDF5 1.14.6.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values).astype(dtype)


def assert_same_floats(result, expected, where: str) -> None:
    """Float arrays equal in dtype, shape and value, NaN where NaN, same sign of
    zero; NaN payloads may differ (conversions need not preserve them)."""
    assert result.dtype == expected.dtype, f"{where}: dtype {result.dtype!r} != {expected.dtype!r}"
    assert result.shape == expected.shape, f"{where}: shape {result.shape} != {expected.shape}"
    r, e = result.astype(np.float64), expected.astype(np.float64)
    np.testing.assert_array_equal(r, e, err_msg=where)
    not_nan = ~np.isnan(e)
    assert np.array_equal(np.signbit(r)[not_nan], np.signbit(e)[not_nan]), f"{where}: sign of zero differs"


def assert_same_attrs(wattrs, hattrs, where: str, wlib: ModuleType) -> None:
    names = list(hattrs.keys())
    assert list(wattrs.keys()) == names, f"{where}: attribute names/order differ"
    assert list(wattrs) == names, f"{where}: iteration differs from keys()"
    assert len(wattrs) == len(names), f"{where}: len(attrs)"
    for name in names:
        label = f"{where}.attrs[{name!r}]"
        assert name in wattrs, label
        assert_same_value(wattrs[name], hattrs[name], label, wlib)
        assert_same_value(wattrs.get(name), hattrs[name], label + " via get()", wlib)
    assert [k for k, _ in wattrs.items()] == names, f"{where}: items() order"
    for (name, value), value2 in zip(wattrs.items(), wattrs.values()):
        assert_same_value(value, hattrs[name], f"{where}.attrs.items()[{name!r}]", wlib)
        assert_same_value(value2, hattrs[name], f"{where}.attrs.values()[{name!r}]", wlib)
    assert _MISSING not in wattrs
    assert wattrs.get(_MISSING) is None
    assert wattrs.get(_MISSING, 17) == 17


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------


def assert_same_dataset_metadata(w, h, wlib: ModuleType | None = None) -> None:
    wlib = wlib or library_of(w)
    where = h.name
    for prop in DATASET_PROPERTIES:
        wv, hv = getattr(w, prop), getattr(h, prop)
        assert wv == hv and type(wv) is type(hv), f"{where}.{prop}: {wv!r} != {hv!r}"
    assert_same_value(w.fillvalue, h.fillvalue, f"{where}.fillvalue", wlib)
    try:
        expected_len = len(h)
    except TypeError:  # scalar and null dataspaces have no len()
        try:
            len(w)
        except TypeError:
            pass
        else:
            raise AssertionError(f"{where}: len() should raise TypeError like h5py")
    else:
        assert len(w) == expected_len, f"{where}: len()"
    assert_same_attrs(w.attrs, h.attrs, where, wlib)


def assert_same_dataset(w, h, wlib: ModuleType | None = None) -> None:
    wlib = wlib or library_of(w)
    assert_same_dataset_metadata(w, h, wlib)
    assert_same_value(w[()], h[()], f"{h.name}[()]", wlib)


# --------------------------------------------------------------------------
# Trees
# --------------------------------------------------------------------------


def _object_address(hobj) -> int:
    return h5py.h5o.get_info(hobj.id).addr


def _assert_same_link(wlink, hlink, where: str, wlib: ModuleType) -> None:
    wname, hname = type(wlink).__name__, type(hlink).__name__
    assert hname in LINK_CLASSES
    assert wname == hname, f"{where}: link kind {wname} != {hname}"
    assert isinstance(wlink, getattr(wlib, hname)), f"{where}: link is not a {wlib.__name__}.{hname}"
    if hname == "SoftLink":
        assert wlink.path == hlink.path, f"{where}: soft link target {wlink.path!r} != {hlink.path!r}"
    elif hname == "ExternalLink":
        assert (wlink.filename, wlink.path) == (hlink.filename, hlink.path), f"{where}: external link target"


class _TreeComparer:
    def __init__(self, wfile, hfile, values: bool):
        self.wfile, self.hfile = wfile, hfile
        self.wlib = library_of(wfile)
        self.values = values
        # Object-header addresses already compared: hard links reach the
        # same object twice, and a link back to an ancestor makes a cycle.
        self.seen: set[int] = set()
        self.saw_datatype = False

    def group(self, w, h) -> None:
        where = h.name
        assert w.name == h.name, f"{where}: name {w.name!r}"
        assert kind_of(w) == "group", f"{where}: not a {self.wlib.__name__}.Group"
        assert_same_attrs(w.attrs, h.attrs, where, self.wlib)
        names = list(h.keys())
        assert list(w.keys()) == names, f"{where}: link names/order differ"
        assert list(w) == names, f"{where}: iteration differs from keys()"
        assert len(w) == len(names), f"{where}: len()"
        assert _MISSING not in w
        assert w.get(_MISSING) is None

        skip_values = False  # values()/items() would open external files / datatypes
        for name in names:
            path = posixpath.join(where, name)
            hlink = h.get(name, getlink=True)
            _assert_same_link(w.get(name, getlink=True), hlink, path, self.wlib)
            assert (name in w) == (name in h), f"{path}: `in` differs"
            if isinstance(hlink, h5py.ExternalLink):
                skip_values = True  # never followed: weightio refuses to
                continue
            hobj = h.get(name)
            if hobj is None:  # dangling soft link
                assert w.get(name) is None, f"{path}: dangling link should give None"
                continue
            if isinstance(hobj, h5py.Datatype):
                # The API does not say whether committed datatypes open as
                # objects: accept an object with the same dtype, or a refusal.
                skip_values = self.saw_datatype = True
                try:
                    wobj = w[name]
                except getattr(self.wlib, "UnsupportedFeatureError", ()):
                    continue
                assert wobj.dtype == hobj.dtype, f"{path}: committed datatype {wobj.dtype} != {hobj.dtype}"
                continue
            wobj = w[name]
            assert kind_of(wobj) == kind_of(hobj), f"{path}: {kind_of(wobj)} != {kind_of(hobj)}"
            assert_same_value(wobj.name, hobj.name, f"{path}.name")
            if isinstance(hlink, h5py.SoftLink):
                continue  # the target is compared where it is hard-linked
            self.object(wobj, hobj)

        if not skip_values:
            assert [kind_of(v) for v in w.values()] == [kind_of(v) for v in h.values()], f"{where}: values()"
            assert [(k, kind_of(v)) for k, v in w.items()] == [(k, kind_of(v)) for k, v in h.items()], f"{where}: items()"

    def object(self, w, h) -> None:
        address = _object_address(h)
        if address in self.seen:
            return
        self.seen.add(address)
        # Absolute-path lookup from the file must reach the same object.
        assert kind_of(self.wfile[h.name]) == kind_of(h), f"{h.name}: absolute lookup"
        kind = kind_of(h)
        if kind == "group":
            self.group(w, h)
        elif self.values:
            assert_same_dataset(w, h, self.wlib)
        else:
            assert_same_dataset_metadata(w, h, self.wlib)


def dataset_names(hfile) -> list[str]:
    """Absolute names of every dataset h5py's visititems reaches (each object once)."""
    names: list[str] = []
    hfile.visititems(lambda name, obj: names.append(obj.name) if isinstance(obj, h5py.Dataset) else None)
    return names


def is_null(hds) -> bool:
    """True for a null-dataspace dataset (h5py.Empty contents)."""
    return hds.shape is None


def visit_names(group) -> list[str]:
    names: list[str] = []
    group.visit(names.append)
    return names


def visititems_summary(group) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    group.visititems(lambda name, obj: out.append((name, kind_of(obj), obj.name)))
    return out


def assert_same_visit(w, h, *, items: bool = True) -> None:
    """Same names in the same order from visit() (and, with ``items``, visititems())."""
    assert visit_names(w) == visit_names(h), f"{h.name}: visit() names/order"
    if items:
        assert visititems_summary(w) == visititems_summary(h), f"{h.name}: visititems() names/kinds/order"


def assert_same_tree(wfile, hfile, *, values: bool = True) -> None:
    """Fail on the first difference between two views of one file.

    ``wfile`` is the file under test (weightio, or h5py for self-checks),
    ``hfile`` the same file opened with h5py.  With ``values=False`` dataset
    contents are not read (metadata still is).
    """
    comparer = _TreeComparer(wfile, hfile, values)
    comparer.object(wfile, hfile)
    # visititems() hands every object to the callback, committed datatypes
    # included, which weightio may refuse to open (see above).
    assert_same_visit(wfile, hfile, items=not comparer.saw_datatype)
