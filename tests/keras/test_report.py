"""``LoadReport.loaded`` / ``skipped`` / ``unused`` and ``progress=`` of Keras 3 loads, on the
backend of this process, checked against the files themselves (read with h5py) and the
model's variables after the load. (tf-keras loads: ``test_convert_legacy.py``.)

Run by ``test_backends.py`` once per backend (see ``conftest.py``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest

import models
import weightio.keras as wk
from test_oracle import FORMATS, LEGACY, NATIVE, SOURCE, TARGETS, _mlp, _with_optimizer, save, state, to_numpy
from weightio.keras import Format, LoadReport

REPORT_MODELS = ["sequential_dense", "functional_rnn", "nested_seq_in_functional", "subclassed"]


@contextmanager
def opened(path: Path, fmt: str, entry: str) -> Iterator[tuple[h5py.File, str]]:
    """The HDF5 file that holds ``entry`` and the entry's path inside it."""
    if fmt == "keras_zip":
        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
            yield f, entry
    elif fmt == "sharded_json":
        shard, inner = entry.split(":", 1)
        with h5py.File(path.parent / shard) as f:
            yield f, inner
    else:
        with h5py.File(path) as f:
            yield f, entry


def datasets(path: Path, fmt: str) -> set[str]:
    """Every dataset entry of a saved file, named as LoadReport names them."""
    if fmt == "sharded_json":
        import json

        shards = {n for v in json.loads(path.read_text())["weight_map"].values() for n in (v if isinstance(v, list) else [v])}
        return {f"{shard}:{entry}" for shard in shards for entry in datasets(path.parent / shard, "weights_h5")}
    found: set[str] = set()
    with opened(path, fmt, "") as (f, _):
        f.visititems(lambda name, obj: found.add("/" + name) if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_entries_hold_values(report: LoadReport, model: keras.Model, path: Path, fmt: str) -> None:
    """Every (variable, entry) of ``loaded`` names a dataset holding the variable's value."""
    variables = {v.path: v for v in model.weights}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables.update({v.path: v for v in optimizer.variables})
    for variable_path, entry in report.loaded:
        with opened(path, fmt, entry) as (f, inner):
            stored = f[inner][()]
        value = to_numpy(variables[variable_path])
        assert stored.shape == value.shape and np.array_equal(stored.astype(value.dtype), value), (variable_path, entry)


def entries_used(report: LoadReport) -> set[str]:
    return {part for _, entry in report.loaded for part in entry.split(" + ")}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, fmt: str) -> Path:
        if (name, fmt) not in cache:
            source = _mlp(SOURCE) if name == "mlp" else models.build(name, seed=0)
            cache[name, fmt] = save(source, fmt, root / name / fmt)
        return cache[name, fmt]

    return get


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", REPORT_MODELS)
def test_report_of_a_full_load(files, name: str, fmt: str) -> None:
    """Every weight loaded from the entry that holds its value; nothing skipped or unused;
    the same report when the load is repeated (weightio then replays its traversal)."""
    path = files(name, fmt)
    model = models.build(name, seed=1)
    first = wk.load_weights(model, path)
    assert sorted(p for p, _ in first.loaded) == sorted(v.path for v in model.weights)
    assert len(first.loaded) == first.variables_assigned
    assert_entries_hold_values(first, model, path, fmt)
    assert first.skipped == []
    assert first.unused == sorted(datasets(path, fmt) - entries_used(first)) == []
    again = wk.load_weights(model, path)
    assert (again.loaded, again.skipped, again.unused) == (first.loaded, first.skipped, first.unused)


@pytest.mark.parametrize("fmt", LEGACY)
def test_report_by_name(files, fmt: str) -> None:
    """by_name: model layers without a file layer of their name are skipped; the file layer
    the model lacks ("b") is unused."""
    path = files("mlp", fmt)
    model = _mlp(TARGETS["renamed_and_extra"])
    report = wk.load_weights(model, path, by_name=True)
    assert [p for p, _ in report.loaded] == [v.path for layer in ("a", "bn", "c") for v in _legacy(model, layer)]
    assert [name for name, _ in report.skipped] == ["new", "extra"]
    assert all(reason.startswith("by_name: no layer") for _, reason in report.skipped)
    assert report.unused == sorted(datasets(path, fmt) - entries_used(report))
    assert report.unused and all("/b/" in entry for entry in report.unused)
    assert_entries_hold_values(report, model, path, fmt)


def _legacy(model: keras.Model, name: str) -> list[Any]:
    layer = model.get_layer(name)
    return layer.trainable_weights + layer.non_trainable_weights


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_skip_mismatch(files, fmt: str) -> None:
    """skip_mismatch: what was skipped is listed with the reason; its entries are unused."""
    path = files("mlp", fmt)
    model = _mlp(TARGETS["shape_mismatch"])
    with pytest.warns(UserWarning):
        report = wk.load_weights(model, path, skip_mismatch=True)
    loaded = {p for p, _ in report.loaded}
    skipped = [name for name, _ in report.skipped]
    assert "mlp/a/kernel" in loaded and "mlp/b/kernel" not in loaded
    if fmt in LEGACY:  # per weight
        assert "mlp/b/kernel" in skipped and "mlp/b/bias" in skipped
        assert all(reason.startswith("shape mismatch") for _, reason in report.skipped)
        assert loaded | set(skipped) == {v.path for v in model.weights} and not loaded & set(skipped)
    else:  # per object, with Keras's error
        assert "b" in skipped
        assert all(reason.startswith("skip_mismatch:") for _, reason in report.skipped)
    assert report.unused == sorted(datasets(path, fmt) - entries_used(report))
    assert any("/b/" in e or "/dense_1/" in e for e in report.unused)
    assert_entries_hold_values(report, model, path, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_optimizer_state_not_loaded(tmp_path: Path, fmt: str) -> None:
    """A compiled model's file loaded into an uncompiled model: the optimizer's entries are
    unused (full-model .h5: Keras's load_weights never reads them; save_weights_to_hdf5_group
    writes none)."""
    path = save(_with_optimizer(compiled=True, built=True, seed=0), fmt, tmp_path)
    model = _with_optimizer(compiled=False, built=False, seed=1)
    report = wk.load_weights(model, path)
    assert report.unused == sorted(datasets(path, fmt) - entries_used(report))
    assert all("optimizer" in entry for entry in report.unused), report.unused
    assert bool(report.unused) == (fmt != "legacy_h5")
    assert len(report.loaded) == len(model.weights)


@pytest.mark.parametrize("fmt", ["weights_h5", "sharded_json"])
def test_report_objects_to_skip(files, fmt: str) -> None:
    model = _mlp(SOURCE)
    report = wk.load_weights(model, files("mlp", fmt), objects_to_skip=[model.layers[1]])
    assert report.skipped == [("b", "objects_to_skip")]
    assert "mlp/b/kernel" not in {p for p, _ in report.loaded}
    assert len(report.unused) == 2


def test_report_of_keras_fallback_is_empty() -> None:
    report = LoadReport("x", Format.LEGACY_H5, 0, 0.0, by_keras=True)
    assert report.loaded == report.skipped == report.unused == []


# -- progress ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_progress_callable(files, fmt: str) -> None:
    """Called first with 0, then with growing byte counts up to the total; same values as
    a load without progress; on repeated loads too (the replayed traversal)."""
    path = files("functional_rnn", fmt)
    expected = wk.load_weights(plain := models.build("functional_rnn", seed=1), path) and state(plain)
    model = models.build("functional_rnn", seed=1)
    for _ in range(2):
        calls: list[tuple[int, int]] = []
        wk.load_weights(model, path, progress=lambda done, total: calls.append((done, total)))
        total = calls[0][1]
        assert total > 0 and calls[0] == (0, total) and calls[-1] == (total, total)
        assert all(t == total for _, t in calls)
        done = [d for d, _ in calls]
        assert done == sorted(done) and len(calls) >= 2
        assert state(model) == expected


@pytest.mark.parametrize("fmt", ["legacy_h5", "weights_h5"])
def test_progress_true_off_a_terminal(files, fmt: str, capsys) -> None:
    """progress=True draws only on a terminal: here (captured stderr), nothing."""
    path = files("sequential_dense", fmt)
    model = models.build("sequential_dense", seed=1)
    wk.load_weights(model, path, progress=True)
    assert state(model) == state(models.build("sequential_dense", seed=0))
    assert capsys.readouterr().err == ""


def test_progress_true_on_a_terminal(files, monkeypatch) -> None:
    """On a terminal and for a big enough read, the CLI's bar is used (its update() gets
    every byte)."""
    from weightio.tools import progress as bars

    seen: list[tuple[int, str]] = []
    updates: list[int] = []

    class Bar(bars.Progress):
        def update(self, n: int) -> None:
            updates.append(n)

    monkeypatch.setattr(bars, "progress", lambda total, label: seen.append((total, label)) or Bar())
    path = files("sequential_dense", "weights_h5")
    wk.load_weights(models.build("sequential_dense", seed=1), path, progress=True)
    ((total, label),) = seen
    assert label == f"loading {path.name}" and sum(updates) == total > 0


def test_progress_batches_are_balanced() -> None:
    """Batches: every index once, each batch largest first, never smaller than threads x
    the largest dataset (a batch lasts as long as its largest dataset)."""
    from weightio.keras.progress import batches

    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(1, 1000, 300)] + [5000, 4000]
    for threads in (1, 2, 4):
        cut = batches(sizes, 8, threads)
        assert sorted(i for b in cut for i in b) == list(range(len(sizes)))
        assert all([sizes[i] for i in b] == sorted((sizes[i] for i in b), reverse=True) for b in cut)
        assert len(cut) == min(8, sum(sizes) // (threads * 5000))
        loads = [sum(sizes[i] for i in b) for b in cut]
        assert max(loads) - min(loads) <= 5000
    assert batches([], 8, 2) == []
    assert batches([0, 0], 8, 2) == [[0, 1]]  # empty datasets: one batch


def test_progress_argument_checked(files) -> None:
    with pytest.raises(TypeError, match="progress must be"):
        wk.load_weights(_mlp(SOURCE), files("mlp", "weights_h5"), progress="yes")


@pytest.mark.parametrize("fmt", NATIVE)
def test_convert_legacy_changes_nothing_for_native_files(files, fmt: str) -> None:
    path = files("mlp", fmt)
    a, b = _mlp(TARGETS["same"]), _mlp(TARGETS["same"])
    wk.load_weights(a, path)
    wk.load_weights(b, path, convert_legacy=True)
    assert state(a) == state(b)

