"""TensorFlow checkpoints (tf-keras ``model.save_weights("ckpt")``) restored by weightio into
Keras 3 models on the backend this process runs, and (TensorFlow run only) into tf-keras
models.

The checkpoints are written once per session by tf-keras in a subprocess
(``checkpoint_fixtures.py``): Sequential (Conv2D, BatchNormalization; legacy Adam slots),
Functional (Embedding, LSTM, Bidirectional GRU, LayerNormalization; no optimizer), Functional
with a nested Sequential and a shared layer (Adam's ``optimizer/_variables``), subclassed
(attribute layers, a list of layers; SGD momentum slots). Oracles: the variables of the
same tf-keras architecture after tf-keras's own ``load_weights`` (identical bits per
corresponding variable) and its output on a fixed input (close: other backends, same math);
for tf-keras models, tf-keras's own ``load_weights`` on an identical model.

Run by ``test_backends.py`` once per backend (see ``conftest.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import checkpoint_models as cm
from keras_spies import read_ahead, taken_ahead, tensorflow_read_into
import weightio
import weightio.keras as wk
from weightio.keras import CheckpointLoadStatus, Format

BACKEND = keras.backend.backend()
HERE = Path(__file__).resolve().parent
TRAINED = [case for case, training in cm.CASES.items() if training]


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory) -> dict[str, str]:
    """{case: prefix} written by tf-keras, in one subprocess for the session."""
    out = tmp_path_factory.mktemp("tf_keras_checkpoints")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(HERE / "checkpoint_fixtures.py"), str(out)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _not_installed():
    if wk.is_installed():
        wk.uninstall()
    yield
    if wk.is_installed():
        wk.uninstall()


def reference(ckpts: dict[str, str], case: str) -> Any:
    return np.load(Path(ckpts[case]).parent / "reference.npz")


def fresh(case: str, **changes: Any) -> keras.Model:
    model = cm.build(keras, case, **changes)
    cm.randomize(model, seed=3)
    return model


def snapshot(model: keras.Model) -> list[bytes]:
    return [np.array(keras.ops.convert_to_numpy(w)).tobytes() for w in model.weights]


def assert_like_reference(model: keras.Model, ref: Any, layers: list[str] | None = None) -> None:
    """Every variable (of ``layers``) holds the bits tf-keras restored into the same layer."""
    mine = cm.leaf_weights(model)
    assert mine, "no layers with weights"
    for name, values in mine.items():
        if layers is not None and name not in layers:
            continue
        for i, value in enumerate(values):
            expected = ref[f"{name}|{i}"]
            assert value.dtype == expected.dtype and value.shape == expected.shape, (name, i)
            assert value.tobytes() == expected.tobytes(), f"{name} weight {i} differs"


def output(model: keras.Model, case: str) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(cm.inputs_for(case), training=False)))


# -- Keras 3 models -----------------------------------------------------------------------


@pytest.mark.parametrize("case", list(cm.CASES))
def test_restores_what_tf_keras_restores(ckpts, case: str) -> None:
    model = fresh(case)
    status = wk.load_weights(model, ckpts[case])
    ref = reference(ckpts, case)
    assert_like_reference(model, ref)
    np.testing.assert_allclose(output(model, case), ref["__output__"], rtol=1e-5, atol=2e-5)
    assert isinstance(status, CheckpointLoadStatus) and isinstance(status, wk.LoadReport)
    assert status.format is Format.TF_CHECKPOINT and not status.by_keras
    assert status.variables_assigned == len(model.weights) == len(status.loaded)
    assert status.unmatched == [] and status.unused == []
    # Training state is reported, never restored, and expected left over.
    assert bool(status.optimizer_values) == (case in TRAINED)
    assert status.assert_consumed() is status
    assert status.assert_existing_objects_matched() is status
    assert status.assert_nontrivial_match() is status


def test_slot_variables_and_optimizer_are_reported_not_restored(ckpts) -> None:
    status = wk.load_weights(fresh("sequential"), ckpts["sequential"])
    slots = [k for k in status.optimizer_values if "/.OPTIMIZER_SLOT/" in k]
    assert len(slots) == 2 * 8  # Adam's m and v for the 8 trainable variables
    assert any(k.startswith("optimizer/") for k in status.optimizer_values)
    assert not any(".OPTIMIZER_SLOT" in k or k.startswith("optimizer/") for _, k in status.loaded)


def test_a_directory_with_a_checkpoint_file(ckpts) -> None:
    model = fresh("rnn")
    status = wk.load_weights(model, Path(ckpts["rnn"]).parent)
    assert status.prefix == ckpts["rnn"]
    assert_like_reference(model, reference(ckpts, "rnn"))


SAVED_MODELS = ["sequential", "nested"]  # checkpoint_fixtures.SAVED_MODELS


@pytest.mark.parametrize("case", SAVED_MODELS)
def test_a_saved_model_directory(ckpts, case: str) -> None:
    """tf-keras ``model.save("dir")``: its ``variables/variables`` checkpoint, found by content
    (Keras 3's own load_weights refuses a directory)."""
    directory = ckpts[f"{case}:saved_model"]
    assert wk.sniff(directory) is Format.TF_CHECKPOINT
    model = fresh(case)
    status = wk.load_weights(model, directory)
    assert status.prefix == os.path.join(directory, "variables", "variables")
    assert_like_reference(model, reference(ckpts, case))
    assert status.variables_assigned == len(model.weights) and status.unmatched == []
    assert status.optimizer_values  # saved with its optimizer: reported, not restored
    status.assert_consumed()


def test_a_directory_with_neither_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")  # no variables/variables.index
    assert wk.sniff(tmp_path) is Format.UNKNOWN


def test_install_restores_through_weightio(ckpts) -> None:
    model = fresh("nested")
    with wk.installed():
        assert model.load_weights(ckpts["nested"]) is None  # Keras 3's Model.load_weights returns nothing
    assert_like_reference(model, reference(ckpts, "nested"))


# -- errors leave the model unchanged ----------------------------------------------------

MISMATCHES = {
    "layer_count": ("sequential", {"extra_layer": True}, ValueError, "Layer count mismatch"),
    "shape_functional": ("nested", {"units": 5}, ValueError, "Shape mismatch for variable"),
    "shape_subclassed": ("subclassed", {"units": 6}, ValueError, "Shape mismatch for variable"),
}


@pytest.mark.parametrize("mismatch", list(MISMATCHES))
def test_wrong_architecture_raises_and_changes_nothing(ckpts, mismatch: str) -> None:
    case, changes, error, message = MISMATCHES[mismatch]
    model = fresh(case, **changes)
    before = snapshot(model)
    with pytest.raises(error, match=message) as info:
        wk.load_weights(model, ckpts[case])
    assert ckpts[case] in str(info.value)
    assert snapshot(model) == before


def test_an_object_the_model_does_not_have(ckpts) -> None:
    """tf.train.Checkpoint(model=...) saves the model under a "model" edge: the model has
    no attribute of that name (assignment_map maps it, below)."""
    model = fresh("sequential")
    before = snapshot(model)
    with pytest.raises(ValueError, match="'model' has no counterpart in the model"):
        wk.load_weights(model, ckpts["rooted"])
    assert snapshot(model) == before


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"by_name": True}, NotImplementedError, "Weights may only be loaded based on topology"),
        ({"skip_mismatch": True}, ValueError, "skip_mismatch can only be set to True when by_name is True"),
        ({"objects_to_skip": []}, ValueError, "only supports loading '.weights.h5' files"),
        ({"unknown": 1}, ValueError, "Invalid keyword arguments"),
    ],
)
def test_arguments_tf_keras_refuses(ckpts, kwargs: dict, error: type, message: str) -> None:
    model = fresh("sequential")
    before = snapshot(model)
    with pytest.raises(error, match=message):
        wk.load_weights(model, ckpts["sequential"], **kwargs)
    assert snapshot(model) == before


@pytest.mark.parametrize("case", ["rnn", "sequential"])  # (sequential: a large value, read ahead)
@pytest.mark.parametrize("damage", ["data_truncated", "index_truncated", "data_flipped"])
def test_corrupt_checkpoint_raises_weightio_error(ckpts, tmp_path: Path, damage: str, case: str) -> None:
    src = Path(ckpts[case])
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    prefix = tmp_path / src.name
    data, index = Path(f"{prefix}.data-00000-of-00001"), Path(f"{prefix}.index")
    if damage == "data_truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "index_truncated":
        index.write_bytes(index.read_bytes()[:-20])
    model = fresh(case)
    before = snapshot(model)
    if damage == "data_flipped":  # caught by the CRC check, when asked for
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
        weightio.tf.load_checkpoint(prefix)  # opens: the index is intact
        with pytest.raises(weightio.ChecksumError):
            weightio.tf.load_checkpoint(prefix, verify=True)
        return
    with pytest.raises(weightio.Error):
        wk.load_weights(model, prefix)
    assert snapshot(model) == before


# -- the status object --------------------------------------------------------------------


def test_assert_consumed_fails_when_values_were_left(ckpts, caplog) -> None:
    model = fresh("rnn")
    status = wk.load_weights(model, ckpts["rnn"], assignment_map={"layer_with_weights-0": "emb"})
    assert status.loaded == [(model.get_layer("emb").embeddings.path, "layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE")]
    assert len(status.unused) == 13 and len(status.unmatched) == 13
    assert [path for path, _ in status.skipped] == status.unmatched
    with pytest.raises(AssertionError, match="Unused values in checkpoint|not bound to checkpointed values"):
        status.assert_consumed()
    with pytest.raises(AssertionError, match="13 model variables that were not bound"):
        status.assert_existing_objects_matched()
    status.assert_nontrivial_match()
    caplog.set_level(logging.WARNING, logger="weightio")
    del status
    assert any("13 values in checkpoint" in r.getMessage() for r in caplog.records)
    caplog.clear()
    status = wk.load_weights(model, ckpts["rnn"], assignment_map={"layer_with_weights-0": "emb"})
    assert status.expect_partial() is status
    del status
    assert not caplog.records


def test_optimizer_state_alone_is_no_reason_to_warn(ckpts, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="weightio")
    status = wk.load_weights(fresh("subclassed"), ckpts["subclassed"])
    assert status.optimizer_values
    del status
    assert not caplog.records


# -- assignment_map -----------------------------------------------------------------------


def test_assignment_map_restores_a_backbone_under_a_new_head(ckpts) -> None:
    model = fresh("sequential", head=7)
    head_before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.get_layer("new_head").weights]
    status = wk.load_weights(
        model,
        ckpts["sequential"],
        assignment_map={
            "layer_with_weights-0": "conv",
            "layer_with_weights-1": model.get_layer("bn"),
            "layer_with_weights-2": "wide",
        },
    )
    assert_like_reference(model, reference(ckpts, "sequential"), layers=["conv", "bn", "wide"])
    head_after = [np.array(keras.ops.convert_to_numpy(w)) for w in model.get_layer("new_head").weights]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(head_before, head_after))
    assert status.variables_assigned == 8
    assert [k.split("/")[0] for k in status.unused] == ["layer_with_weights-3"] * 2
    assert sorted(status.unmatched) == [w.path for w in model.get_layer("new_head").weights][::-1]


def test_assignment_map_nested_model_and_attribute_paths(ckpts) -> None:
    model = fresh("nested", head=3)
    wk.load_weights(model, ckpts["nested"], assignment_map={"layer_with_weights-1": "inner", "layer_with_weights-0": "shared"})
    assert_like_reference(model, reference(ckpts, "nested"), layers=["shared", "inner/i1", "inner/ibn"])
    sub = fresh("subclassed")
    status = wk.load_weights(sub, ckpts["subclassed"], assignment_map={"enc": sub.enc, "blocks/1": "b1", "norm/gamma": sub.norm.gamma})
    assert_like_reference(sub, reference(ckpts, "subclassed"), layers=["enc", "b1"])
    assert status.variables_assigned == 5


def test_assignment_map_whole_model_under_another_root(ckpts) -> None:
    model = fresh("sequential")
    status = wk.load_weights(model, ckpts["rooted"], assignment_map={"model": model})
    assert_like_reference(model, reference(ckpts, "sequential"))
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in status.optimizer_values


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"layer_with_weights-9": "conv"}, "has no object 'layer_with_weights-9'"),
        ({"layer_with_weights-0": "no_such_layer"}, "has no layer named 'no_such_layer'"),
        ({"layer_with_weights-0": "bn"}, "has no variable for checkpoint values|Shape mismatch"),
        ({"layer_with_weights-0": keras.layers.Dense(2)}, "is not part of model"),
    ],
)
def test_assignment_map_errors_change_nothing(ckpts, mapping: dict, message: str) -> None:
    model = fresh("sequential")
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        wk.load_weights(model, ckpts["sequential"], assignment_map=mapping)
    assert snapshot(model) == before


def test_assignment_map_is_for_checkpoints_only(tmp_path: Path) -> None:
    model = fresh("sequential")
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    with pytest.raises(ValueError, match="only supported for TensorFlow checkpoints"):
        wk.load_weights(model, path, assignment_map={"": model})


# -- tf-keras models (TensorFlow run only: tf-keras needs TensorFlow) -------------------

tf_keras_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="tf-keras models are tested in the TensorFlow run")


def _tf_keras() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tf_keras
    return tf_keras


def _tk_model(case: str, seed: int = 5, **changes: Any) -> Any:
    model = cm.build(_tf_keras(), case, **changes)
    cm.randomize(model, seed)
    return model


def _tk_values(model: Any) -> list[bytes]:
    return [w.numpy().tobytes() for w in model.weights]


@tf_keras_only
@pytest.mark.parametrize("case", list(cm.CASES))
def test_tf_keras_models_restore_like_tf_keras(ckpts, case: str) -> None:
    theirs, mine = _tk_model(case), _tk_model(case)
    theirs.load_weights(ckpts[case]).expect_partial()  # tf-keras's own loader (not installed)
    status = wk.load_weights(mine, ckpts[case])
    assert isinstance(status, CheckpointLoadStatus)
    assert _tk_values(mine) == _tk_values(theirs)
    assert status.variables_assigned == len(mine.weights) and status.unmatched == []
    status.assert_consumed()


@tf_keras_only
@pytest.mark.parametrize("case", SAVED_MODELS)
def test_tf_keras_saved_model_directories_restore_like_tf_keras(ckpts, case: str) -> None:
    directory = ckpts[f"{case}:saved_model"]
    theirs, mine = _tk_model(case), _tk_model(case)
    theirs.load_weights(directory).expect_partial()  # tf-keras: its variables/variables
    status = wk.load_weights(mine, directory)
    assert isinstance(status, CheckpointLoadStatus) and not status.by_keras
    assert _tk_values(mine) == _tk_values(theirs)
    status.assert_consumed()


@pytest.mark.skipif(BACKEND != "torch", reason="torch Parameters only")
def test_torch_large_values_are_read_into_the_parameters(ckpts, monkeypatch) -> None:
    """On torch a large value (the 144x128 kernel) is read straight into its Parameter's
    memory: the same Parameter over the same memory, autograd told of the write."""
    from weightio.keras import assign

    written: list[Any] = []
    original = assign._TorchAssigner.written

    def spy(self: Any, variables: list[Any]) -> None:
        written.extend(variables)
        original(self, variables)

    monkeypatch.setattr(assign._TorchAssigner, "written", spy)
    model = fresh("sequential")
    kernel = model.get_layer("wide").kernel.value
    pointer, version = kernel.data_ptr(), kernel._version
    wk.load_weights(model, ckpts["sequential"])
    assert [v.path for v in written] == [model.get_layer("wide").kernel.path]
    assert model.get_layer("wide").kernel.value is kernel and kernel.data_ptr() == pointer
    assert kernel._version > version
    assert_like_reference(model, reference(ckpts, "sequential"))


@tf_keras_only
def test_large_values_are_read_into_tensors_the_variables_take_over(ckpts, monkeypatch) -> None:
    """On TensorFlow a large value (the 144x128 kernel) is read into a new tensor that the
    variable takes over, without a copy, in Keras 3 and tf-keras models alike."""
    read_into = tensorflow_read_into(monkeypatch)
    model = fresh("sequential")
    wk.load_weights(model, ckpts["sequential"])
    assert_like_reference(model, reference(ckpts, "sequential"))
    assert np.from_dlpack(model.get_layer("wide").kernel._value.read_value()).ctypes.data in read_into
    theirs, mine = _tk_model("sequential"), _tk_model("sequential")
    theirs.load_weights(ckpts["sequential"]).expect_partial()
    wk.load_weights(mine, ckpts["sequential"])
    assert _tk_values(mine) == _tk_values(theirs)
    assert np.from_dlpack(mine.get_layer("wide").kernel.read_value()).ctypes.data in read_into


WIDE_KERNEL = "layer_with_weights-2/kernel/.ATTRIBUTES/VARIABLE_VALUE"


def test_first_restores_read_large_values_ahead(ckpts, monkeypatch) -> None:
    """While a first restore matches the graph, the large weights (the 144x128 kernel, not
    its 64 KiB Adam slots: training state is never restored) are read on other threads, and
    the read at the end takes them; on torch none (they are read into the Parameters).
    Remembered matches read nothing ahead."""
    started, taken = read_ahead(monkeypatch), taken_ahead(monkeypatch)
    model = fresh("sequential")
    wk.load_weights(model, ckpts["sequential"], threads=2)
    assert_like_reference(model, reference(ckpts, "sequential"))
    expected = [] if BACKEND == "torch" else [WIDE_KERNEL]
    assert started == expected and len(taken) == len(expected)
    assert all(shape == (144, 128) for shape in taken)
    wk.load_weights(model, ckpts["sequential"], threads=1)  # one thread: none
    assert len(started) == len(expected)
    if BACKEND == "tensorflow":
        theirs, mine = _tk_model("sequential"), _tk_model("sequential")
        theirs.load_weights(ckpts["sequential"]).expect_partial()
        wk.load_weights(mine, ckpts["sequential"], threads=2)
        assert _tk_values(mine) == _tk_values(theirs)
        assert started == expected * 2 and taken == [(144, 128)] * 2


def test_training_state_told_by_key_paths(ckpts) -> None:
    """Reading ahead starts before the object graph is parsed, so it tells training state
    (optimizer variables and slots, save counters) by the keys' paths: on every test
    checkpoint (tf-keras's ``save_weights``, ``tf.train.Checkpoint`` with and without an
    optimizer, SavedModel variables) that agrees with the graph, but for a SavedModel's
    compiled metrics (small values, reported as training state by the graph)."""
    from weightio import tf as wtf
    from weightio.keras import checkpoint

    compared = 0
    for case, prefix in ckpts.items():
        reader = wtf.load_checkpoint(wtf.resolve_prefix(prefix))
        graph = reader.object_graph()
        if graph is None:
            continue
        by_graph = checkpoint._training_state_keys(graph)
        for key in reader.keys():
            if key == wtf.OBJECT_GRAPH_KEY or key.startswith("keras_api/"):
                continue
            assert checkpoint._names_training_state(key) == (key in by_graph), (case, key)
            compared += key in by_graph
    assert compared  # some checkpoints hold training state
    assert not checkpoint._names_training_state("layer_with_weights-0/optimizer_like/.ATTRIBUTES/VARIABLE_VALUE")


@tf_keras_only
def test_tf_keras_install_returns_the_status(ckpts) -> None:
    theirs, mine = _tk_model("rnn"), _tk_model("rnn")
    theirs.load_weights(ckpts["rnn"]).expect_partial()
    with wk.installed():
        status = mine.load_weights(ckpts["rnn"])
    assert isinstance(status, CheckpointLoadStatus) and status.variables_assigned == len(mine.weights)
    assert _tk_values(mine) == _tk_values(theirs)


@tf_keras_only
def test_tf_keras_errors_change_nothing(ckpts) -> None:
    model = _tk_model("nested", units=5)
    before = _tk_values(model)
    with pytest.raises(ValueError, match="Shape mismatch"):
        wk.load_weights(model, ckpts["nested"])
    theirs = _tk_model("nested", units=5)
    with pytest.raises(ValueError, match="Received incompatible tensor"):  # tf-keras: partly restored
        theirs.load_weights(ckpts["nested"])
    with pytest.raises(NotImplementedError, match="based on topology"):
        wk.load_weights(model, ckpts["nested"], by_name=True)
    with pytest.raises(ValueError, match="skip_mismatch can only be set"):
        wk.load_weights(model, ckpts["nested"], skip_mismatch=True)
    assert _tk_values(model) == before


@tf_keras_only
def test_tf_keras_extra_layers_are_left_like_tf_keras_leaves_them(ckpts) -> None:
    """tf-keras restores what matches and leaves the rest (no layer count check)."""
    theirs, mine = _tk_model("sequential", extra_layer=True), _tk_model("sequential", extra_layer=True)
    theirs.load_weights(ckpts["sequential"]).expect_partial()
    status = wk.load_weights(mine, ckpts["sequential"])
    assert _tk_values(mine) == _tk_values(theirs)
    assert status.unmatched == ["extra/kernel:0", "extra/bias:0"] and status.unused == []
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()


@tf_keras_only
def test_tf_keras_unbuilt_subclassed_model_goes_to_tf_keras(ckpts) -> None:
    """TensorFlow defers restoring into variables not created yet; weightio hands it over."""
    tfk = _tf_keras()
    model = cm.build(tfk, "subclassed")
    fresh_model = type(model)()
    report = wk.load_weights(fresh_model, ckpts["subclassed"])
    assert report.by_keras and report.keras_result is not None
    report.keras_result.expect_partial()
    fresh_model(cm.inputs_for("subclassed"))
    ref = reference(ckpts, "subclassed")
    assert np.array_equal(fresh_model.enc.kernel.numpy(), ref["enc|0"])


# -- remembered matches -------------------------------------------------------------------
# A restore remembers its match (variables to checkpoint keys) per model and uses it again
# while the model's layers and variables and the checkpoint's index file are unchanged.


@pytest.fixture
def trusted_now(monkeypatch):
    """Index files written moments ago are trusted at once (otherwise only once RACY_NS old)."""
    from weightio.keras import tree_check

    monkeypatch.setattr(tree_check, "RACY_NS", 0)


@pytest.fixture
def matches(monkeypatch) -> list[str]:
    """The prefix of every match made (walk of the object graph and the model)."""
    from weightio.keras import checkpoint

    made: list[str] = []
    original = checkpoint._match

    def counted(model: Any, prefix: str, *args: Any) -> Any:
        made.append(prefix)
        return original(model, prefix, *args)

    monkeypatch.setattr(checkpoint, "_match", counted)
    return made


def _copy_checkpoint(prefix: str, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    source = Path(prefix)
    for path in source.parent.glob(source.name + ".*"):
        shutil.copyfile(path, directory / path.name)
    return str(directory / source.name)


@pytest.mark.parametrize("case", list(cm.CASES))
def test_a_second_restore_uses_the_remembered_match(ckpts, case: str, matches, trusted_now) -> None:
    model = fresh(case)
    first = wk.load_weights(model, ckpts[case])
    cm.randomize(model, seed=9)
    second = wk.load_weights(model, ckpts[case])
    assert matches == [ckpts[case]]
    assert_like_reference(model, reference(ckpts, case))
    assert second.variables_assigned == first.variables_assigned
    assert (second.loaded, second.unused, second.unmatched) == (first.loaded, first.unused, first.unmatched)
    assert second.optimizer_values == first.optimizer_values


def test_a_replaced_checkpoint_is_matched_again(ckpts, tmp_path: Path, matches, trusted_now) -> None:
    """Another checkpoint written to the same prefix (another index file) is matched anew:
    here it is another architecture's, and the restore raises as a first one would."""
    prefix = _copy_checkpoint(ckpts["sequential"], tmp_path / "a")
    model = fresh("sequential")
    wk.load_weights(model, prefix)
    other = _copy_checkpoint(ckpts["rnn"], tmp_path / "b")
    for suffix in (".index", ".data-00000-of-00001"):
        os.replace(other + suffix, prefix + suffix)
    before = snapshot(model)
    with pytest.raises(ValueError):
        wk.load_weights(model, prefix)
    assert snapshot(model) == before
    assert matches == [prefix, prefix]


def test_a_changed_model_is_matched_again(ckpts, matches, trusted_now) -> None:
    model = fresh("sequential")
    wk.load_weights(model, ckpts["sequential"])
    model.get_layer("bn").trainable = False  # the signature has the trainable flags
    cm.randomize(model, seed=9)
    wk.load_weights(model, ckpts["sequential"])
    assert len(matches) == 2
    assert_like_reference(model, reference(ckpts, "sequential"))


def test_what_is_not_remembered(ckpts, tmp_path: Path, matches, monkeypatch) -> None:
    """An index file changed less than RACY_NS ago, a restore with an assignment_map, and
    a model whose plans were forgotten are matched every time."""
    fresh_copy = _copy_checkpoint(ckpts["rnn"], tmp_path)  # written just now: not trusted yet
    model = fresh("rnn")
    wk.load_weights(model, fresh_copy)
    wk.load_weights(model, fresh_copy)
    assert len(matches) == 2
    from weightio.keras import tree_check

    monkeypatch.setattr(tree_check, "RACY_NS", 0)
    mapping = {"layer_with_weights-0": "emb"}
    wk.load_weights(model, ckpts["rnn"], assignment_map=mapping)
    wk.load_weights(model, ckpts["rnn"], assignment_map=mapping)
    assert len(matches) == 4
    wk.load_weights(model, ckpts["rnn"])
    wk.forget_plans(model)
    wk.load_weights(model, ckpts["rnn"])
    assert len(matches) == 6
    assert_like_reference(model, reference(ckpts, "rnn"))


@tf_keras_only
@pytest.mark.parametrize("case", list(cm.CASES))
def test_tf_keras_second_restore_uses_the_remembered_match(ckpts, case: str, matches, trusted_now) -> None:
    theirs, mine = _tk_model(case), _tk_model(case)
    theirs.load_weights(ckpts[case]).expect_partial()
    first = wk.load_weights(mine, ckpts[case])
    cm.randomize(mine, 9)
    second = wk.load_weights(mine, ckpts[case])
    assert matches == [ckpts[case]]
    assert _tk_values(mine) == _tk_values(theirs)
    assert (second.loaded, second.unused, second.unmatched) == (first.loaded, first.unused, first.unmatched)
