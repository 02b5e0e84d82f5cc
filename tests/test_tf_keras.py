"""weightio.keras.load_weights into tf-keras (Keras 2) models, with tf-keras's own
``model.load_weights`` as the oracle.

Every file is written by tf-keras itself: ``save_weights("x.h5")`` and ``save("x.h5")``
(legacy HDF5), ``save_weights("x.weights.h5")`` and ``save("x.keras")`` (tf-keras's v3
format). Each is loaded into one fresh model by tf-keras and into an identical fresh model
by weightio; both must end with the same variables (bit for bit, optimizer variables
included), the same derived state (model outputs), the same warnings, and, where tf-keras
raises, the same exception type and message, with weightio's model left exactly as it was.

tf-keras needs TensorFlow, not Keras 3's backend switch, so this runs in the main process.
"""

from __future__ import annotations

import re
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tf_keras  # the test extra installs it: a missing tf-keras fails here, loudly

import traversal_graphs
import weightio.keras as wk
from keras_spies import taken_ahead, tensorflow_read_into
from fixtures import recompress_and_corrupt, swap_gamma_and_beta
from weightio.keras import tf_keras as tf_keras_loader

L = tf_keras.layers
FORMATS = {
    "legacy_h5": ("save_weights", "w.h5"),
    "full_model_h5": ("save", "m.h5"),
    "weights_h5": ("save_weights", "w.weights.h5"),
    "keras_zip": ("save", "m.keras"),
}
V3 = ["weights_h5", "keras_zip"]


# -- models ---------------------------------------------------------------------------------


def _mlp(units: int = 2) -> Any:
    return tf_keras.Sequential(
        [tf_keras.Input((4,)), L.Dense(5, name="a"), L.BatchNormalization(name="bn"), L.Dense(units, name="b")], name="mlp"
    )


def _nested() -> Any:
    inner = tf_keras.Sequential([tf_keras.Input((5,)), L.Dense(5, name="inner_dense"), L.BatchNormalization(name="inner_bn")], name="inner")
    x = tf_keras.Input((4,))
    return tf_keras.Model(x, L.Dense(2, name="post")(inner(L.Dense(5, name="pre")(x))), name="nested")


def _rnn_conv() -> Any:
    x = tf_keras.Input((6, 6, 3))
    y = L.Conv2D(4, 3, name="conv")(x)
    y = L.Reshape((4, 16))(y)
    y = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidi")(y)
    y = L.GRU(2, name="gru")(y)
    return tf_keras.Model(x, L.Dense(1, name="out")(y), name="rnn_conv")


def _normalization() -> Any:
    norm = L.Normalization(name="norm")
    norm.adapt(np.arange(24, dtype="float32").reshape(6, 4))
    return tf_keras.Sequential([tf_keras.Input((4,)), norm, L.Dense(3, name="d")], name="normed")


def _lookup() -> Any:
    """StringLookup in tf-idf mode keeps a constant derived from its idf weights, set in
    its own ``load_own_variables``."""
    lookup = L.StringLookup(vocabulary=["a", "b", "c"], idf_weights=[0.5, 1.0, 2.0], output_mode="tf_idf", name="lookup")
    x = tf_keras.Input((3,), dtype="string")
    return tf_keras.Model(x, L.Dense(2, name="d")(lookup(x)), name="lookup_model")


class _Block(L.Layer):
    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = L.Dense(units)
        self.units = units

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")
        self.count = self.add_weight(name="count", shape=(), dtype="int32", initializer="zeros", trainable=False)

    def call(self, t: Any) -> Any:
        return self.dense(t) * self.scale


class _Subclassed(tf_keras.Model):
    def __init__(self) -> None:
        super().__init__(name="sub")
        self.enc = L.Dense(4)
        self.blocks = [_Block(4), _Block(4)]
        self.head = L.Dense(3)

    def call(self, t: Any) -> Any:
        t = self.enc(t)
        for block in self.blocks:
            t = block(t)
        return self.head(t)


def _subclassed() -> Any:
    model = _Subclassed()
    model(np.zeros((1, 4), "float32"))
    return model


def _compiled() -> Any:
    model = _mlp()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)  # its variables are randomized with the model's
    return model


BUILDERS: dict[str, Callable[[], Any]] = {
    "mlp": _mlp,
    "nested": _nested,
    "rnn_conv": _rnn_conv,
    "normalization": _normalization,
    "subclassed": _subclassed,
    "compiled": _compiled,
    "lookup": _lookup,
}
INPUTS = {
    "mlp": (4,), "nested": (4,), "rnn_conv": (6, 6, 3), "normalization": (4,), "subclassed": (4,), "compiled": (4,), "lookup": (3,),
}


def randomize(model: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    optimizer = getattr(model, "optimizer", None)
    for w in list(model.weights) + (list(optimizer.variables) if optimizer is not None else []):
        shape, dtype = np.shape(w.numpy()), w.dtype.as_numpy_dtype  # (idf weights: a dynamic shape)
        value = rng.integers(0, 9, shape) if np.issubdtype(dtype, np.integer) else rng.standard_normal(shape)
        if "variance" in w.name:
            value = np.abs(value) + 0.5
        w.assign(value.astype(dtype))
    return model


def build(name: str, seed: int) -> Any:
    return randomize(BUILDERS[name](), seed)


def state(model: Any) -> list[tuple[tuple[int, ...], str, bytes]]:
    """Every variable of the model (and of its optimizer), bit for bit, in order (not by
    name: two instances of a model get different automatic names)."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(optimizer.variables)
    return [(tuple(v.shape), v.dtype.name, np.asarray(v.numpy()).tobytes()) for v in variables]


def outputs(model: Any, name: str) -> bytes:
    if name == "lookup":
        x = np.array([["a", "c", "c"], ["b", "x", "a"]])
    else:
        x = np.random.default_rng(9).standard_normal((2, *INPUTS[name])).astype("float32")
    return np.asarray(model(x)).tobytes()


# -- running both loaders -------------------------------------------------------------------


class Outcome:
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.warnings: list[tuple[type, str]] = []

    def describe(self) -> tuple[str, str] | None:
        return None if self.error is None else (type(self.error).__name__, _no_address(str(self.error)))


def run(fn: Callable[[], Any]) -> Outcome:
    out = Outcome()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - compared by the caller
            out.error = exc
    out.warnings = [(w.category, _no_address(str(w.message))) for w in caught]
    return out


def _no_address(message: str) -> str:
    """Messages name objects by repr ("<Dense object at 0x7f...>"): the two models differ."""
    return re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", message)


def save(model: Any, fmt: str, directory: Path) -> Path:
    method, filename = FORMATS[fmt]
    path = directory / filename
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file", UserWarning)
        getattr(model, method)(str(path))
    return path


def oracle(make: Callable[[], Any], path: Path, name: str | None = None, **kwargs: Any) -> tuple[Any, Outcome, Outcome]:
    """Loads ``path`` into two fresh ``make()`` models, by tf-keras and by weightio; returns
    (weightio's model, tf-keras's outcome, weightio's outcome) after comparing them."""
    ref, mine = make(), make()
    before = state(mine)
    assert wk.is_installed() is False
    ref_out = run(lambda: ref.load_weights(str(path), **kwargs))
    mine_out = run(lambda: wk.load_weights(mine, path, **kwargs))
    assert mine_out.describe() == ref_out.describe(), (mine_out.error, ref_out.error)
    assert mine_out.warnings == ref_out.warnings
    if ref_out.error is not None:
        assert state(mine) == before, "a failed load changed the model"
    else:
        assert state(mine) == state(ref)
        if name is not None:
            assert outputs(mine, name) == outputs(ref, name)
    return mine, ref_out, mine_out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    root = tmp_path_factory.mktemp("tf_keras")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, fmt: str) -> Path:
        if (name, fmt) not in cache:
            directory = root / name / fmt
            directory.mkdir(parents=True)
            cache[name, fmt] = save(build(name, seed=0), fmt, directory)
        return cache[name, fmt]

    return get


# -- every model x every format -------------------------------------------------------------


# tf-keras saves whole subclassed models only as SavedModel, not as .h5 or .keras.
CASES = [(name, fmt) for name in BUILDERS for fmt in FORMATS if not (name == "subclassed" and FORMATS[fmt][0] == "save")]


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_every_model_and_format(files, name: str, fmt: str) -> None:
    path = files(name, fmt)
    mine, ref_out, mine_out = oracle(lambda: build(name, seed=1), path, name=name)
    assert ref_out.error is None, ref_out.error
    assert state(mine) != state(build(name, seed=1)), "nothing was loaded"
    if name != "lookup":  # StringLookup saves its idf constant, not the (randomized) variable
        source = build(name, seed=0)
        assert [np.asarray(w).tobytes() for w in mine.get_weights()] == [np.asarray(w).tobytes() for w in source.get_weights()]


@pytest.mark.parametrize("fmt", ["legacy_h5", "weights_h5", "keras_zip"])
def test_report(files, fmt: str) -> None:
    model = build("mlp", seed=1)
    report = wk.load_weights(model, files("mlp", fmt))
    assert not report.by_keras
    assert report.variables_assigned == len(model.weights) == len(report.loaded)
    assert [path for path, _ in report.loaded] == [v.name for v in model.weights] or fmt != "legacy_h5"
    assert report.unused == [] and report.skipped == []


# -- mismatches: tf-keras's errors and warnings, all-or-nothing ----------------------------


@pytest.mark.parametrize("skip_mismatch", [False, True])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_shape_mismatch_in_last_layer(files, fmt: str, skip_mismatch: bool) -> None:
    """The last layer does not fit: tf-keras raises (legacy: also for skip_mismatch without
    by_name) or, for v3 files with skip_mismatch, warns and skips that layer. tf-keras's v3
    loader has assigned the earlier layers when it raises; weightio has assigned nothing."""
    path = files("mlp", fmt)
    mine, ref_out, _ = oracle(lambda: randomize(_mlp(units=3), seed=1), path, skip_mismatch=skip_mismatch)
    if fmt in V3 and skip_mismatch:
        assert ref_out.error is None and ref_out.warnings
    else:
        assert ref_out.error is not None


def test_tf_keras_v3_partial_load_vs_all_or_nothing(files) -> None:
    path = files("mlp", "weights_h5")
    ref, mine = randomize(_mlp(units=3), seed=1), randomize(_mlp(units=3), seed=1)
    before = state(mine)
    with pytest.raises(ValueError):
        ref.load_weights(str(path))
    assert state(ref) != before, "tf-keras itself leaves the earlier layers loaded"
    with pytest.raises(ValueError):
        wk.load_weights(mine, path)
    assert state(mine) == before


@pytest.mark.parametrize("by_name", [False, True])
def test_a_first_legacy_load_lists_each_layers_weights_once(files, monkeypatch, by_name: bool) -> None:
    """tf-keras's topological loader asks for every layer's legacy weight list twice, and
    builds it from the layer's module tree each time; during a weightio load it is built once
    per layer."""
    from tf_keras.src.saving.legacy import hdf5_format

    asked: list[str] = []
    original = hdf5_format._legacy_weights

    def spy(layer: Any) -> Any:
        asked.append(layer.name)
        return original(layer)

    monkeypatch.setattr(hdf5_format, "_legacy_weights", spy)
    path = files("nested", "legacy_h5")
    ref, mine = build("nested", seed=1), build("nested", seed=1)
    ref.load_weights(str(path), by_name=by_name)
    assert by_name or len(asked) > len(set(asked)), "tf-keras itself asks twice"
    asked.clear()
    wk.load_weights(mine, path, by_name=by_name)
    assert state(mine) == state(ref)
    assert asked and len(asked) == len(set(asked))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_distribution_strategy_variables(files, fmt: str) -> None:
    """Under a tf.distribute strategy the variables are MirroredVariables (no direct assign op,
    no adoption): every format loads as tf-keras loads it, first and replayed, and a mismatch
    in the last layer changes nothing (tf-keras's own v3 loader leaves the earlier layers
    loaded)."""
    import tensorflow as tf

    path = files("mlp", fmt)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        ref, mine = randomize(_mlp(), seed=1), randomize(_mlp(), seed=1)
        wrong = randomize(_mlp(units=3), seed=1)
    assert type(mine.weights[0]).__name__ == "MirroredVariable"
    ref.load_weights(str(path))
    for _ in range(2):
        wk.load_weights(mine, path)
        assert state(mine) == state(ref)
    before = state(wrong)
    with pytest.raises(ValueError):
        wk.load_weights(wrong, path)
    assert state(wrong) == before


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("skip_mismatch", [False, True])
def test_legacy_by_name_and_skip_mismatch(files, by_name: bool, skip_mismatch: bool) -> None:
    path = files("mlp", "legacy_h5")
    oracle(lambda: randomize(_mlp(units=3), seed=1), path, by_name=by_name, skip_mismatch=skip_mismatch)
    oracle(lambda: build("mlp", seed=1), path, by_name=by_name, skip_mismatch=skip_mismatch)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_other_architecture(files, fmt: str) -> None:
    """A file of another model: tf-keras's error, weightio's model unchanged."""
    oracle(lambda: build("nested", seed=1), files("mlp", fmt))


def test_optimizer_variables_loaded(files) -> None:
    """A .keras file of a trained model holds its optimizer's variables: loaded into a
    model whose optimizer is built, as tf-keras does."""
    mine, ref_out, _ = oracle(lambda: build("compiled", seed=1), files("compiled", "keras_zip"))
    assert ref_out.error is None
    assert len(mine.optimizer.variables) > 1


# -- format by content, install() -----------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("weights_h5", "renamed.h5"), ("keras_zip", "renamed.bin"), ("legacy_h5", "renamed.keras")])
def test_format_by_content(files, tmp_path: Path, fmt: str, name: str) -> None:
    """weightio picks the format by content (tf-keras by suffix, so it fails on these): the
    result equals tf-keras's load of the correctly named file."""
    renamed = tmp_path / name
    renamed.write_bytes(files("mlp", fmt).read_bytes())
    ref, mine = build("mlp", seed=1), build("mlp", seed=1)
    ref.load_weights(str(files("mlp", fmt)))
    wk.load_weights(mine, renamed)
    assert state(mine) == state(ref)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_install(files, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = wk.load_weights

    def spy(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        calls.append(report)
        return report

    monkeypatch.setattr(wk, "load_weights", spy)
    ref, mine = build("mlp", seed=1), build("mlp", seed=1)
    ref.load_weights(str(files("mlp", fmt)))
    with wk.installed():
        mine.load_weights(str(files("mlp", fmt)))
    assert len(calls) == 1 and not calls[0].by_keras
    assert state(mine) == state(ref)


@pytest.mark.parametrize("fmt", ["legacy_h5", "full_model_h5", *V3])
def test_repeated_loads_replay(files, tmp_path: Path, fmt: str) -> None:
    """After one load weightio replays what it remembered (v3: the ``load_own_variables``
    calls; legacy: which dataset went to which variable): later loads into the same model,
    of other files and of a mismatching file (tf-keras's error, model unchanged) end as
    tf-keras's own loads do."""
    plans = tf_keras_loader._PLANS if fmt in V3 else tf_keras_loader._LEGACY_PLANS
    for name in ("mlp", "nested", "normalization", "compiled"):
        ref, mine = build(name, seed=1), build(name, seed=1)
        (tmp_path / name).mkdir()
        other = save(build(name, seed=2), fmt, tmp_path / name)
        for path in (files(name, fmt), other, files(name, fmt), other):
            ref.load_weights(str(path))
            wk.load_weights(mine, path)
            assert state(mine) == state(ref)
            assert outputs(mine, name) == outputs(ref, name)
        assert mine in plans, "no plan was remembered: nothing was replayed"
    ref, mine = build("mlp", seed=1), build("mlp", seed=1)
    ref.load_weights(str(files("mlp", fmt)))
    wk.load_weights(mine, files("mlp", fmt))
    before = state(mine)
    ref_out = run(lambda: ref.load_weights(str(files("nested", fmt))))
    mine_out = run(lambda: wk.load_weights(mine, files("nested", fmt)))
    assert ref_out.error is not None and mine_out.describe() == ref_out.describe()
    assert state(mine) == before


@pytest.mark.parametrize("fmt", V3)
def test_v3_replays_answer_from_the_remembered_store(files, tmp_path: Path, fmt: str, monkeypatch) -> None:
    """A v3 replay over an unchanged file (or one with the same layout) looks no group up:
    the first load's selections are answered from memory, with the same report; a file of
    another layout is looked up again."""
    from weightio.keras import tree_check

    monkeypatch.setattr(tree_check, "RACY_NS", 0)
    lookups: list[str] = []
    original = tf_keras_loader._Store.get

    def get(self: Any, path: str) -> Any:
        lookups.append(path)
        return original(self, path)

    monkeypatch.setattr(tf_keras_loader._Store, "get", get)
    (tmp_path / "other").mkdir()
    other = save(build("nested", seed=2), fmt, tmp_path / "other")
    ref, mine = build("nested", seed=1), build("nested", seed=1)
    seen = []
    for path in (files("nested", fmt), files("nested", fmt), other):
        lookups.clear()
        ref.load_weights(str(path))
        out = wk.load_weights(mine, path)
        assert state(mine) == state(ref)
        seen.append((bool(lookups), out.loaded, sorted(out.unused)))
    assert [looked for looked, *_ in seen] == [True, False, False]
    assert seen[1][1:] == seen[0][1:]
    lookups.clear()
    before = state(mine)
    ref_out = run(lambda: build("nested", seed=1).load_weights(str(files("mlp", fmt))))
    mine_out = run(lambda: wk.load_weights(mine, files("mlp", fmt)))
    assert ref_out.error is not None and mine_out.describe() == ref_out.describe() and state(mine) == before
    assert lookups  # another layout: looked up (and tf-keras's error)


@pytest.mark.parametrize("fmt", ["legacy_h5", "weights_h5"])
def test_first_loads_leave_the_digest_to_the_next_load(files, tmp_path: Path, fmt: str, monkeypatch) -> None:
    """A first load does not digest a file unchanged since RACY_NS before it: the next load
    of the same file does, once. A file written in place before that (gamma and beta
    swapped) has no digest to compare: it loads as tf-keras loads it, looked up (v3) or
    through tf-keras's loader (legacy), and the loads after that replay it."""
    import time

    from weightio.keras import tree_check

    monkeypatch.setattr(tree_check, "RACY_NS", 0)
    digests: list[int] = []
    layout = tree_check._layout
    monkeypatch.setattr(tree_check, "_layout", lambda *args: digests.append(1) or layout(*args))
    lookups: list[str] = []
    get = tf_keras_loader._Store.get
    monkeypatch.setattr(tf_keras_loader._Store, "get", lambda self, path: lookups.append(path) or get(self, path))
    path = tmp_path / files("mlp", fmt).name
    path.write_bytes(files("mlp", fmt).read_bytes())
    time.sleep(0.05)
    ref, mine = build("mlp", seed=1), build("mlp", seed=1)
    seen = []
    for step in ("load", "rewrite", "load", "load", "load"):
        if step == "rewrite":
            time.sleep(0.05)  # another clock tick: the write gets new times
            swap_gamma_and_beta(path)
            continue
        lookups.clear()
        ref.load_weights(str(path))
        wk.load_weights(mine, path)
        assert state(mine) == state(ref)
        seen.append((len(digests), bool(lookups)))
    assert [d for d, _ in seen] == [0, 0, 1, 1]
    if fmt == "weights_h5":
        assert [looked for _, looked in seen] == [True, True, False, False]
    assert mine in tf_keras_loader._LEGACY_PLANS or mine in tf_keras_loader._PLANS


@pytest.mark.parametrize("fmt", ["legacy_h5", "full_model_h5"])
def test_legacy_replay_follows_changes(files, tmp_path: Path, fmt: str) -> None:
    """tf-keras pairs a legacy file's values with each layer's trainable weights first, in
    the file's ``weight_names`` order: a variable made non-trainable, or a file listing the
    same datasets in another order, changes the pairing, and weightio's plan must follow."""
    path = tmp_path / files("mlp", fmt).name
    path.write_bytes(files("mlp", fmt).read_bytes())
    swap_gamma_and_beta(path)
    ref, mine = build("mlp", seed=1), build("mlp", seed=1)
    for step in (files("mlp", fmt), path, files("mlp", fmt), "freeze", path):
        if step == "freeze":
            for model in (ref, mine):
                model.get_layer("bn").trainable = False
            continue
        ref.load_weights(str(step))
        wk.load_weights(mine, step)
        assert state(mine) == state(ref)


def _wide_case(tmp_path: Path, fmt: str) -> tuple[Path, Path, Any, Any]:
    """A model with a large (64 KiB) kernel saved in ``fmt``, the same saved with other
    values and a chunk that cannot be decompressed, and two models to load them into."""

    def wide() -> Any:
        return tf_keras.Sequential([tf_keras.Input((4,)), L.Dense(4096, name="big"), L.Dense(2, name="c")], name="wide")

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good = save(randomize(wide(), 1), fmt, tmp_path / "a")
    bad = save(randomize(wide(), 2), fmt, tmp_path / "b")
    recompress_and_corrupt(bad, (4096, 2))
    return good, bad, randomize(wide(), 3), randomize(wide(), 3)


@pytest.mark.parametrize("fmt", ["legacy_h5", "full_model_h5", "weights_h5"])
def test_replay_reads_large_values_into_the_variables_tensors(tmp_path: Path, fmt: str, monkeypatch) -> None:
    """A repeated load (legacy or v3) reads a large value (the 64 KiB kernel) into a new
    tensor that the variable takes over, no copy; a later load whose file has a chunk that
    cannot be decompressed fails after that read and leaves the model as it was."""
    import weightio

    good, bad, ref, mine = _wide_case(tmp_path, fmt)
    read_into = tensorflow_read_into(monkeypatch)
    ref.load_weights(str(good))
    wk.load_weights(mine, good)
    wk.load_weights(mine, good)  # replayed
    assert state(mine) == state(ref)
    assert np.from_dlpack(mine.get_layer("big").kernel.read_value()).ctypes.data in read_into
    before = state(mine)
    with pytest.raises(weightio.Error):
        wk.load_weights(mine, bad)
    assert state(mine) == before


@pytest.mark.parametrize("fmt", ["legacy_h5", "full_model_h5"])
def test_first_topological_loads_read_large_values_into_the_variables_tensors(tmp_path: Path, fmt: str, monkeypatch) -> None:
    """With weightio's TensorFlow ops, a first legacy load (tf-keras's own loader runs) reads
    the large values into new tensors too, while the loader runs, which the variables take
    over; a file with a chunk that cannot be decompressed raises and changes nothing."""
    import weightio
    from weightio.keras import tf_ops

    built = tf_ops.build()  # (cached; CI builds them before the suite)
    tf_ops.forget()
    assert tf_ops.ops() is not None, f"weightio's TensorFlow ops did not load from {built}"

    good, bad, ref, mine = _wide_case(tmp_path, fmt)
    read_into = tensorflow_read_into(monkeypatch)
    taken = taken_ahead(monkeypatch)
    ref.load_weights(str(good))
    wk.load_weights(mine, good)  # a first load
    assert state(mine) == state(ref)
    assert np.from_dlpack(mine.get_layer("big").kernel.read_value()).ctypes.data in read_into
    assert taken == [(4, 4096)]  # read while tf-keras's loader ran
    before = state(mine)
    wk.forget_plans(mine)
    with pytest.raises(weightio.Error):
        wk.load_weights(mine, bad)
    assert state(mine) == before


def test_first_v3_loads_read_large_values_ahead(tmp_path: Path, monkeypatch) -> None:
    """A first ``.weights.h5`` load reads the large kernel while tf-keras's traversal runs,
    into a tensor the variable takes over; a file whose large value cannot be decompressed
    raises and changes nothing."""
    import weightio

    good, bad, ref, mine = _wide_case(tmp_path, "weights_h5")
    taken = taken_ahead(monkeypatch)
    ref.load_weights(str(good))
    wk.load_weights(mine, good)
    assert state(mine) == state(ref)
    assert taken == [(4, 4096)]
    recompress_and_corrupt(bad, (4, 4096))
    before = state(mine)
    wk.forget_plans(mine)
    with pytest.raises(weightio.Error):
        wk.load_weights(mine, bad)
    assert state(mine) == before
    assert taken == [(4, 4096)]


def _visits(model: Any, faster: bool) -> list[tuple[str, int]]:
    """Each (path, object) tf-keras's ``_load_state`` visits in ``model`` (no store: the walk only)."""
    from tf_keras.src.saving import saving_lib

    from weightio.keras.assign import patched
    from weightio.keras.walk import faster_tf_keras_traversal

    calls: list[tuple[str, int]] = []
    original = saving_lib._load_state

    def spy(trackable: Any, weights_store: Any, assets_store: Any, inner_path: str, **kw: Any) -> Any:
        calls.append((inner_path, id(trackable)))
        return original(trackable, weights_store, assets_store, inner_path, **kw)

    with patched(saving_lib, _load_state=spy):
        if faster:
            with faster_tf_keras_traversal():
                saving_lib._load_state(model, None, None, "", visited_trackables=set())
        else:
            saving_lib._load_state(model, None, None, "", visited_trackables=set())
    return calls


def test_the_properties_the_walk_passes_by_are_tf_keras_properties() -> None:
    """Each name the faster walk does not evaluate is a property of the tf-keras (TensorFlow)
    class it is listed under: a renamed or removed one is noticed here, not silently walked."""
    from weightio.keras.walk import _TF_KERAS_PASSED_BY, _tf_keras_passed_by

    assert len(_tf_keras_passed_by()) == sum(len(names) for names in _TF_KERAS_PASSED_BY.values())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_faster_traversal_visits_what_tf_keras_visits(name: str) -> None:
    """The same objects at the same paths in the same order as tf-keras's own walk, which
    evaluates ``_tracking_metadata`` (a JSON string) for every layer."""
    model = build(name, seed=0)
    expected = _visits(model, faster=False)
    assert len(expected) > 2
    assert _visits(model, faster=True) == expected


# -- tf-keras's _load_state where nothing fails (weightio.keras.walk.plain_tf_keras_load_state)


def test_the_plain_traversal_follows_this_tf_keras() -> None:
    """weightio's plain traversal follows tf-keras 2.21's ``_load_state``; another tf-keras
    gets its own traversal, and fails this test until ``walk._MIRRORED_TF_KERAS`` is checked."""
    from weightio.keras.walk import plain_tf_keras_traversal_known

    assert plain_tf_keras_traversal_known(), f"tf-keras {tf_keras.__version__}: check walk.plain_tf_keras_load_state"


def test_source_digests_cover_each_function_to_its_last_line(tmp_path: Path) -> None:
    """The digest that recognizes the functions the plain traversals follow covers every line
    of a function, down to the last line of a function nested at its end, and nothing outside
    it; a function without source is not recognized."""
    import importlib.util
    import linecache

    from weightio.keras.walk import source_digest, sources_match

    def load(text: str, name: str) -> Any:
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        linecache.checkcache(str(path))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    base = "# a comment\ndef f(x):\n    y = x + 1\n\n    def inner():\n        return y\n"
    variants = {
        "same": base + "\n# after\nZ = 1\n",
        "body": base.replace("x + 1", "x + 2"),
        "nested_end": base.replace("return y", "return y * 2"),
    }
    digests = {name: source_digest(load(text, f"m_{name}").f) for name, text in {"base": base, **variants}.items()}
    assert digests["same"] == digests["base"]
    assert digests["body"] != digests["base"] and digests["nested_end"] != digests["base"]
    module = load(base, "m_known")
    assert sources_match(module, {"f": digests["base"]})
    assert not sources_match(module, {"f": digests["body"]}) and not sources_match(module, {"g": digests["base"]})
    namespace: dict[str, Any] = {}
    exec(compile("def f():\n    return 1\n", "<no file>", "exec"), namespace)
    assert not sources_match(types.SimpleNamespace(f=namespace["f"]), {"f": digests["base"]})


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_plain_traversal_loads_what_tf_keras_loads(name: str, tmp_path: Path, monkeypatch) -> None:
    """A first ``.weights.h5`` load through the plain traversal calls the same objects'
    ``load_own_variables`` with the same paths, in the same order, as tf-keras's
    ``_load_state``, and gives the same variables."""
    model = build(name, seed=0)
    path = save(model, "weights_h5", tmp_path)

    mine = build(name, seed=1)
    found, states = [], []
    for plain in (False, True):
        wk.forget_plans(mine)
        randomize(mine, 1)
        monkeypatch.setattr(tf_keras_loader, "plain_tf_keras_traversal_known", lambda plain=plain: plain)
        wk.load_weights(mine, str(path))
        found.append([(id(obj), inner) for obj, inner in tf_keras_loader._PLANS[mine].steps])
        states.append(state(mine))
    assert len(found[0]) > 1
    assert found[1] == found[0]
    assert states[1] == states[0]


class _Node(tf_keras.losses.Loss):
    """An object of a synthetic graph for the traversal (a Loss: one of the classes tf-keras
    follows); its children are its attributes."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return y_pred


class _LoadingNode(_Node):
    def __init__(self, log: traversal_graphs.Log, fails: bool) -> None:
        super().__init__()
        traversal_graphs.loading(self, log, fails)

    def load_own_variables(self, store: Any) -> None:
        traversal_graphs.note(self, store)


class _PathStore:
    """A store that only tells each object the path it was asked for."""

    path = None

    def get(self, path: str) -> Any:
        self.path = path
        return self


def test_the_plain_traversal_visits_synthetic_graphs_as_tf_keras() -> None:
    """On random graphs of objects, shared objects and (nested) lists, tuples, dicts and sets:
    where no ``load_own_variables`` fails, the plain traversal loads the objects tf-keras's
    ``_load_state`` loads, at the same paths, in the same order; where one fails, it gives up
    (``NotPlain``) having followed tf-keras up to there."""
    from tf_keras.src.saving import saving_lib

    from weightio.keras.walk import faster_tf_keras_traversal, plain_tf_keras_load_state

    def tf_keras_run(root: Any, _: bool) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skip_mismatch: tf-keras warns and goes on
            saving_lib._load_state(root, _PathStore(), None, "", skip_mismatch=True, visited_trackables=set())

    def plain_run(root: Any, _: bool) -> bool:
        return traversal_graphs.finishes(plain_tf_keras_load_state, faster_tf_keras_traversal, root, _PathStore())

    traversal_graphs.check_against(_Node, _LoadingNode, tf_keras_run, plain_run, ("list", "tuple", "dict", "set"))


def test_a_first_v3_load_reads_the_assigned_values_at_its_end(files, monkeypatch) -> None:
    """On a first v3 load, layers loading through tf-keras's own ``load_own_variables`` are
    handed unread values, read in one pass at the end; Normalization (its own) gets arrays.
    The result is tf-keras's."""
    from weightio.keras.prefetch import LazyArray

    unread: dict[str, bool] = {}
    read_and_assign = tf_keras_loader.read_and_assign_tensorflow

    def spy(pairs: Any, meter: Any = None) -> Any:
        for variable, value in pairs:
            unread[variable.name] = isinstance(value, LazyArray) and value._array is None
        return read_and_assign(pairs, meter)

    monkeypatch.setattr(tf_keras_loader, "read_and_assign_tensorflow", spy)
    oracle(lambda: build("normalization", seed=1), files("normalization", "weights_h5"), name="normalization")
    assert unread["d/kernel:0"] and unread["d/bias:0"], unread
    assert not any(read for name, read in unread.items() if name.startswith("norm/")), unread


class _OwnLoader(L.Layer):
    """A layer with its own ``load_own_variables``: handed arrays, not unread values."""

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1], 7), initializer="ones", name="w")

    def call(self, x: Any) -> Any:
        return x @ self.w

    def load_own_variables(self, store: Any) -> None:
        self.w.assign(np.asarray(store["0"]))


@pytest.mark.parametrize("skip_mismatch", [False, True])
def test_a_first_v3_load_with_a_corrupt_value_of_a_layers_own_loader(tmp_path: Path, skip_mismatch: bool) -> None:
    """The value is read when the layer asks for it and fails there, inside tf-keras's
    traversal (which, with ``skip_mismatch``, would warn and skip the layer): weightio
    reports the corrupt file instead and changes nothing."""
    import weightio

    def make() -> Any:
        return tf_keras.Sequential([tf_keras.Input((5,)), _OwnLoader(name="own"), L.Dense(3, name="d")])

    path = save(make(), "weights_h5", tmp_path)
    recompress_and_corrupt(path, (5, 7))
    mine = make()
    before = state(mine)
    with pytest.raises(weightio.Error):
        wk.load_weights(mine, path, skip_mismatch=skip_mismatch)
    assert state(mine) == before
