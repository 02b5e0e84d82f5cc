"""The ``weightio`` command, driven as a user drives it: ``python -m weightio ...`` in a
subprocess, on files written here with h5py (``cli_fixtures``), checked against h5py and
against what the command promises (exit statuses, one-line errors, round trips)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import weightio

import cli_fixtures as fx

has_safetensors = importlib.util.find_spec("safetensors") is not None
needs_safetensors = pytest.mark.skipif(not has_safetensors, reason="safetensors not installed")


def run(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weightio", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def ok(*args: object, **kw) -> str:
    proc = run(*args, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def as_json(*args: object, **kw) -> dict:
    return json.loads(ok(*args, "--json", **kw))


def fails(*args: object, code: int = 2, **kw) -> str:
    """Runs a command that must fail cleanly; returns its one-line error."""
    proc = run(*args, **kw)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("weightio: error: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing ``modules`` fails, as if they were not installed."""
    block = tmp_path / "blocked"
    block.mkdir(exist_ok=True)
    for name in modules:
        (block / f"{name}.py").write_text(f'raise ImportError("No module named {name!r}")\n')
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(block), os.environ.get("PYTHONPATH")]))}


def h5py_tree(path: Path) -> dict[str, object]:
    """Everything h5py sees: attributes (lists of names decoded) and dataset values."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: object) -> None:
            for key, value in obj.attrs.items():
                out[f"{name}@{key}"] = [v.decode() if isinstance(v, bytes) else v for v in np.ravel(value).tolist()]
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        visit("/", f)
        f.visititems(visit)
    return out


def assert_same_h5(a: Path, b: Path) -> None:
    ta, tb = h5py_tree(a), h5py_tree(b)
    assert ta.keys() == tb.keys()
    for key, value in ta.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == tb[key].dtype and np.array_equal(value, tb[key]), key
        else:
            assert value == tb[key], key


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return fx.write_legacy(tmp_path / "model.h5")


@pytest.fixture
def keras3(tmp_path: Path) -> Path:
    return fx.write_keras3(tmp_path / "model.weights.h5")


LEGACY_KEYS = [f"{n}/{n}/{w}:0" for n, _, ws in fx.MODEL for w, _ in ws]
KERAS3_KEYS = [f"{p}/vars/{i}" for p, (_, _, ws) in zip(fx.KERAS3_PATHS, fx.MODEL) for i in range(len(ws))]
KERAS3_KEYS_BY_NAME = sorted(KERAS3_KEYS)  # (no layer has 10 or more weights, nor 10 of a class)


# -- the command itself ------------------------------------------------------------------------


def test_version_and_python_dash_m_are_the_command():
    assert ok("--version").strip() == f"weightio {weightio.__version__}"
    script = shutil.which("weightio")
    if script is not None:  # the console script of the installed package
        assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout == ok("--version")


def test_usage_errors_exit_2():
    assert run().returncode == 2
    proc = run("inspect")
    assert proc.returncode == 2 and "FILE" in proc.stderr


def test_never_imports_keras_or_tensorflow(legacy: Path, tmp_path: Path):
    for args in (("inspect", legacy), ("convert", legacy, tmp_path / "x.weights.h5"), ("diff", legacy, legacy)):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "weightio", *map(str, args)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
        assert not imported & {"keras", "tensorflow", "tf_keras", "jax", "torch"}, args


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_legacy_lists_layers_in_order_with_weights(legacy: Path):
    out = ok("inspect", legacy)
    assert "legacy Keras HDF5" in out and "keras 2.13.1, backend tensorflow" in out
    order = [out.index(f"\n  {name}") for name, _, _ in fx.MODEL]
    assert order == sorted(order)  # layer_names order, not the groups' (name) order
    assert "dense/kernel:0" in out and "(4, 3)" in out and "float32" in out
    assert "4 layers (3 with weights), 8 tensors, 35 parameters, 140 B" in out
    assert "1 layer(s) without weights: input_1" in out


@pytest.mark.parametrize("style, fixed, full_model", [("tf", True, False), ("k3", False, True)])
def test_inspect_json_agrees_with_h5py(tmp_path: Path, style: str, fixed: bool, full_model: bool):
    path = fx.write_legacy(tmp_path / "m.h5", style=style, fixed=fixed, full_model=full_model)
    info = as_json("inspect", path)
    assert info["format"] == "legacy-h5" and info["layout"] == "legacy"
    assert [layer["name"] for layer in info["layers"]] == [n for n, _, _ in fx.MODEL]
    root = "model_weights/" if full_model else ""
    with h5py.File(path) as f:
        for layer in info["layers"]:
            names = [w.decode() if isinstance(w, bytes) else w for w in f[root + layer["name"]].attrs["weight_names"]]
            assert [t["name"] for t in layer["tensors"]] == names
            for t in layer["tensors"]:
                ds = f[f"{root}{layer['name']}/{t['name']}"]
                assert (tuple(t["shape"]), t["dtype"], t["bytes"]) == (ds.shape, ds.dtype.name, ds.nbytes)
    assert info["totals"] == {"layers": 4, "layers_with_weights": 3, "tensors": 8, "params": 35, "bytes": 140}
    if full_model:
        assert [layer["class_name"] for layer in info["layers"]] == [c for _, c, _ in fx.MODEL]
        assert info["meta"]["model_class"] == "Functional"


def test_inspect_reads_chunked_layer_names(tmp_path: Path):
    model = fx.MODEL + [(f"a_rather_long_layer_name_{i:06d}", "Dropout", []) for i in range(2200)]
    path = fx.write_legacy(tmp_path / "many.h5", model)
    with h5py.File(path) as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs  # Keras's chunking
    info = as_json("inspect", path)
    assert [layer["name"] for layer in info["layers"]] == [n for n, _, _ in model]


def test_inspect_keras3_lists_vars_groups_by_name_with_their_names(keras3: Path):
    info = as_json("inspect", keras3)
    assert info["format"] == "weights-h5" and info["layout"] == "keras3"
    # A .weights.h5 file does not record model order: by name, as HDF5 lists them.
    assert [layer["name"] for layer in info["layers"]] == ["", *sorted(fx.KERAS3_PATHS)]
    labels = dict(zip(fx.KERAS3_PATHS, (n for n, _, _ in fx.MODEL)))
    assert [layer["label"] for layer in info["layers"]] == ["model"] + [labels[p] for p in sorted(labels)]
    assert [t["key"] for layer in info["layers"] for t in layer["tensors"]] == KERAS3_KEYS_BY_NAME
    assert info["meta"]["order"] == "name" and "order_by_name" in {i["code"] for i in info["issues"]}


def test_inspect_keras_zip_and_sharded_in_model_order(tmp_path: Path, keras3: Path):
    archive = fx.write_keras_zip(tmp_path / "m.keras", keras3)
    info = as_json("inspect", archive)
    assert info["format"] == "keras-zip" and info["meta"]["keras_version"] == "3.15.1"
    assert info["meta"]["model_class"] == "Functional" and info["meta"]["order"] == "model"  # from config.json
    assert [layer["name"] for layer in info["layers"]] == ["", *fx.KERAS3_PATHS]
    sharded = fx.write_sharded(tmp_path / "s.weights.json")
    info = as_json("inspect", sharded)
    assert info["format"] == "sharded-json" and info["meta"]["shards"] == ["s_00000.weights.h5", "s_00001.weights.h5"]
    assert [t["key"] for layer in info["layers"] for t in layer["tensors"]] == KERAS3_KEYS  # weight_map's order
    assert not [i for i in info["issues"] if i["level"] == "warning"]


def write_odd(path: Path) -> Path:
    """A legacy file with everything inspect should point out."""
    import ml_dtypes

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense", b"gone", b"empty", b"packed", b"bf"]
        f.attrs["keras_version"] = b"2.13.1"
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/nowhere:0"]
        g["dense/kernel:0"] = np.ones((2, 2), "f4")
        g["dense/extra:0"] = np.ones(2, "f4")
        f.create_group("empty").attrs["weight_names"] = np.zeros(0)
        g = f.create_group("packed")
        g.attrs["weight_names"] = [b"packed/gz:0", b"packed/lzf:0"]
        g.create_dataset("packed/gz:0", data=np.arange(64, dtype="f4"), chunks=(16,), compression="gzip", shuffle=True)
        g.create_dataset("packed/lzf:0", data=np.arange(64, dtype="f4"), chunks=(16,), compression="lzf")
        g = f.create_group("bf")
        g.attrs["weight_names"] = [b"bf/w:0"]
        g.create_dataset("bf/w:0", data=np.arange(4, dtype="f4").astype(ml_dtypes.bfloat16)).attrs["dtype"] = "bfloat16"
        f.create_group("stray")
    return path


def test_inspect_points_out_oddities(tmp_path: Path):
    path = write_odd(tmp_path / "odd.h5")
    info = as_json("inspect", path)
    codes = {i["code"]: i for i in info["issues"]}
    assert {"missing_layer", "dangling_weight", "unlisted_dataset", "empty_layers", "unlisted_group",
            "not_contiguous", "filtered", "h5py_fallback", "bfloat16_opaque"} <= codes.keys()  # fmt: skip
    assert codes["missing_layer"]["level"] == "warning" and "'gone'" in codes["missing_layer"]["message"]
    assert "dense/nowhere:0" in codes["dangling_weight"]["message"]
    assert "lzf" in codes["h5py_fallback"]["message"]
    bf = info["layers"][-1]["tensors"][0]
    assert (bf["dtype"], bf["bytes"]) == ("bfloat16", 8)
    text = ok("inspect", path)
    assert "warning: layer 'gone' is listed in layer_names but its group is missing" in text
    assert "(missing!)" in text


def test_inspect_tree_lists_every_object_like_h5py(tmp_path: Path):
    path = write_odd(tmp_path / "odd.h5")
    with h5py.File(path, "a") as f:
        f["soft"] = h5py.SoftLink("/dense")
        f["zz_again"] = f["dense/dense/kernel:0"]  # (after it in name order: h5py visits it once)
    (tree,) = as_json("inspect", "--tree", path)
    objects = {o["path"]: o for o in tree["objects"]}
    expected = {"/"}
    with h5py.File(path) as f:
        f.visit(lambda name: expected.add("/" + name))
        assert objects["/dense"]["attrs"]["weight_names"] == list(f["dense"].attrs["weight_names"])
    assert expected | {"/soft", "/zz_again"} == objects.keys()
    assert objects["/soft"] == {"path": "/soft", "kind": "soft link", "target": "/dense"}
    assert objects["/zz_again"] == {"path": "/zz_again", "kind": "hard link", "target": "/dense/dense/kernel:0"}
    gz = objects["/packed/packed/gz:0"]
    assert (gz["layout"], gz["chunks"], gz["filters"]) == ("chunked", [16], ["shuffle", "gzip"])
    text = ok("inspect", "--tree", path)
    assert "/soft" in text and "Soft Link {/dense}" in text and "@layer_names = ['dense', 'gone'" in text


# -- diff ------------------------------------------------------------------------------------


def test_diff_identical_files_exit_0(legacy: Path, tmp_path: Path):
    copy = shutil.copy(legacy, tmp_path / "copy.h5")
    out = ok("diff", legacy, copy)
    assert "identical: 8 tensors equal within atol=0" in out


def test_diff_reports_value_changes_against_atol(legacy: Path, tmp_path: Path):
    model = [(n, c, [(w, a.copy()) for w, a in ws]) for n, c, ws in fx.MODEL]
    model[1][2][0][1][0, 0] += 0.5
    other = fx.write_legacy(tmp_path / "other.h5", model)
    proc = run("diff", legacy, other, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    (changed,) = [p for p in report["pairs"] if p["status"] != "equal"]
    assert changed["a"]["key"] == "dense/dense/kernel:0" and changed["max_abs_diff"] == pytest.approx(0.5, abs=1e-6)
    assert run("diff", legacy, other, "--atol", "0.6").returncode == 0
    assert "values dense/dense/kernel:0: float32 (4, 3), max |a-b| = 0.5" in run("diff", legacy, other).stdout


def test_diff_reports_missing_extra_shape_and_dtype(legacy: Path, tmp_path: Path):
    model = [(n, c, list(ws)) for n, c, ws in fx.MODEL]
    model[2][2].pop()  # moving_variance gone
    model[3] = ("dense_1", "Dense", [("kernel", np.zeros((3, 5), "f4")), ("bias", fx.MODEL[3][2][1][1].astype("f8"))])
    model.append(("extra", "Dense", [("kernel", np.zeros(2, "f4"))]))
    other = fx.write_legacy(tmp_path / "other.h5", model)
    proc = run("diff", legacy, other, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    status = {p["a"]["key"]: p["status"] for p in report["pairs"] if p["status"] != "equal"}
    assert status == {"dense_1/dense_1/kernel:0": "shape", "dense_1/dense_1/bias:0": "dtype"}
    assert [t["key"] for t in report["only_in_a"]] == ["batch_normalization/batch_normalization/moving_variance:0"]
    assert [t["key"] for t in report["only_in_b"]] == ["extra/extra/kernel:0"]


def test_diff_matches_legacy_and_keras3_by_layer_name_path_or_order(tmp_path: Path, keras3: Path):
    legacy = fx.write_legacy(tmp_path / "m.h5", style="k3")
    report = as_json("diff", legacy, keras3)
    assert report["identical"] and report["matched"]["layer"] == 8
    # Before Keras 3.6 vars groups had no name: the store path from each layer's class.
    unnamed = fx.write_keras3(tmp_path / "old.weights.h5", names=False)
    names = {"dense": "d1", "dense_1": "d2"}
    full = fx.write_legacy(tmp_path / "full.h5", fx.renamed(names), full_model=True)
    report = as_json("diff", full, unnamed)
    assert report["identical"] and {k: n for k, n in report["matched"].items() if n} == {"layer": 4, "path": 4}
    # Without classes, only the model order is left, which a .weights.h5 does not record ...
    renamed = fx.write_legacy(tmp_path / "r.h5", fx.renamed(names))
    proc = run("diff", renamed, unnamed)
    assert proc.returncode == 1 and "not paired by order" in proc.stdout
    # ... and a .keras archive does.
    archive = fx.write_keras_zip(tmp_path / "m.keras", unnamed)
    report = as_json("diff", renamed, archive)
    assert report["identical"] and {k: n for k, n in report["matched"].items() if n} == {"layer": 4, "order": 4}


def test_diff_counts_nan_in_the_same_place_as_equal(tmp_path: Path):
    values = np.array([1.0, np.nan, np.inf], "f4")
    model = [("d", "Dense", [("kernel", values)])]
    a = fx.write_legacy(tmp_path / "a.h5", model)
    b = fx.write_legacy(tmp_path / "b.h5", [("d", "Dense", [("kernel", values.copy())])])
    c = fx.write_legacy(tmp_path / "c.h5", [("d", "Dense", [("kernel", np.array([1.0, 2.0, np.inf], "f4"))])])
    assert run("diff", a, b).returncode == 0
    report = json.loads(run("diff", a, c, "--json").stdout)
    assert report["pairs"][0]["max_abs_diff"] == "inf" and not report["identical"]


# -- convert ---------------------------------------------------------------------------------


@needs_safetensors
def test_convert_legacy_safetensors_round_trip(legacy: Path, tmp_path: Path):
    from safetensors import safe_open

    st = tmp_path / "m.safetensors"
    ok("convert", legacy, st)
    with safe_open(str(st), framework="np") as f:
        assert sorted(f.keys()) == sorted(LEGACY_KEYS)
        assert np.array_equal(f.get_tensor("dense/dense/kernel:0"), fx.MODEL[1][2][0][1])
    back = tmp_path / "back.h5"
    ok("convert", st, back)
    assert "identical" in ok("diff", legacy, back)
    assert_same_h5(legacy, back)  # layer_names, weight_names, keras_version, backend, values


def test_convert_legacy_npz_round_trip_keeps_key_order(legacy: Path, tmp_path: Path):
    npz = tmp_path / "m.npz"
    ok("convert", legacy, npz)
    with np.load(npz) as z:
        assert z.files == LEGACY_KEYS
        assert np.array_equal(z["dense_1/dense_1/bias:0"], fx.MODEL[3][2][1][1])
    back = tmp_path / "back.h5"
    out = ok("convert", npz, back, "--keras-version", "2.13.1")
    assert "backend unknown in the source: wrote 'tensorflow'" in out
    assert "identical" in ok("diff", legacy, back)
    with h5py.File(back) as f:  # the legacy layout Keras reads, empty layers aside (npz has none)
        assert list(f.attrs["layer_names"]) == ["dense", "batch_normalization", "dense_1"]
        assert f.attrs["keras_version"] == "2.13.1"


@needs_safetensors
def test_convert_keras3_to_flat_files_and_back(keras3: Path, tmp_path: Path):
    ok("convert", keras3, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        assert z.files == KERAS3_KEYS_BY_NAME
    for flat in ("m.npz", "m.safetensors"):
        if flat.endswith(".safetensors"):
            ok("convert", keras3, tmp_path / flat)
        back = tmp_path / f"back-{flat}.weights.h5"
        ok("convert", tmp_path / flat, back)
        assert as_json("diff", keras3, back)["matched"]["key"] == 8
    assert_same_h5(keras3, tmp_path / "back-m.safetensors.weights.h5")  # vars names, root vars too


def test_convert_legacy_to_keras3_and_back_for_flat_models(tmp_path: Path, keras3: Path):
    names = {"dense": "d1", "dense_1": "d2"}
    full = fx.write_legacy(tmp_path / "full.h5", fx.renamed(names), full_model=True)
    out = tmp_path / "out.weights.h5"
    ok("convert", full, out)  # classes from model_config, so user names are fine
    with h5py.File(out) as f:
        stores = []
        f.visititems(lambda name, obj: stores.append(name[: -len("/vars")]) if name.endswith("/vars") else None)
        assert sorted(stores) == sorted(fx.KERAS3_PATHS)
        assert f["layers/dense_1/vars"].attrs["name"] == "d2"
    assert as_json("diff", out, keras3)["matched"]["key"] == 8
    # Back to legacy needs the model order: a .weights.h5 does not have it, a .keras archive does.
    assert "it does not record its layers' model order" in fails("convert", out, tmp_path / "back.h5")
    back = tmp_path / "back.h5"
    ok("convert", fx.write_keras_zip(tmp_path / "out.keras", out, fx.renamed(names)), back)
    with h5py.File(back) as f:
        assert list(f.attrs["layer_names"]) == ["input_1", "d1", "batch_normalization", "d2"]
        assert list(f["batch_normalization"].attrs["weight_names"]) == [
            "batch_normalization/gamma", "batch_normalization/beta",
            "batch_normalization/moving_mean", "batch_normalization/moving_variance",
        ]  # fmt: skip
    assert as_json("diff", full, back)["identical"]
    # Automatic names tell the class too (weights-only tf-keras file).
    ok("convert", fx.write_legacy(tmp_path / "auto.h5"), tmp_path / "auto.weights.h5")
    assert as_json("diff", tmp_path / "auto.weights.h5", keras3)["matched"]["key"] == 8


def test_convert_refuses_what_the_layout_mapping_cannot_know(tmp_path: Path):
    named = fx.write_legacy(tmp_path / "named.h5", fx.renamed({"dense": "d1"}))
    assert "layer 'd1' has weights but its Keras class is unknown" in fails("convert", named, tmp_path / "x.weights.h5")
    lstm = tmp_path / "lstm.weights.h5"
    with h5py.File(lstm, "w") as f:
        f["layers/lstm/cell/vars/0"] = np.zeros((2, 8), "f4")
    assert "layers/lstm/cell/vars is not a top-level layer" in fails("convert", lstm, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists() and not list(tmp_path.glob(".x.h5.tmp*"))
    # One class only: by name is model order (dense, dense_1, ..., as Keras numbers them).
    mlp = [("dense", "Dense", fx.MODEL[1][2]), ("dense_1", "Dense", fx.MODEL[3][2])]
    ok("convert", fx.write_keras3(tmp_path / "mlp.weights.h5", [fx.MODEL[0], *mlp]), tmp_path / "mlp.h5")
    assert as_json("diff", tmp_path / "mlp.h5", fx.write_legacy(tmp_path / "ref.h5", mlp, style="k3"))["identical"]


def test_convert_keras_zip_and_sharded(tmp_path: Path, keras3: Path):
    archive = fx.write_keras_zip(tmp_path / "m.keras", keras3)
    ok("convert", archive, tmp_path / "z.h5")
    with h5py.File(tmp_path / "z.h5") as f:
        assert f.attrs["keras_version"] == "3.15.1"  # from metadata.json
    sharded = fx.write_sharded(tmp_path / "s.weights.json")
    ok("convert", sharded, tmp_path / "s.npz")
    assert as_json("diff", tmp_path / "s.npz", archive)["identical"]


def test_convert_usage_errors(legacy: Path, tmp_path: Path):
    assert "unknown output suffix '.xyz'" in fails("convert", legacy, tmp_path / "m.xyz")
    assert "writing .keras archives is not supported" in fails("convert", legacy, tmp_path / "m.keras")
    fails("convert", tmp_path / "missing.h5", tmp_path / "m.npz")
    (tmp_path / "exists.npz").write_bytes(b"")
    assert "already exists (use --force" in fails("convert", legacy, tmp_path / "exists.npz")
    ok("convert", legacy, tmp_path / "exists.npz", "--force")
    assert "is the source file" in fails("convert", legacy, legacy, "--force")


def test_missing_optional_packages_are_named(legacy: Path, tmp_path: Path):
    env = blocking(tmp_path, "h5py", "safetensors", "matplotlib")
    assert "needs the h5py package" in fails("convert", legacy, tmp_path / "m.weights.h5", env=env)
    assert "needs the safetensors package" in fails("convert", legacy, tmp_path / "m.safetensors", env=env)
    proc = run("bench", legacy, "--plot", tmp_path / "p.png", env=env)
    assert proc.returncode == 2 and "--plot needs the matplotlib package" in proc.stderr
    assert proc.stdout == ""  # refused before timing anything
    ok("convert", legacy, tmp_path / "m.npz", env=env)  # numpy alone writes npz


# -- bad input ---------------------------------------------------------------------------------


def test_bad_files_give_one_line_errors_naming_them(tmp_path: Path, legacy: Path, keras3: Path):
    text = tmp_path / "notes.txt"
    text.write_text("not weights\n")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(legacy.read_bytes()[:2000])
    bad_zip = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("model.weights.h5", keras3.read_bytes()[:1000])
    missing = tmp_path / "missing.h5"
    cases = {missing: "no such file", text: "not a weight file", truncated: "truncated.h5", bad_zip: "bad.keras",
             tmp_path: "is a directory"}  # fmt: skip
    runs = [(("inspect", path), path) for path in cases]
    runs += [(("inspect", "--tree", path), path) for path in (text, truncated, bad_zip)]
    runs += [(("diff", legacy, path), path) for path in (missing, truncated)]
    runs += [(("convert", path, tmp_path / "out.npz"), path) for path in (missing, truncated)]
    for args, path in runs:
        error = fails(*args)
        assert cases[path] in error and str(path) in error, (args, error)


def test_corrupt_tensor_data_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "corrupt.h5"
    fx.write_legacy(path, [("d", "Dense", [("kernel", np.arange(4096, dtype="f4"))])])
    with h5py.File(path, "a") as f:  # rewrite the weight gzip-compressed, then damage its chunk
        del f["d/d/kernel:0"]
        f["d"].create_dataset("d/kernel:0", data=np.arange(4096, dtype="f4"), chunks=(4096,), compression="gzip")
        offset = f["d/d/kernel:0"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 10 : offset + 40] = b"\xff" * 30
    path.write_bytes(bytes(data))
    ok("inspect", path)  # metadata is intact
    assert fails("convert", path, tmp_path / "o.npz").startswith(f"weightio: error: {path}: /d/d/kernel:0: ")
    assert str(path) in fails("diff", path, path)


# -- bench -----------------------------------------------------------------------------------


def test_bench_times_given_files(legacy: Path, tmp_path: Path):
    args = ["bench", legacy, "--repeat", "1", "--workdir", tmp_path / "work", "--json"]
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", tmp_path / "bench.png"]
    results = json.loads(ok(*args))
    (res,) = results["files"]
    assert res["path"] == str(legacy) and res["methods"]["weightio.load_file"]["status"] == "ok"
    assert "--plot" not in args or (tmp_path / "bench.png").stat().st_size > 0
    assert "no such file" in fails("bench", tmp_path / "missing.h5")


# -- Keras itself as the oracle ----------------------------------------------------------------


def _keras_backend() -> str | None:
    if importlib.util.find_spec("keras") is None:
        return None
    for backend, module in (("jax", "jax"), ("tensorflow", "tensorflow"), ("torch", "torch")):
        if importlib.util.find_spec(module) is not None:
            return backend
    return None


@pytest.mark.skipif(_keras_backend() is None, reason="needs Keras 3 and a backend")
def test_keras_loads_what_convert_writes(tmp_path: Path):
    """Keras writes a full-model .h5, a .weights.h5 and a .keras archive; the command converts
    the .h5 to .weights.h5 and the .keras to legacy .h5, and Keras loads both into a fresh model
    with the same values."""
    script = tmp_path / "keras_round_trip.py"
    script.write_text(
        textwrap.dedent("""
        import contextlib, io
        import numpy as np, keras
        import weightio.cli

        def cli(*args):  # weightio.cli.main in this process: Keras is imported once
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert weightio.cli.main(list(args)) == 0
            return out.getvalue()

        def build():
            inp = keras.Input((4,))
            x = keras.layers.Dense(3, name="d1")(inp)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Conv1D(2, 1)(keras.layers.Reshape((3, 1))(x))
            return keras.Model(inp, x)

        model = build()
        rng = np.random.default_rng(0)
        for v in model.weights:
            v.assign(rng.standard_normal(v.shape).astype("float32"))
        model.save("full.h5")
        model.save_weights("keras.weights.h5")
        model.save("model.keras")
        cli("convert", "full.h5", "converted.weights.h5")
        assert "identical" in cli("diff", "converted.weights.h5", "keras.weights.h5")
        cli("convert", "model.keras", "converted.h5")
        for path in ("converted.weights.h5", "converted.h5"):
            fresh = build()
            fresh.load_weights(path)
            for a, b in zip(model.weights, fresh.weights):
                assert np.array_equal(np.asarray(a), np.asarray(b)), (path, a.path)
        print("ok")
    """)
    )
    env = {**os.environ, "KERAS_BACKEND": _keras_backend() or "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# -- progress bars ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bars_only_on_a_terminal():
    code = (
        "from weightio.tools.progress import progress; "
        "print(type(progress(10**9, 'x')).__name__, type(progress(1, 'x')).__name__)"
    )
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert piped.stdout.split() == ["Progress", "Progress"]
    primary, secondary = os.openpty()
    try:
        tty = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=secondary, text=True)
    finally:
        os.close(secondary)
        os.close(primary)
    installed = [m for m in ("rich", "tqdm") if importlib.util.find_spec(m) is not None]
    expected = {"rich": "_Rich", "tqdm": "_Tqdm"}[installed[0]] if installed else "Progress"
    assert tty.stdout.split() == [expected, "Progress"]
