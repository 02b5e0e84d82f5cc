"""``load_weights(..., convert_legacy=True)`` against tf-keras, on the backend of this process.

tf-keras is the oracle: it converts old layouts (``preprocess_weights_for_loading``) and
Keras 3 does not. Each case is a small model built twice, with tf-keras and with Keras 3,
and the values one of its layers had in an old file (Keras 1 without ``keras_version``,
Theano kernel layouts, per-gate LSTM/GRU/ConvLSTM2D arrays, CuDNN RNN weights; inside
Bidirectional, TimeDistributed and nested models). Checked:

* ``convert.preprocess_weights`` on the Keras 3 layer returns exactly what tf-keras's
  ``preprocess_weights_for_loading`` returns on the tf-keras layer, for the same arrays;
* a legacy HDF5 file written with h5py in that layout, loaded by tf-keras's own
  ``model.load_weights`` into the tf-keras model and by weightio with ``convert_legacy=True``
  into the Keras 3 model, gives identical variables (and close outputs where the maths is
  the same on every backend);
* without ``convert_legacy`` weightio does exactly what Keras 3's own loader does.

Also here, since tf-keras is imported anyway: ``LoadReport`` of tf-keras loads.
Run by ``test_backends.py`` once per backend (see ``conftest.py``).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tf_keras  # noqa: E402  (imports TensorFlow: the oracle runs in every backend's process)
from tf_keras.src.saving.legacy import hdf5_format  # noqa: E402

import weightio.keras as wk  # noqa: E402
from test_oracle import keras_load, state, weightio_load  # noqa: E402
from weightio.keras import convert  # noqa: E402

BACKEND = keras.backend.backend()


@dataclass
class Case:
    """``make(lib)`` builds the model with tf-keras or Keras 3; ``stored`` gives, for each
    layer with weights, the shapes of the arrays an old file holds for it."""

    make: Callable[[Any], Any]
    stored: dict[str, list[tuple[int, ...]]]
    keras_version: str | None  # None: a Keras 1 file (no attribute)
    backend: str | None = "theano"
    outputs: bool = True  # compare outputs too (no channels_first convolution: TF's CPU lacks it)


def _seq(lib: Any, shape: tuple[int, ...], *layers: Any) -> Any:
    return lib.Sequential([lib.Input(shape), *layers], name="model")


def _gates(n: int, *shapes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Keras 1's per-gate arrays: (kernel, recurrent kernel, bias) for each of n gates."""
    return [shape for _ in range(n) for shape in shapes]


def _nested(lib: Any, functional: bool) -> Any:
    L = lib.layers
    if functional:  # a Keras-1 Conv1D kernel and a Theano Conv2D kernel inside a Functional
        x = lib.Input((10, 2))
        y = L.Conv1D(4, 3, name="inner_conv1d")(x)
        inner = lib.Model(x, L.BatchNormalization(name="inner_bn")(y), name="inner")
        return _seq(lib, (10, 2), inner, L.Flatten(), L.Dense(2, name="head"))
    inner = lib.Sequential(
        [lib.Input((5, 4)), L.LSTM(3, return_sequences=True, name="inner_lstm"), L.BatchNormalization(name="inner_bn")],
        name="inner",
    )
    return _seq(lib, (5, 4), inner, L.Flatten(), L.Dense(2, name="head"))


def _bn(n: int) -> list[tuple[int, ...]]:
    return [(n,)] * 4  # gamma, beta, moving mean, moving variance
CASES: dict[str, Case] = {
    # Keras 1 (no keras_version)
    "keras1_conv1d_legacy": Case(
        lambda lib: _seq(lib, (10, 2), lib.layers.Conv1D(4, 3, name="c")), {"c": [(4, 2, 3, 1), (4,)]}, None
    ),
    "keras1_conv1d": Case(
        lambda lib: _seq(lib, (10, 2), lib.layers.Conv1D(4, 3, name="c")), {"c": [(3, 1, 2, 4), (4,)]}, None
    ),
    "keras1_conv2d_channels_first": Case(
        lambda lib: _seq(lib, (2, 6, 7), lib.layers.Conv2D(4, (2, 3), data_format="channels_first", name="c")),
        {"c": [(4, 2, 2, 3), (4,)]},
        None,
        outputs=False,
    ),
    "current_keras1_conv2d_channels_last": Case(
        lambda lib: _seq(lib, (6, 7, 2), lib.layers.Conv2D(4, (2, 3), name="c")), {"c": [(2, 3, 2, 4), (4,)]}, None
    ),
    "keras1_conv2d_transpose_channels_last": Case(
        lambda lib: _seq(lib, (5, 6, 2), lib.layers.Conv2DTranspose(4, (2, 3), name="c")),
        {"c": [(2, 3, 2, 4), (4,)]},
        None,
    ),
    "keras1_conv2d_transpose_channels_first": Case(
        lambda lib: _seq(lib, (2, 5, 6), lib.layers.Conv2DTranspose(4, (2, 3), data_format="channels_first", name="c")),
        {"c": [(4, 2, 2, 3), (4,)]},
        None,
        outputs=False,
    ),
    "keras1_conv3d_channels_first": Case(
        lambda lib: _seq(lib, (2, 4, 4, 5), lib.layers.Conv3D(3, (2, 2, 3), data_format="channels_first", name="c")),
        {"c": [(3, 2, 2, 2, 3), (3,)]},
        None,
        outputs=False,
    ),
    "keras1_gru_9_arrays": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.GRU(3, reset_after=False, name="r")),
        {"r": _gates(3, (4, 3), (3, 3), (3,))},
        None,
    ),
    "keras1_lstm_12_arrays": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.LSTM(3, name="r")), {"r": _gates(4, (4, 3), (3, 3), (3,))}, None
    ),
    "keras1_conv_lstm2d_12_arrays": Case(
        lambda lib: _seq(lib, (3, 5, 6, 2), lib.layers.ConvLSTM2D(2, (2, 3), recurrent_activation="sigmoid", name="r")),
        {"r": _gates(4, (2, 3, 2, 2), (2, 3, 2, 2), (2,))},
        None,
    ),
    "keras1_bidirectional_lstm": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.Bidirectional(lib.layers.LSTM(3, name="lstm"), name="bidi")),
        {"bidi": _gates(4, (4, 3), (3, 3), (3,)) * 2},
        None,
    ),
    "keras1_time_distributed_lstm": Case(
        lambda lib: _seq(lib, (2, 5, 4), lib.layers.TimeDistributed(lib.layers.LSTM(3, name="lstm"), name="td")),
        {"td": _gates(4, (4, 3), (3, 3), (3,))},
        None,
    ),
    "keras1_nested_functional": Case(
        lambda lib: _nested(lib, functional=True), {"inner": [(4, 2, 3, 1), (4,), *_bn(4)], "head": [(32, 2), (2,)]}, None
    ),
    # Theano kernel layout (any version): the stored shape differs from the variable's
    "theano_conv2d": Case(
        lambda lib: _seq(lib, (6, 7, 2), lib.layers.Conv2D(4, (2, 3), name="c")), {"c": [(2, 4, 3, 2), (4,)]}, "2.2.4"
    ),
    "theano_conv_lstm2d": Case(
        lambda lib: _seq(lib, (3, 5, 6, 3), lib.layers.ConvLSTM2D(2, (2, 3), recurrent_activation="sigmoid", name="r")),
        {"r": [(3, 8, 3, 2), (2, 8, 3, 2), (8,)]},
        "2.2.4",
    ),
    "theano_time_distributed_conv2d": Case(
        lambda lib: _seq(lib, (2, 6, 7, 2), lib.layers.TimeDistributed(lib.layers.Conv2D(4, (2, 3), name="conv"), name="td")),
        {"td": [(2, 4, 3, 2), (4,)]},
        "2.2.4",
    ),
    # CuDNN RNN weights (any version)
    "cudnn_lstm": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.LSTM(3, name="r")), {"r": [(4, 12), (3, 12), (24,)]}, "2.2.4", "tensorflow"
    ),
    "cudnn_gru": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.GRU(3, name="r")), {"r": [(4, 9), (3, 9), (18,)]}, "2.2.4", "tensorflow"
    ),
    "cudnn_bidirectional_gru": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.Bidirectional(lib.layers.GRU(3, name="gru"), name="bidi")),
        {"bidi": [(4, 9), (3, 9), (18,)] * 2},
        "2.2.4",
        "tensorflow",
    ),
    "cudnn_nested_sequential": Case(
        lambda lib: _nested(lib, functional=False),
        {"inner": [(4, 12), (3, 12), (24,), *_bn(3)], "head": [(15, 2), (2,)]},
        "2.2.4",
        "tensorflow",
    ),
    # already in the current layout: nothing to convert
    "current_lstm": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.LSTM(3, name="r")), {"r": [(4, 12), (3, 12), (12,)]}, "2.2.4", "tensorflow"
    ),
    "current_gru_reset_after": Case(
        lambda lib: _seq(lib, (5, 4), lib.layers.GRU(3, name="r")), {"r": [(4, 9), (3, 9), (2, 9)]}, "2.2.4", "tensorflow"
    ),
}


def stored_values(name: str) -> dict[str, list[np.ndarray]]:
    """Deterministic random arrays in the old layout (variances positive, for BatchNorm)."""
    out = {}
    for layer, shapes in CASES[name].stored.items():
        rng = np.random.default_rng(zlib.crc32(f"{name}/{layer}".encode()))
        arrays = [rng.standard_normal(shape).astype("float32") for shape in shapes]
        if layer == "inner":  # nested models end with a BatchNormalization: positive variance
            arrays[-1] = np.abs(arrays[-1]) + 0.5
        out[layer] = arrays
    return out


def write_old_file(path: Path, name: str) -> Path:
    """The legacy HDF5 layout as old Keras wrote it (Keras 1: no ``keras_version``)."""
    case = CASES[name]
    values = stored_values(name)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in values]
        if case.keras_version is not None:
            f.attrs["keras_version"] = case.keras_version.encode()
        if case.backend is not None:
            f.attrs["backend"] = case.backend.encode()
        for layer, arrays in values.items():
            group = f.create_group(layer)
            names = [f"{layer}_param_{i}" for i in range(len(arrays))]  # Keras 1's naming
            group.attrs["weight_names"] = [n.encode() for n in names]
            for weight_name, array in zip(names, arrays):
                group[weight_name] = array
    return path


_BUILT: dict[tuple[str, str, int], Any] = {}


def build(name: str, lib: Any, slot: int = 0) -> Any:
    """The case's model with fresh random values (so a load that does nothing shows).
    Models are built once per (case, library, slot) and re-randomized: building is what
    costs (JAX traces every layer)."""
    key = (name, lib.__name__, slot)
    if key not in _BUILT:
        _BUILT[key] = CASES[name].make(lib)
    model = _BUILT[key]
    rng = np.random.default_rng(99)
    model.set_weights(
        [
            (np.abs(rng.standard_normal(tuple(w.shape))) + 0.5 if "variance" in w.name else rng.standard_normal(tuple(w.shape)))
            .astype("float32")
            for w in model.weights
        ]
    )
    return model


def tf_keras_values(model: Any) -> dict[str, list[np.ndarray]]:
    return {
        layer.name: [w.numpy() for w in layer.trainable_weights + layer.non_trainable_weights]
        for layer in model.layers
        if layer.weights
    }


def keras3_values(model: Any) -> dict[str, list[np.ndarray]]:
    return {
        layer.name: [np.array(keras.ops.convert_to_numpy(w.value)) for w in layer.trainable_weights + layer.non_trainable_weights]
        for layer in model.layers
        if layer.weights
    }


def assert_same_values(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> None:
    assert list(a) == list(b)
    for layer in a:
        assert len(a[layer]) == len(b[layer]), layer
        for x, y in zip(a[layer], b[layer]):
            assert x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes(), layer


def sample(model: Any) -> np.ndarray:
    shape = model.inputs[0].shape
    return np.random.default_rng(5).standard_normal((2, *shape[1:])).astype("float32")


# -- each conversion against tf-keras's preprocess_weights_for_loading ----------------------


@pytest.mark.parametrize("name", list(CASES))
def test_preprocess_matches_tf_keras(name: str) -> None:
    case = CASES[name]
    ours, theirs = build(name, keras), build(name, tf_keras)  # only their layers' shapes matter
    values = stored_values(name)
    converted_any = False
    for layer_name, arrays in values.items():
        expected = hdf5_format.preprocess_weights_for_loading(
            theirs.get_layer(layer_name), list(arrays), case.keras_version or "1", case.backend
        )
        got = convert.preprocess_weights(ours.get_layer(layer_name), list(arrays), case.keras_version or "1", case.backend)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            g, e = np.asarray(g), np.asarray(e)
            assert g.shape == e.shape and g.dtype == e.dtype and np.array_equal(g, e), layer_name
        converted_any |= len(got) != len(arrays) or any(np.shape(g) != a.shape or not np.array_equal(g, a) for g, a in zip(got, arrays))
    # The cases convert something, except the ones that say they are current already.
    assert converted_any != name.startswith("current_")


def test_preprocess_reads_only_what_it_converts(tmp_path: Path) -> None:
    """Lazy values keep their identity (and stay unread) where nothing is converted."""
    from weightio import File
    from weightio.keras.prefetch import Deferred

    path = write_old_file(tmp_path / "w.h5", "keras1_conv2d_channels_first")
    model = build("keras1_conv2d_channels_first", keras)
    with File(path) as f:
        deferred = Deferred(f)
        kernel, bias = (deferred.index[f"/c/c_param_{i}"] for i in range(2))
        got = convert.preprocess_weights(model.get_layer("c"), [kernel, bias], "1", "theano")
        assert got[1] is bias and bias._array is None
        assert got[0] is not kernel and got[0].shape == (2, 3, 2, 4)


# -- whole files: tf-keras's load_weights vs weightio's convert_legacy=True ----------------


@pytest.fixture(scope="module")
def old_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("old")
    return {name: write_old_file(root / f"{name}.h5", name) for name in CASES}


@pytest.mark.parametrize("by_name", [False, True], ids=["topological", "by_name"])
@pytest.mark.parametrize("name", list(CASES))
def test_file_matches_tf_keras(old_files, name: str, by_name: bool) -> None:
    path = old_files[name]
    reference = build(name, tf_keras)
    reference.load_weights(str(path), by_name=by_name)
    mine = build(name, keras)
    report = wk.load_weights(mine, path, convert_legacy=True, by_name=by_name)
    assert_same_values(keras3_values(mine), tf_keras_values(reference))
    assert report.variables_assigned == len(mine.weights)
    assert not report.skipped and not report.unused
    if CASES[name].outputs and not by_name:
        x = sample(mine)
        expected = reference(x, training=False).numpy()
        got = keras.ops.convert_to_numpy(mine(x, training=False))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_converted_entries_in_report(old_files) -> None:
    """A value joined from per-gate arrays names all of them, in gate order i, f, c, o."""
    model = build("keras1_lstm_12_arrays", keras)
    report = wk.load_weights(model, old_files["keras1_lstm_12_arrays"], convert_legacy=True)
    loaded = dict(report.loaded)
    assert loaded["model/r/lstm_cell/kernel"] == " + ".join(f"/r/r_param_{i}" for i in (0, 6, 3, 9))
    assert loaded["model/r/lstm_cell/bias"] == " + ".join(f"/r/r_param_{i}" for i in (2, 8, 5, 11))
    assert not report.unused


@pytest.mark.parametrize("name", list(CASES))
def test_without_convert_legacy_is_keras(old_files, name: str) -> None:
    """The default is Keras 3's own behaviour, error or not (most cases fail in Keras 3)."""
    ref, mine = build(name, keras), build(name, keras, slot=1)
    before = state(mine)
    ref_out, mine_out = keras_load(ref, old_files[name]), weightio_load(mine, old_files[name])
    assert mine_out.describe_error() == ref_out.describe_error()
    assert mine_out.warnings == ref_out.warnings
    assert state(mine) == (before if ref_out.error is not None else state(ref))
    if name.startswith("current_"):
        assert ref_out.error is None


def test_convert_legacy_is_all_or_nothing(tmp_path: Path) -> None:
    """A conversion that cannot fit (a GRU(reset_after=False) file into reset_after=True)
    leaves the values to Keras's shape check: nothing is assigned."""
    path = write_old_file(tmp_path / "w.h5", "keras1_gru_9_arrays")
    target = lambda: _seq(keras, (5, 4), keras.layers.Dense(3, name="d"), keras.layers.GRU(3, name="r"))  # noqa: E731
    model = target()
    before = state(model)
    with pytest.raises(ValueError, match="Layer count mismatch"):
        wk.load_weights(model, path, convert_legacy=True)
    wrong = _seq(keras, (5, 4), keras.layers.GRU(3, name="r"))
    before = state(wrong)
    with pytest.raises(ValueError, match="Shape mismatch"):
        wk.load_weights(wrong, path, convert_legacy=True)
    assert state(wrong) == before


def test_convert_legacy_skip_mismatch(tmp_path: Path) -> None:
    """With skip_mismatch, what still does not fit after conversion is skipped and reported."""
    path = write_old_file(tmp_path / "w.h5", "keras1_gru_9_arrays")
    model = _seq(keras, (5, 4), keras.layers.GRU(3, name="r"))  # reset_after=True: bias (2, 9)
    with pytest.warns(UserWarning, match="Skipping loading weights"):
        report = wk.load_weights(model, path, convert_legacy=True, skip_mismatch=True)
    assert [p for p, _ in report.loaded] == ["model/r/gru_cell/kernel", "model/r/gru_cell/recurrent_kernel"]
    assert [p for p, _ in report.skipped] == ["model/r/gru_cell/bias"]
    assert "shape mismatch" in report.skipped[0][1]
    assert report.unused == [f"/r/r_param_{i}" for i in (2, 5, 8)]


def test_convert_legacy_full_model_file(tmp_path: Path) -> None:
    """Full-model files keep the weights (and keras_version) under ``model_weights``."""
    flat = write_old_file(tmp_path / "flat.h5", "keras1_lstm_12_arrays")
    path = tmp_path / "full.h5"
    with h5py.File(flat) as src, h5py.File(path, "w") as dst:
        src.copy(src["/"], dst, "model_weights")  # copies attributes: no keras_version
        for key, value in src.attrs.items():
            dst["model_weights"].attrs[key] = value
    reference = build("keras1_lstm_12_arrays", tf_keras)
    reference.load_weights(str(flat))
    mine = build("keras1_lstm_12_arrays", keras)
    wk.load_weights(mine, path, convert_legacy=True)
    assert_same_values(keras3_values(mine), tf_keras_values(reference))


def test_install_passes_convert_legacy(old_files, monkeypatch) -> None:
    model = build("keras1_lstm_12_arrays", keras)
    with wk.installed():
        model.load_weights(old_files["keras1_lstm_12_arrays"], convert_legacy=True)
    reference = build("keras1_lstm_12_arrays", tf_keras)
    reference.load_weights(str(old_files["keras1_lstm_12_arrays"]))
    assert_same_values(keras3_values(model), tf_keras_values(reference))


# -- tf-keras targets: tf-keras converts itself ------------------------------------------


@pytest.mark.parametrize("convert_legacy", [False, True])
@pytest.mark.parametrize("name", ["keras1_lstm_12_arrays", "cudnn_gru", "theano_conv2d"])
def test_tf_keras_target_converts_as_tf_keras(old_files, name: str, convert_legacy: bool) -> None:
    reference = build(name, tf_keras)
    reference.load_weights(str(old_files[name]))
    mine = build(name, tf_keras, slot=1)
    report = wk.load_weights(mine, old_files[name], convert_legacy=convert_legacy)
    assert not report.by_keras
    assert_same_values(tf_keras_values(mine), tf_keras_values(reference))


# -- LoadReport of tf-keras loads --------------------------------------------------------


def _tk_mlp(names: list[str]) -> Any:
    L = tf_keras.layers
    model = tf_keras.Sequential([tf_keras.Input((4,))] + [L.Dense(3, name=n) for n in names], name="tk")
    rng = np.random.default_rng(len(names))
    model.set_weights([rng.standard_normal(tuple(w.shape)).astype("float32") for w in model.weights])
    return model


def test_tf_keras_report(tmp_path: Path) -> None:
    source = _tk_mlp(["a", "b", "c"])
    path = tmp_path / "tk.h5"
    source.save_weights(str(path))
    model = _tk_mlp(["a", "b", "c"])
    report = wk.load_weights(model, path)
    assert report.loaded == [(w.name, f"/{w.name.split('/')[0]}/{w.name}") for w in model.weights]
    assert report.skipped == [] and report.unused == []
    with h5py.File(path) as f:
        for variable, (_, entry) in zip(model.weights, report.loaded):
            assert np.array_equal(f[entry][()], variable.numpy())

    renamed = _tk_mlp(["a", "new", "c", "d"])
    report = wk.load_weights(renamed, path, by_name=True)
    assert [p for p, _ in report.loaded] == ["a/kernel:0", "a/bias:0", "c/kernel:0", "c/bias:0"]
    assert [name for name, _ in report.skipped] == ["new", "d"]
    assert all("no layer of this name" in reason for _, reason in report.skipped)
    assert report.unused == ["/b/b/bias:0", "/b/b/kernel:0"]


def test_tf_keras_report_skip_mismatch(tmp_path: Path) -> None:
    source = _tk_mlp(["a", "b"])
    path = tmp_path / "tk.h5"
    source.save_weights(str(path))
    L = tf_keras.layers
    model = tf_keras.Sequential([tf_keras.Input((4,)), L.Dense(3, name="a"), L.Dense(5, name="b")], name="tk")
    report = wk.load_weights(model, path, by_name=True, skip_mismatch=True)
    assert [p for p, _ in report.loaded] == ["a/kernel:0", "a/bias:0"]
    assert [p for p, _ in report.skipped] == ["b/kernel:0", "b/bias:0"]
    assert sorted(report.unused) == ["/b/b/bias:0", "/b/b/kernel:0"]


def test_tf_keras_progress(tmp_path: Path) -> None:
    source = _tk_mlp(["a", "b", "c"])
    path = tmp_path / "tk.h5"
    source.save_weights(str(path))
    calls: list[tuple[int, int]] = []
    model = _tk_mlp(["a", "b", "c"])
    wk.load_weights(model, path, progress=lambda done, total: calls.append((done, total)))
    total = sum(int(np.prod(w.shape)) * 4 for w in source.weights)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert_same_values(tf_keras_values(model), tf_keras_values(source))
