"""Group and link behaviour, compared with h5py.

``test_whole_tree_matches_h5py`` is the broad net (every native variant,
every object, attribute and dataset); the tests below it pin individual
behaviours with readable expectations so a failure says what broke.
"""

from __future__ import annotations

import numpy as np
import pytest
import weightio

import oracle
from fixtures import LINK_COUNTS, LIBVERS, variant_cases

NATIVE_CASES = variant_cases(native=True, oracle=True)


@pytest.mark.parametrize("name,libver", NATIVE_CASES)
def test_whole_tree_matches_h5py(variant_path, wfile, h5file, name, libver):
    path = variant_path(name, libver)
    oracle.assert_same_tree(wfile(path), h5file(path))


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("n", LINK_COUNTS)
def test_links_iterate_in_name_order_by_default(variant_path, wfile, h5file, libver, n):
    path = variant_path("groups_link_counts", libver)
    keys = list(wfile(path)[f"by_name_{n}"].keys())
    assert keys == sorted(keys)  # byte order: item10 < item9
    assert keys == list(h5file(path)[f"by_name_{n}"].keys())


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("n", LINK_COUNTS)
def test_links_iterate_in_creation_order_with_track_order(variant_path, wfile, h5file, libver, n):
    path = variant_path("groups_link_counts", libver)
    keys = list(wfile(path)[f"by_creation_{n}"])
    assert keys == list(h5file(path)[f"by_creation_{n}"])
    if n > 3:  # the scrambled creation order is not sorted
        assert keys != sorted(keys)


@pytest.mark.parametrize("libver", LIBVERS)
def test_non_ascii_names_round_trip_without_normalisation(variant_path, wfile, libver):
    g = wfile(variant_path("groups_link_counts", libver))["utf8_names_12"]
    names = list(g)
    assert "e\u0301" in names and "\u00e9" not in names
    assert "日本語" in names and "émoji 🙂" in g
    assert g["日本語"].name == "/utf8_names_12/日本語"


@pytest.mark.parametrize("libver", LIBVERS)
def test_len_and_contains(variant_path, wfile, libver):
    f = wfile(variant_path("groups_link_counts", libver))
    assert len(f["by_name_200"]) == 200
    assert "item199" in f["by_name_200"]
    assert "by_name_200/item199" in f
    assert "/by_name_200/item199" in f
    assert "by_name_200/item200" not in f
    assert "no/such/path" not in f


@pytest.mark.parametrize("libver", LIBVERS)
def test_nested_and_absolute_paths(variant_path, wfile, libver):
    f = wfile(variant_path("groups_deep", libver))
    deep = "/".join(f"level{i}" for i in range(10))
    leaf = f[deep + "/leaf"]
    assert leaf.name == "/" + deep + "/leaf"
    assert f["/" + deep + "/leaf"].name == leaf.name
    g = f["level0/level1"]
    assert g.name == "/level0/level1"
    assert g["level2/level3"].name == "/level0/level1/level2/level3"
    # An absolute path is resolved from the root, whatever group it is asked of.
    assert g["/level0"].name == "/level0"
    assert "/level0/level1/level2" in g
    np.testing.assert_array_equal(leaf[()], np.linspace(0, 1, 7))


@pytest.mark.parametrize("libver", LIBVERS)
def test_name_and_file_attributes(variant_path, wfile, libver):
    path = variant_path("groups_deep", libver)
    f = wfile(path)
    assert f.name == "/"
    assert f["level0"].name == "/level0"
    ds = f["level0/data0"]
    assert isinstance(ds, weightio.Dataset)
    assert isinstance(f["level0"], weightio.Group)
    assert isinstance(f, weightio.Group)
    assert ds.file.filename == f.filename
    assert f["level0"].file.filename == f.filename


def test_filename_is_reported_like_h5py(variant_path, wfile, h5file, monkeypatch):
    path = variant_path("superblock", "latest")
    assert wfile(path).filename == h5file(path).filename
    assert wfile(str(path)).filename == h5file(str(path)).filename
    monkeypatch.chdir(path.parent)
    assert wfile(path.name).filename == h5file(path.name).filename


def test_file_is_a_context_manager(variant_path):
    path = variant_path("superblock", "latest")
    with weightio.File(path) as f:
        assert list(f) == ["grp", "soft"]
    f.close()  # closing twice is harmless


@pytest.mark.parametrize("libver", LIBVERS)
def test_soft_links_resolve_to_their_targets(variant_path, wfile, h5file, libver):
    path = variant_path("links", libver)
    f, h = wfile(path), h5file(path)
    for name in ("soft_abs", "data/soft_rel", "soft_chain", "data/soft_rel_nested", "soft_grp/y"):
        oracle.assert_same_value(f[name][()], h[name][()], name)
        assert f[name].name == h[name].name == "/" + name
    assert isinstance(f["soft_grp"], weightio.Group)
    assert list(f["soft_grp"]) == list(h["data/g"])


@pytest.mark.parametrize("libver", LIBVERS)
def test_get_with_getlink_returns_link_descriptions(variant_path, wfile, libver):
    f = wfile(variant_path("links", libver))
    assert isinstance(f.get("data", getlink=True), weightio.HardLink)
    assert isinstance(f.get("x_again", getlink=True), weightio.HardLink)
    soft = f.get("soft_abs", getlink=True)
    assert isinstance(soft, weightio.SoftLink) and soft.path == "/data/x"
    assert f["data"].get("soft_rel", getlink=True).path == "x"
    assert f.get("dangling", getlink=True).path == "/nowhere"
    ext = f.get("ext", getlink=True)
    assert isinstance(ext, weightio.ExternalLink)
    assert (ext.filename, ext.path) == (f"links-{libver}_target.h5", "/target_ds")
    assert f.get("no_such_link", getlink=True) is None


@pytest.mark.parametrize("libver", LIBVERS)
def test_dangling_soft_link_is_listed_but_not_resolvable(variant_path, wfile, libver):
    f = wfile(variant_path("links", libver))
    assert "dangling" in f.keys()
    assert "dangling" in f  # like h5py: the link exists even if its target does not
    assert f.get("dangling") is None
    assert f.get("dangling", "default") == "default"
    with pytest.raises(KeyError):
        f["dangling"]


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("link", ["ext", "ext_missing"])
def test_external_links_are_never_followed(variant_path, wfile, libver, link):
    f = wfile(variant_path("links", libver))
    assert link in f.keys()
    with pytest.raises(weightio.UnsupportedFeatureError, match="(?i)external"):
        f[link]
    # get() must not hide the refusal behind its default.
    with pytest.raises(weightio.UnsupportedFeatureError):
        f.get(link)


@pytest.mark.parametrize("libver", LIBVERS)
def test_external_links_are_never_followed_even_with_fallback(variant_path, wfile, libver):
    f = wfile(variant_path("links", libver), fallback=True)
    with pytest.raises(weightio.UnsupportedFeatureError):
        f["ext"]


@pytest.mark.parametrize("libver", LIBVERS)
def test_hard_links_reach_the_same_object(variant_path, wfile, libver):
    f = wfile(variant_path("links", libver))
    np.testing.assert_array_equal(f["x_again"][()], f["data/x"][()])
    assert f["x_again"].attrs["role"] == "the original"
    assert f["x_again"].name == "/x_again"
    assert list(f["g_again"]) == list(f["data/g"])


@pytest.mark.parametrize("libver", LIBVERS)
def test_hard_link_cycle_can_be_walked_and_visited(variant_path, wfile, h5file, libver):
    path = variant_path("links", libver)
    f = wfile(path)
    assert f["data/g/parent/g/parent/x"].name == "/data/g/parent/g/parent/x"
    # visit() sees every object once, so the cycle terminates; soft and
    # external links are skipped; names and order are h5py's.
    assert oracle.visit_names(f) == oracle.visit_names(h5file(path)) == ["data", "data/g", "data/g/y", "data/x"]


@pytest.mark.parametrize("libver", LIBVERS)
def test_visit_is_in_name_order_even_in_track_ordered_groups(variant_path, wfile, h5file, libver):
    path = variant_path("groups_deep", libver)
    names = oracle.visit_names(wfile(path)["ordered"])
    assert names == oracle.visit_names(h5file(path)["ordered"])
    assert names[:3] == ["z0", "z0/a", "z0/b"]


@pytest.mark.parametrize("libver", LIBVERS)
def test_visit_stops_at_first_non_none_return(variant_path, wfile, libver):
    f = wfile(variant_path("groups_deep", libver))
    seen = []

    def stop_at_level2(name):
        seen.append(name)
        return name if name.endswith("level2") else None

    assert f.visit(stop_at_level2) == "level0/level1/level2"
    assert seen[-1] == "level0/level1/level2"
    assert f.visititems(lambda name, obj: obj.name if name == "level0/data0" else None) == "/level0/data0"


@pytest.mark.parametrize("libver", LIBVERS)
def test_visit_from_a_subgroup_gives_relative_names(variant_path, wfile, h5file, libver):
    path = variant_path("groups_deep", libver)
    sub = "level0/level1/level2"
    oracle.assert_same_visit(wfile(path)[sub], h5file(path)[sub])


@pytest.mark.parametrize("libver", LIBVERS)
def test_committed_datatypes_are_listed_and_usable(variant_path, wfile, h5file, libver):
    path = variant_path("committed_datatype", libver)
    f, h = wfile(path), h5file(path)
    assert list(f) == list(h)
    assert "t_f4" in f
    assert isinstance(f.get("t_f4", getlink=True), weightio.HardLink)
    # Whether the datatype itself opens as an object is not specified.
    try:
        assert f["t_f4"].dtype == np.dtype("<f4")
    except weightio.UnsupportedFeatureError:
        pass
    oracle.assert_same_value(f["uses_f4"][()], h["uses_f4"][()], "uses_f4")
    oracle.assert_same_value(f["grp/uses_i8_be"][()], h["grp/uses_i8_be"][()], "uses_i8_be")
    oracle.assert_same_value(f.attrs["attr_uses_f4"], h.attrs["attr_uses_f4"], "attr_uses_f4")


@pytest.mark.parametrize("name,libver", NATIVE_CASES)
def test_contains_matches_h5py(variant_path, wfile, h5file, name, libver):
    """``in`` for every link of the file (soft and external ones too), absolute and relative,
    and for paths that miss at their end, in their middle, or below a dataset."""
    path = variant_path(name, libver)
    f, h = wfile(path), h5file(path)
    found: list[str] = []
    h.visit_links(found.append)
    probes = {"", "missing", "/missing", "missing/deeper"}
    for p in found:
        parent = p.rpartition("/")[0]
        probes |= {p, "/" + p, p + "/missing", "missing/" + p, f"{parent}/nope" if parent else "nope"}
    for probe in sorted(probes):
        assert (probe in f) == (probe in h), probe


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("n", LINK_COUNTS)
def test_hard_group_paths_in_one_call(tmp_path, libver, n):
    """``Group._hard_group`` (the Keras stores' lookup of ``<path>/vars``): the group and its
    member names in h5py's order where every part of the path is a hard link to a group, in
    compact and dense link storage; None for anything else, which the caller looks up itself."""
    import h5py

    path = tmp_path / "paths.h5"
    with h5py.File(path, "w", libver=libver) as f:
        vars_ = f.create_group(f"layers/block_{n}/vars")
        for i in range(n):
            vars_[str(i)] = np.arange(i + 1)
        f["layers/data"] = np.zeros(3)
        f["layers/soft"] = h5py.SoftLink(f"/layers/block_{n}")
        f["layers/external"] = h5py.ExternalLink("elsewhere.h5", "/group")
        expected = list(vars_.keys())
    with weightio.File(path) as f:
        group, names = f._hard_group(f"layers/block_{n}/vars")
        assert names == expected == list(group.keys())
        assert group.name == f"/layers/block_{n}/vars"
        inner, _ = f["layers"]._hard_group(f"block_{n}")
        assert inner.name == f"/layers/block_{n}"
        for other in ("layers/soft/vars", "layers/external", "layers/data", "layers/missing", "layers//block",
                      "", "layers/", f"layers/block_{n}/vars/0"):
            assert f._hard_group(other) is None, other
