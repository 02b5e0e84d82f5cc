"""weightio.tf against TensorFlow's own checkpoint reader.

Checkpoints are written at test time by ``tf.train.Checkpoint`` (every dtype, strings,
scalars, empty tensors; TF2 sharding with ``MaxShardSizePolicy``, which also partitions
large variables), ``tf.compat.v1`` partitioned variables with a ``Saver``, tf-keras
``model.save_weights("ckpt")`` (Sequential, Functional, subclassed, with optimizer slots
after a training step), SavedModels, and by the independent writer in ``tf_fixtures.py``
(big-endian data, Snappy-compressed index blocks, odd restart intervals and block sizes,
hand-made partitions), which TensorFlow reads too. ``tf.train.load_checkpoint`` is the
oracle: same names, shapes, dtypes, values and Python types.

Hostile files: hand-made contradictions must raise the right ``weightio`` error naming the
file, and a few hundred random mutants (index and data files, half of the index mutants
with repaired block checksums) are read in a subprocess, which must never crash or raise
anything but ``weightio.Error``.

Everything that imports TensorFlow lives in this one module (TF is slow to import).
``WEIGHTIO_TF_BENCH=1`` also runs the ResNet50 speed comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tf_fixtures as fx  # noqa: E402

import weightio  # noqa: E402
import weightio.tf as wt  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.protobuf import trackable_object_graph_pb2

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning"
)

WORKER = Path(__file__).with_name("tf_fixtures.py")
MUTANTS_PER_BASE = 200
MUTATION_SEED = 20250611


# ---------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------


def assert_same_value(ours, theirs, name):
    assert type(ours) is type(theirs), (name, type(ours), type(theirs))
    if isinstance(theirs, bytes):
        assert ours == theirs, name
        return
    assert ours.dtype == theirs.dtype, (name, ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, name
    if theirs.dtype == object:
        assert list(np.ravel(ours)) == list(np.ravel(theirs)), name
    else:
        assert np.ascontiguousarray(ours).tobytes() == np.ascontiguousarray(theirs).tobytes(), name


def assert_matches_tf(prefix) -> wt.CheckpointReader:
    """Every observable of weightio's reader equals TensorFlow's."""
    theirs = tf.train.load_checkpoint(str(prefix))
    ours = wt.load_checkpoint(prefix)
    assert ours.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
    their_dtypes = theirs.get_variable_to_dtype_map()
    for name, dtype in ours.get_variable_to_dtype_map().items():
        t = their_dtypes[name]
        assert dtype.name == t.name and dtype.as_datatype_enum == t.as_datatype_enum, name
        assert np.dtype(dtype.as_numpy_dtype) == np.dtype(t.as_numpy_dtype), name
        assert dtype == t and dtype == t.name
        if not t.is_quantized:
            assert t == dtype  # tf.DType accepts ours through its numpy dtype
    names = ours.keys()
    assert names == sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))
    bulk = ours.read_many(names)
    for name, value in zip(names, bulk):
        expected = theirs.get_tensor(name)
        assert_same_value(ours.get_tensor(name), expected, name)
        assert_same_value(ours.get_tensor(name, copy=True, verify=True), expected, name)
        if isinstance(expected, bytes):
            expected = np.array(expected, dtype=object)
        elif isinstance(expected, np.generic):
            expected = np.asarray(expected)
        assert_same_value(value, expected, name)
        assert ours.has_tensor(name) and theirs.has_tensor(name)
    assert not ours.has_tensor("no/such/tensor")
    ours.verify()
    return ours


def assert_graph_matches_tf(reader: wt.CheckpointReader, prefix) -> wt.ObjectGraph:
    """The decoded object graph equals the protobuf library's decoding, field by field,
    and walking it reproduces every checkpoint key TF derived from it."""
    raw = tf.train.load_checkpoint(str(prefix)).get_tensor(wt.OBJECT_GRAPH_KEY)
    proto = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
    graph = reader.object_graph()
    assert graph is not None and len(graph) == len(proto.nodes)
    for ours, theirs in zip(graph, proto.nodes):
        assert [(c.node_id, c.local_name) for c in ours.children] == [(c.node_id, c.local_name) for c in theirs.children]
        assert [tuple(a) for a in ours.attributes] == [
            (a.name, a.full_name, a.checkpoint_key, getattr(a, "optional_restore", False)) for a in theirs.attributes
        ]
        assert [tuple(s) for s in ours.slot_variables] == [
            (s.original_variable_node_id, s.slot_name, s.slot_variable_node_id) for s in theirs.slot_variables
        ]
        if theirs.HasField("registered_saver"):
            assert ours.registered_saver == (theirs.registered_saver.name, theirs.registered_saver.object_name)
        else:
            assert ours.registered_saver is None
        expected = theirs.has_checkpoint_values.value if theirs.HasField("has_checkpoint_values") else None
        assert ours.has_checkpoint_values == expected
    # Keys from the graph: object path + attribute, and slot variables under their variable.
    paths = graph.object_paths()
    predicted = {}
    for node in graph:
        for attr in node.attributes:
            if node.node_id in paths:
                predicted[attr.checkpoint_key] = f"{paths[node.node_id]}/.ATTRIBUTES/{wt.escape_local_name(attr.name)}"
    for optimizer_id, slot in graph.slot_variables():
        var_path, opt_path = paths[slot.original_variable_node_id], paths[optimizer_id]
        for attr in graph[slot.slot_variable_node_id].attributes:
            predicted[attr.checkpoint_key] = (
                f"{var_path}/.OPTIMIZER_SLOT/{opt_path}/{wt.escape_local_name(slot.slot_name)}/.ATTRIBUTES/{attr.name}"
            )
    assert predicted and all(k == v for k, v in predicted.items()), {k: v for k, v in predicted.items() if k != v}
    assert set(predicted) <= set(reader.keys())
    assert set(reader.keys()) - set(predicted) == {wt.OBJECT_GRAPH_KEY}
    return graph


# ---------------------------------------------------------------------------------------
# checkpoints written by TensorFlow
# ---------------------------------------------------------------------------------------


def _all_dtype_values():
    rng = np.random.default_rng(7)
    out = {}
    for name in [
        "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
        "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "float8_e5m2",
        "float8_e4m3fn", "int4", "uint4", "qint8", "quint8", "qint32",
    ]:
        dt = tf.dtypes.as_dtype(name)
        x = rng.standard_normal((3, 5)) * 7
        if dt.is_complex:
            x = x + 1j * rng.standard_normal((3, 5))
        if dt.is_integer and not dt.is_quantized:
            # in range: casting out-of-range floats is undefined, and ml_dtypes warns for int4
            info = ml_dtypes.iinfo(dt.as_numpy_dtype)
            x = np.clip(x, int(info.min), int(info.max))
        if dt.is_quantized:
            out[name] = tf.Variable(tf.constant(x.astype(dt.as_numpy_dtype[0]), dtype=dt))
        else:
            out[name] = tf.Variable(x.astype(dt.as_numpy_dtype), dtype=dt)
    out["scalar_f32"] = tf.Variable(np.float32(3.25))
    out["scalar_i64"] = tf.Variable(np.int64(-(2**40)))
    out["empty"] = tf.Variable(np.zeros((0, 3), np.float32))
    out["big"] = tf.Variable(rng.standard_normal((256, 300)).astype(np.float32))
    out["nan_inf"] = tf.Variable(np.array([np.nan, np.inf, -np.inf, -0.0], np.float32))
    out["str_scalar"] = tf.Variable(b"hello")
    out["str_vector"] = tf.Variable([b"", b"x\x00y", b"\xff" * 300, "é".encode()])
    out["str_matrix"] = tf.Variable([[b"a", b"bc"], [b"def", b""]])
    out["str_empty"] = tf.Variable(tf.zeros((0,), tf.string))
    return out


@pytest.fixture(scope="module")
def dtype_checkpoint(tmp_path_factory):
    root = tf.train.Checkpoint(**_all_dtype_values())
    return root.write(str(tmp_path_factory.mktemp("dtypes") / "ckpt"))


@pytest.fixture(scope="module")
def sharded_checkpoint(tmp_path_factory):
    rng = np.random.default_rng(3)
    values = {f"v{i}": tf.Variable(rng.standard_normal((64, 32)).astype(np.float32)) for i in range(5)}
    values["big"] = tf.Variable(rng.standard_normal((300, 50)).astype(np.float32))
    values["ints"] = tf.Variable(rng.integers(-9, 9, (40, 7, 3)).astype(np.int64))
    values["half"] = tf.Variable(rng.standard_normal((90, 40)).astype(np.float16))
    values["text"] = tf.Variable([b"shard", b"me"])
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=20000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    return tf.train.Checkpoint(**values).write(str(tmp_path_factory.mktemp("sharded") / "ckpt"), options=options)


@pytest.fixture(scope="module")
def partitioned_checkpoint(tmp_path_factory):
    """tf.compat.v1 partitioned variables (graph mode) saved by a V2 Saver."""
    prefix = str(tmp_path_factory.mktemp("partitioned") / "model")
    with tf.Graph().as_default():
        init = tf.compat.v1.random_normal_initializer(seed=1)
        tf.compat.v1.get_variable("emb", [10, 3], partitioner=tf.compat.v1.fixed_size_partitioner(3), initializer=init)
        tf.compat.v1.get_variable(
            "cols", [4, 9], partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1), initializer=init
        )
        tf.compat.v1.get_variable(
            "cube", [5, 4, 6], partitioner=tf.compat.v1.fixed_size_partitioner(4, axis=2), initializer=init,
            dtype=tf.float64,
        )
        tf.compat.v1.get_variable("plain", [2], initializer=tf.compat.v1.ones_initializer())
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, prefix)


@pytest.fixture(scope="module")
def keras_checkpoints(tmp_path_factory):
    """tf-keras save_weights("ckpt") after one training step, for three model styles."""
    keras = pytest.importorskip("tf_keras")
    root = tmp_path_factory.mktemp("keras")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)

    sequential = keras.Sequential(
        [keras.layers.Dense(8, activation="relu", input_shape=(6,)), keras.layers.BatchNormalization(),
         keras.layers.Dense(3)]
    )
    sequential.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")

    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, name="encoder")(inputs)
    skip = keras.layers.Dense(5, use_bias=False, name="skip")(inputs)
    merged = keras.layers.Add()([hidden, skip])
    functional = keras.Model(inputs, keras.layers.Dense(3, name="head")(merged))
    # The legacy optimizer keeps slot variables ("m", "v") in the object graph.
    functional.compile(optimizer=keras.optimizers.legacy.Adam(1e-3), loss="mse")

    class Block(keras.layers.Layer):
        def __init__(self, units):
            super().__init__()
            self.dense = keras.layers.Dense(units)
            self.scale = self.add_weight(name="scale/with.dots", shape=(units,), initializer="ones")

        def call(self, t):
            return self.dense(t) * self.scale

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.enc = keras.layers.Dense(4)
            self.blocks = [Block(4), Block(4)]
            self.out_layer = keras.layers.Dense(3)

        def call(self, t):
            t = self.enc(t)
            for b in self.blocks:
                t = b(t)
            return self.out_layer(t)

    subclassed = Subclassed()
    subclassed.compile(optimizer=keras.optimizers.legacy.SGD(0.01, momentum=0.9), loss="mse")

    out = {}
    for name, model in [("sequential", sequential), ("functional", functional), ("subclassed", subclassed)]:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        path = root / name / "ckpt"
        model.save_weights(str(path))
        out[name] = str(path)
    return out


def test_every_dtype_matches_tf(dtype_checkpoint):
    reader = assert_matches_tf(dtype_checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes["bfloat16/.ATTRIBUTES/VARIABLE_VALUE"].as_numpy_dtype.__name__ == "bfloat16"
    assert dtypes["float16/.ATTRIBUTES/VARIABLE_VALUE"] == np.float16
    assert dtypes["str_vector/.ATTRIBUTES/VARIABLE_VALUE"].as_numpy_dtype is object
    assert reader.get_tensor("str_vector/.ATTRIBUTES/VARIABLE_VALUE")[2] == b"\xff" * 300


def test_get_tensor_is_a_read_only_view_of_the_mapped_data(dtype_checkpoint):
    """Stored bytes that already are the array (aligned, this byte order, not partitioned)
    come back as a view of the mapped data file; anything else as a new array."""
    reader = wt.load_checkpoint(dtype_checkpoint)
    views = {}
    for name in reader.keys():
        dtype = reader.dtype(name)
        if dtype.is_string or dtype.name.startswith("q"):
            continue
        value = reader.get_tensor(name)
        if value.ndim == 0:
            continue
        aligned = reader.entry(name)["offset"] % value.dtype.alignment == 0
        base = value
        while isinstance(base, (np.ndarray, memoryview)):
            base = base.base if isinstance(base, np.ndarray) else base.obj
        assert isinstance(base, weightio._core.tfckpt.ShardBuffer) == aligned, name
        assert value.flags.writeable != aligned, name
        if aligned:
            views[name] = value
        copied = reader.get_tensor(name, copy=True)
        assert copied.flags.writeable and copied.tobytes() == value.tobytes()
    assert views
    sums = {name: v.tobytes() for name, v in views.items()}
    reader.close()
    del reader
    assert {name: v.tobytes() for name, v in views.items()} == sums  # views keep their file mapped


def test_read_many_converts_and_fills_given_arrays(dtype_checkpoint):
    reader = wt.load_checkpoint(dtype_checkpoint)
    names = ["float32/.ATTRIBUTES/VARIABLE_VALUE", "bfloat16/.ATTRIBUTES/VARIABLE_VALUE",
             "int16/.ATTRIBUTES/VARIABLE_VALUE", "str_matrix/.ATTRIBUTES/VARIABLE_VALUE"]
    f64 = reader.read_many(names[:3], dtypes=np.float64, threads=1)
    for name, arr in zip(names, f64):
        assert arr.dtype == np.float64 and arr.flags.writeable
        np.testing.assert_array_equal(arr, reader.get_tensor(name).astype(np.float64))
    per_name = reader.read_many(names, dtypes=[np.float16, None, np.int64, None])
    assert [a.dtype for a in per_name] == [np.float16, reader.get_tensor(names[1]).dtype, np.int64, object]
    outs = [np.empty((3, 5), np.float32), None, np.empty((3, 5), np.int16), np.empty((2, 2), object)]
    filled = reader.read_many(names, outs=outs)
    assert filled[0] is outs[0] and filled[2] is outs[2] and filled[3] is outs[3]
    np.testing.assert_array_equal(outs[0], reader.get_tensor(names[0]))
    assert outs[3][1, 0] == b"def"
    with pytest.raises(weightio.NotFoundError):
        reader.read_many(["nope"])
    with pytest.raises(weightio.Error):
        reader.read_many([names[3]], dtypes=np.float32)
    assert set(reader.load_all()) == set(reader.keys())


def test_sharded_and_partitioned_by_max_shard_size_match_tf(sharded_checkpoint):
    reader = assert_matches_tf(sharded_checkpoint)
    assert reader.num_shards > 1
    assert any(reader.is_partitioned(n) for n in reader.keys())
    shards = {reader.entry(n)["shard_id"] for n in reader.keys() if not reader.is_partitioned(n)}
    assert len(shards) > 1
    parts = [n for n in reader.keys() if reader.is_partitioned(n)]
    for name, value in zip(parts, reader.read_many(parts, dtypes=np.float64, threads=2)):
        np.testing.assert_array_equal(value, reader.get_tensor(name).astype(np.float64))


def test_v1_partitioned_variables_are_reassembled_like_tf(partitioned_checkpoint):
    reader = assert_matches_tf(partitioned_checkpoint)
    assert reader.keys() == ["cols", "cube", "emb", "plain"]
    assert reader.is_partitioned("emb") and reader.is_partitioned("cube") and not reader.is_partitioned("plain")
    assert len(reader.entry("cube")["slices"]) == 4
    assert reader.object_graph() is None  # a name-based (Saver) checkpoint
    assert reader.get_tensor("cube").flags.writeable  # reassembled: a new array


@pytest.mark.parametrize("style", ["sequential", "functional", "subclassed"])
def test_keras_save_weights_checkpoints_match_tf(keras_checkpoints, style):
    prefix = keras_checkpoints[style]
    reader = assert_matches_tf(prefix)
    graph = assert_graph_matches_tf(reader, prefix)
    keys = reader.keys()
    assert any("/optimizer/" in k or k.startswith("optimizer/") for k in keys)
    if style == "functional":
        assert graph.slot_variables(), "legacy Adam keeps slot variables"
        assert any(".OPTIMIZER_SLOT" in k for k in keys)
        kernel = graph.resolve("layer_with_weights-0/kernel")
        assert kernel is not None
        assert graph[kernel].attributes[0].checkpoint_key == "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    if style == "subclassed":
        scale = graph.resolve(["blocks", "0", "scale/with.dots"])
        assert scale is not None
        assert graph[scale].attributes[0].checkpoint_key == "blocks/0/scale.Swith..dots/.ATTRIBUTES/VARIABLE_VALUE"
    # The directory holds a `checkpoint` state file: the directory itself resolves to it.
    assert wt.load_checkpoint(Path(prefix).parent).prefix == prefix


def test_prefix_directory_savedmodel_and_file_forms(tmp_path):
    module = tf.Module()
    module.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    module.step = tf.Variable(7, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(module=module)
    first = ckpt.save(str(tmp_path / "run" / "ckpt"))
    module.w.assign_add(tf.ones((3, 4)))
    second = ckpt.save(str(tmp_path / "run" / "ckpt"))
    assert wt.load_checkpoint(tmp_path / "run").prefix == second == tf.train.latest_checkpoint(str(tmp_path / "run"))
    np.testing.assert_array_equal(
        wt.load_checkpoint(tmp_path / "run").get_tensor("module/w/.ATTRIBUTES/VARIABLE_VALUE"),
        tf.train.load_checkpoint(str(tmp_path / "run")).get_tensor("module/w/.ATTRIBUTES/VARIABLE_VALUE"),
    )
    for form in [first, first + ".index", first + ".data-00000-of-00001", Path(first)]:
        assert wt.load_checkpoint(form).prefix == first
    # An absolute path in the state file, escaped as the text format escapes it.
    odd = tmp_path / 'we"ird \\ dir'
    shutil.copytree(tmp_path / "run", odd)
    target = str(odd / Path(first).name)
    escaped = target.replace("\\", "\\\\").replace('"', '\\"')
    (odd / "checkpoint").write_text(f'model_checkpoint_path: "{escaped}"\nall_model_checkpoint_paths: "x"\n')
    assert wt.latest_checkpoint(odd) == target
    # A SavedModel directory: its variables/variables.
    saved = tmp_path / "saved"
    tf.saved_model.save(module, str(saved))
    reader = assert_matches_tf(saved / "variables" / "variables")
    assert wt.load_checkpoint(saved).prefix == str(saved / "variables" / "variables")
    assert reader.object_graph() is not None
    with pytest.raises(FileNotFoundError):
        wt.load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        wt.load_checkpoint(tmp_path / "empty")
    (tmp_path / "v1ckpt").write_bytes(b"not a bundle")
    with pytest.raises(weightio.UnsupportedFeatureError):
        wt.load_checkpoint(tmp_path / "v1ckpt")


def test_reading_needs_no_tensorflow(dtype_checkpoint):
    code = (
        "import sys, weightio.tf as wt\n"
        f"r = wt.load_checkpoint({str(dtype_checkpoint)!r}, verify=True)\n"
        "vals = [r.get_tensor(k) for k in r.keys()]\n"
        "assert r.object_graph() is not None and len(vals) > 20\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------------------------------
# bundles from the independent writer (TensorFlow reads them too)
# ---------------------------------------------------------------------------------------


def _crafted_values():
    rng = np.random.default_rng(11)
    import ml_dtypes

    return {
        "a/kernel": rng.standard_normal((7, 5)).astype(np.float32),
        "a/bias": rng.standard_normal(5).astype(np.float64),
        "b/é/ünïcode": rng.integers(-1000, 1000, (3, 3)).astype(np.int16),
        "c/half": rng.standard_normal((4, 4)).astype(np.float16),
        "c/bf16": rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16),
        "d/u64": rng.integers(0, 2**63, (3,), dtype=np.uint64),
        "d/i64": rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64),
        "d/u32": rng.integers(0, 2**32, (5,), dtype=np.uint32),
        "d/cplx": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
        "d/bool": rng.integers(0, 2, (6,)).astype(bool),
        "e/" + "long" * 80: np.arange(3, dtype=np.uint8),
        "e/strings": [b"one", b"", b"\x00\xff" * 100],
        "e/scalar": np.float32(2.5),
        "p/rows": rng.standard_normal((10, 4)).astype(np.float32),
        "p/cube": rng.standard_normal((4, 6, 5)).astype(np.float32),
    }


_CRAFTED_PARTITIONS = {
    "p/rows": [((0, 0), (4, None)), ((4, 0), (6, None))],
    "p/cube": [((0, 0, 0), (4, 2, 5)), ((0, 2, 0), (4, 4, 3)), ((0, 2, 3), (4, 4, 2))],
}


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"big_endian": True},
        {"compress": True},
        {"restart_interval": 1, "block_size": 64},
        {"restart_interval": 1000, "block_size": 1 << 20},
        {"restart_interval": 3, "block_size": 200, "compress": True, "num_shards": 3, "big_endian": True},
    ],
    ids=["plain", "big-endian", "snappy", "tiny-blocks", "one-block", "everything"],
)
def test_crafted_bundles_match_tf(tmp_path, variant):
    prefix = fx.write_bundle(tmp_path / "ckpt", _crafted_values(), partitions=_CRAFTED_PARTITIONS, **variant)
    reader = assert_matches_tf(prefix)
    assert reader.is_partitioned("p/rows") and reader.is_partitioned("p/cube")
    # Converting reads (byte-swapped, reassembled) agree with TF's values converted by numpy.
    theirs = tf.train.load_checkpoint(prefix)
    names = [n for n in reader.keys() if reader.dtype(n).name not in ("string", "complex64")]
    for name, value in zip(names, reader.read_many(names, dtypes=np.float64)):
        np.testing.assert_array_equal(value, np.asarray(theirs.get_tensor(name)).astype(np.float64), err_msg=name)
    if variant.get("big_endian"):  # swapped into new arrays, never viewed
        assert reader.get_tensor("a/kernel").flags.writeable
    # Read ahead (weightio.keras's first restores) as stored and converted: the same values.
    for dtypes in ([reader.dtype(n).read_dtype for n in names], [np.dtype(np.float64)] * len(names)):
        outs = [np.full(reader.shape(n), 7, dtype) for n, dtype in zip(names, dtypes)]
        assert reader._read_ahead(names, outs, 2).finish() == [True] * len(names)
        for name, out, expected in zip(names, outs, reader.read_many(names, dtypes=dtypes)):
            assert out.dtype == expected.dtype and out.tobytes() == expected.tobytes(), name


def test_read_ahead_refuses_what_it_cannot_read(tmp_path):
    prefix = fx.write_bundle(tmp_path / "ckpt", _crafted_values())
    reader = wt.load_checkpoint(prefix)
    kernel = "a/kernel"
    read_only = np.zeros((7, 5), np.float32)
    read_only.flags.writeable = False
    strided = np.zeros((35, 2), np.float32)[:, 0]
    for bad in (np.zeros(36, np.float32), read_only, strided, [0.0] * 35):
        with pytest.raises(ValueError):
            reader._read_ahead([kernel], [bad], 1)
    with pytest.raises(ValueError):
        reader._read_ahead([kernel, kernel], [np.zeros((7, 5), np.float32)], 1)
    with pytest.raises(weightio.UnsupportedFeatureError):
        reader._read_ahead(["e/strings"], [np.zeros(3, np.float32)], 1)
    with pytest.raises(weightio.Error, match="cannot convert"):
        reader._read_ahead(["d/cplx"], [np.zeros(3, np.float32)], 1)
    with pytest.raises(weightio.NotFoundError):
        reader._read_ahead(["nope"], [np.zeros(3, np.float32)], 1)


def test_read_ahead_outlives_its_reader(tmp_path):
    """The reading outlives ``close()`` and the reader itself (the job holds the bundle); a
    job dropped unfinished stops after the tensors it is reading."""
    values = {f"v{k}": np.random.default_rng(k).standard_normal(300_000).astype(np.float32) for k in range(6)}
    prefix = fx.write_bundle(tmp_path / "ckpt", values, num_shards=2)
    names = list(values)
    for _ in range(20):
        reader = wt.load_checkpoint(prefix)
        outs = [np.empty(300_000, np.float32) for _ in names]
        job = reader._read_ahead(names, outs, 2)
        reader.close()
        del reader
        assert job.finish() == [True] * len(names)
        for name, out in zip(names, outs):
            np.testing.assert_array_equal(out, values[name])
        reader = wt.load_checkpoint(prefix)
        dropped = reader._read_ahead(names, [np.empty(300_000, np.float32) for _ in names], 2)
        reader.close()
        del dropped


def test_empty_bundle_matches_tf(tmp_path):
    prefix = fx.write_bundle(tmp_path / "empty", {})
    reader = assert_matches_tf(prefix)
    assert reader.keys() == [] and reader.object_graph() is None and reader.load_all() == {}


def test_snappy_decoder_against_an_independent_encoder(tmp_path):
    """Blocks with long repeats (overlapping copies) and literals of every length class."""
    rng = np.random.default_rng(5)
    values = {
        f"layer_{i:04d}/{'x' * (i % 70)}/kernel": np.full((i % 5 + 1,), i, np.int32) for i in range(300)
    }
    values["noise"] = rng.integers(0, 255, (4096,)).astype(np.uint8)
    prefix = fx.write_bundle(tmp_path / "z", values, compress=True, block_size=1 << 16)
    assert_matches_tf(prefix)


# ---------------------------------------------------------------------------------------
# hostile files: the right error, naming the file
# ---------------------------------------------------------------------------------------


def _table(path, entries, **kw):
    fx.write_table(path, entries, **kw)


def _bundle_with(tmp_path, entries, header=None, data=b"", num_shards=1):
    prefix = str(tmp_path / "bad")
    hdr = header if header is not None else fx.encode_header(num_shards)
    _table(prefix + ".index", [(b"", hdr)] + sorted(entries.items()))
    for i in range(num_shards):
        Path(f"{prefix}.data-{i:05d}-of-{num_shards:05d}").write_bytes(data)
    return prefix


def _expect(exc_type, fn, *fragments):
    with pytest.raises(exc_type) as info:
        fn()
    message = str(info.value)
    for f in fragments:
        assert f in message, (f, message)
    return message


F32 = 1


@pytest.mark.parametrize(
    "case",
    [
        "short_index", "bad_magic", "block_crc", "block_type", "snappy_bomb", "handle_out_of_file",
        "no_header", "unsorted", "bad_restart", "zero_shards", "endianness", "negative_dim",
        "shape_overflow", "shard_out_of_range", "negative_offset",
    ],
)
def test_corrupt_index_raises_format_error(tmp_path, case):
    prefix = str(tmp_path / "bad")
    index = prefix + ".index"
    good = fx.encode_entry(F32, [2], size=8, crc=fx.mask(fx.crc32c(bytes(8))))
    header = fx.encode_header()
    exc = weightio.FormatError
    if case in ("short_index", "bad_magic", "block_crc", "block_type", "handle_out_of_file", "snappy_bomb"):
        _table(index, [(b"", header), (b"x", good)])
        raw = bytearray(Path(index).read_bytes())
        if case == "short_index":
            raw = raw[:40]
        elif case == "bad_magic":
            raw[-1] ^= 0x40
        elif case == "block_crc":
            raw[3] ^= 1
            exc = weightio.ChecksumError
        elif case == "block_type":
            block_off, block_size = fx.table_blocks(bytes(raw))[2]
            raw[block_off + block_size] = 7
            fx.repair_checksums(raw, [(block_off, block_size)])
        elif case == "handle_out_of_file":
            raw[-48:-8] = (fx.varint(0) + fx.varint(5) + fx.varint(1 << 40) + fx.varint(9)).ljust(40, b"\0")
        else:
            bomb = fx.varint(1 << 31) + b"\x00a"  # declares 2 GiB, holds one literal byte
            raw = bytearray(bomb + bytes([1]) + struct.pack("<I", fx.mask(fx.crc32c(bomb + bytes([1])))))
            raw += (fx.varint(0) + fx.varint(len(bomb)) + fx.varint(0) + fx.varint(len(bomb))).ljust(40, b"\0")
            raw += struct.pack("<Q", fx.MAGIC)
        Path(index).write_bytes(bytes(raw))
    elif case == "no_header":
        _table(index, [(b"a", good)])
    elif case == "unsorted":
        _table(index, [(b"", header), (b"b", good), (b"a", good)])
    elif case == "bad_restart":
        _table(index, [(b"", header), (b"a", good), (b"b", good)], restart_interval=1)
        raw = bytearray(Path(index).read_bytes())
        off, size = fx.table_blocks(bytes(raw))[2]
        struct.pack_into("<I", raw, off + size - 8, 5)  # the second restart points mid-entry
        fx.repair_checksums(raw, [(off, size)])
        Path(index).write_bytes(bytes(raw))
    else:
        entry = {
            "zero_shards": good, "endianness": good,
            "negative_dim": fx.encode_entry(F32, [-1]),
            "shape_overflow": fx.encode_entry(F32, [1 << 40, 1 << 40]),
            "shard_out_of_range": fx.encode_entry(F32, [2], shard_id=3, size=8),
            "negative_offset": fx.encode_entry(F32, [2], offset=-5, size=8),
        }[case]
        hdr = {"zero_shards": fx.encode_header(0), "endianness": fx.encode_header(1, 7)}.get(case, header)
        _table(index, [(b"", hdr), (b"x", entry)])
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(8))
    _expect(exc, lambda: wt.load_checkpoint(prefix), index, "byte offset")


def test_newer_bundle_versions_are_unsupported(tmp_path):
    prefix = _bundle_with(tmp_path, {}, header=fx.encode_header(min_consumer=2))
    _expect(weightio.UnsupportedFeatureError, lambda: wt.load_checkpoint(prefix), "version")
    prefix = _bundle_with(tmp_path, {}, header=fx.encode_header(bad_consumers=[1]))
    _expect(weightio.UnsupportedFeatureError, lambda: wt.load_checkpoint(prefix), "version")


def test_data_problems_are_reported_on_read(tmp_path):
    payload = np.arange(4, dtype=np.float32).tobytes()
    crc = fx.mask(fx.crc32c(payload))
    entries = {
        b"ok": fx.encode_entry(F32, [4], size=16, crc=crc),
        b"bad_crc": fx.encode_entry(F32, [4], size=16, crc=crc ^ 1),
        b"size_mismatch": fx.encode_entry(F32, [4], size=12, crc=crc),
        b"past_end": fx.encode_entry(F32, [4], offset=8, size=16, crc=crc),
        b"variant": fx.encode_entry(21, [1], size=4),
        b"unknown_dtype": fx.encode_entry(99, [1], size=4),
    }
    prefix = _bundle_with(tmp_path, entries, data=payload)
    data_file = prefix + ".data-00000-of-00001"
    reader = wt.load_checkpoint(prefix)
    np.testing.assert_array_equal(reader.get_tensor("ok", verify=True), np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(reader.get_tensor("bad_crc"), np.arange(4, dtype=np.float32))
    _expect(weightio.ChecksumError, lambda: reader.get_tensor("bad_crc", verify=True), data_file, "bad_crc")
    _expect(weightio.ChecksumError, lambda: reader.read_many(["ok", "bad_crc"], verify=True), "bad_crc")
    _expect(weightio.ChecksumError, lambda: reader.verify(), "bad_crc")
    _expect(weightio.FormatError, lambda: reader.get_tensor("size_mismatch"), data_file, "byte offset")
    _expect(weightio.FormatError, lambda: reader.read_many(["past_end"]), data_file, "outside the data file")
    _expect(weightio.UnsupportedFeatureError, lambda: reader.get_tensor("variant"), "variant")
    assert reader.get_variable_to_dtype_map()["unknown_dtype"].name == "DataType(99)"
    _expect(weightio.UnsupportedFeatureError, lambda: reader.get_tensor("unknown_dtype"))
    with pytest.raises(weightio.ChecksumError):
        wt.load_checkpoint(prefix, verify=True)
    os.remove(data_file)
    with pytest.raises(FileNotFoundError):
        wt.load_checkpoint(prefix).get_tensor("ok")


def test_corrupt_string_tensors(tmp_path):
    payload, crc = fx.string_bytes([b"abc", b"de"], big_endian=False)
    bad_lengths = bytearray(payload)
    bad_lengths[0] = 9  # lengths no longer match the length checksum
    huge = fx.varint(1 << 60) + payload[1:]
    data = payload + bytes(bad_lengths) + huge
    entries = {
        b"ok": fx.encode_entry(7, [2], size=len(payload), crc=crc),
        b"bad_length_crc": fx.encode_entry(7, [2], offset=len(payload), size=len(payload), crc=crc),
        b"bad_data_crc": fx.encode_entry(7, [2], size=len(payload), crc=crc ^ 4),
        b"more_elements_than_bytes": fx.encode_entry(7, [100], size=len(payload), crc=crc),
        b"huge_length": fx.encode_entry(7, [2], offset=2 * len(payload), size=len(huge), crc=crc),
    }
    reader = wt.load_checkpoint(_bundle_with(tmp_path, entries, data=data))
    assert list(reader.get_tensor("ok", verify=True)) == [b"abc", b"de"]
    _expect(weightio.ChecksumError, lambda: reader.get_tensor("bad_length_crc"), "length checksum")
    assert list(reader.get_tensor("bad_data_crc")) == [b"abc", b"de"]
    _expect(weightio.ChecksumError, lambda: reader.get_tensor("bad_data_crc", verify=True))
    _expect(weightio.FormatError, lambda: reader.get_tensor("more_elements_than_bytes"))
    with pytest.raises(weightio.Error):
        reader.get_tensor("huge_length")


@pytest.mark.parametrize("case", ["overlap", "gap", "missing", "dtype", "shape", "outside", "scalar"])
def test_inconsistent_partitions_raise_format_error(tmp_path, case):
    full = np.arange(12, dtype=np.float32).reshape(4, 3)
    slices = {
        "overlap": [((0, 0), (3, None)), ((2, 0), (2, None))],
        "gap": [((0, 0), (1, None)), ((2, 0), (2, None))],
        "outside": [((0, 0), (2, None)), ((2, 0), (3, None))],
    }.get(case, [((0, 0), (2, None)), ((2, 0), (2, None))])
    data = bytearray()
    entries = {}
    for starts, lengths in slices:
        if case == "outside" and starts[0] == 2:
            part = np.zeros((3, 3), np.float32)
        else:
            part = full[starts[0] : starts[0] + lengths[0]]
        payload = part.tobytes()
        dtype = 2 if case == "dtype" and starts[0] else F32
        shape = (9, 9) if case == "shape" and starts[0] else part.shape
        key = fx.slice_key(b"w", starts, lengths)
        if not (case == "missing" and starts[0]):
            entries[key] = fx.encode_entry(dtype, shape, offset=len(data), size=len(payload), crc=fx.mask(fx.crc32c(payload)))
        data += payload
    entries[b"w"] = fx.encode_entry(F32, [] if case == "scalar" else [4, 3], slices=slices)
    prefix = _bundle_with(tmp_path, entries, data=bytes(data))
    _expect(weightio.FormatError, lambda: wt.load_checkpoint(prefix), "partitioned tensor 'w'", prefix + ".index")


def test_truncated_files_are_rejected(tmp_path, keras_checkpoints):
    """Every truncation of an index fails at open; a truncated data file fails exactly for
    the tensors whose bytes are cut off, and the others still read like TF reads them."""
    src = Path(keras_checkpoints["functional"])
    index = src.with_name(src.name + ".index").read_bytes()
    for n in range(0, len(index), 7):
        (tmp_path / "t.index").write_bytes(index[:n])
        with pytest.raises((weightio.FormatError, weightio.ChecksumError)):
            wt.CheckpointReader(tmp_path / "t")
    data_name = src.name + ".data-00000-of-00001"
    shutil.copy(src.with_name(src.name + ".index"), tmp_path / "d.index")
    data = src.with_name(data_name).read_bytes()
    cut = len(data) // 2
    (tmp_path / "d.data-00000-of-00001").write_bytes(data[:cut])
    reader = wt.load_checkpoint(tmp_path / "d")
    theirs = tf.train.load_checkpoint(str(src))
    failed = 0
    for name in reader.keys():
        entry = reader.entry(name)
        if entry["offset"] + entry["size"] > cut:
            failed += 1
            _expect(weightio.FormatError, lambda: reader.get_tensor(name), "d.data-00000-of-00001", "outside")
        else:
            assert_same_value(reader.get_tensor(name), theirs.get_tensor(name), name)
    assert 0 < failed < len(reader)


def test_object_graph_with_dangling_node_id(tmp_path):
    graph = fx.pb_bytes(1, fx.pb_bytes(1, fx.pb_varint(1, 5) + fx.pb_bytes(2, b"child")))
    payload, crc = fx.string_bytes([graph], big_endian=False)
    entries = {wt.OBJECT_GRAPH_KEY.encode(): fx.encode_entry(7, [], size=len(payload), crc=crc)}
    reader = wt.load_checkpoint(_bundle_with(tmp_path, entries, data=payload))
    _expect(weightio.FormatError, reader.object_graph, "node id 5", "byte offset")


# ---------------------------------------------------------------------------------------
# mutants, in a subprocess: never a crash, never anything but weightio.Error
# ---------------------------------------------------------------------------------------


def _run_mutants(prefix: str, work: Path, start: int, stop: int) -> subprocess.Popen:
    cmd = [sys.executable, str(WORKER), "mutate", prefix, str(start), str(stop), str(MUTATION_SEED), str(work)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_mutants_never_crash(tmp_path, keras_checkpoints, sharded_checkpoint, partitioned_checkpoint):
    crafted = fx.write_bundle(
        tmp_path / "crafted" / "ckpt", _crafted_values(), partitions=_CRAFTED_PARTITIONS, big_endian=True,
        restart_interval=2, block_size=300,
    )
    bases = [keras_checkpoints["functional"], sharded_checkpoint, partitioned_checkpoint, crafted]
    problems, outcomes = [], {}
    procs = []
    for i, base in enumerate(bases):
        procs.append((base, _run_mutants(base, tmp_path / f"work{i}", 0, MUTANTS_PER_BASE)))
    for base, proc in procs:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results = [r for r in lines if "outcome" in r]
        for r in results:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            if r["outcome"] not in ("ok", "weightio"):
                problems.append((base, r))
        if proc.returncode != 0 or len(results) != MUTANTS_PER_BASE:
            last = [r for r in lines if "begin" in r][-1:] if lines else []
            problems.append((base, f"worker exited {proc.returncode} at {last}: {err[-2000:]}"))
    assert not problems, problems[:5]
    assert outcomes.get("weightio", 0) > 0 and outcomes.get("ok", 0) > 0, outcomes


# ---------------------------------------------------------------------------------------
# speed (opt-in): ResNet50, weightio vs tf.train.load_checkpoint + get_tensor
# ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("WEIGHTIO_TF_BENCH"), reason="set WEIGHTIO_TF_BENCH=1 to run the benchmark")
def test_resnet50_reads_at_least_3x_faster_than_tf(tmp_path):
    """weightio.tf.bench in a process of its own (weightio's users run without TensorFlow;
    TF is timed in yet another subprocess)."""
    pytest.importorskip("tf_keras")
    out = subprocess.run(
        [sys.executable, "-m", "weightio.tf", "bench", "--json"], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    assert result["ratio"] >= 3.0, result
    assert result["ratio_read_many_outs"] >= 3.0, result


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "seeds":
    # Seed inputs for cpp/fuzz/fuzz_tfckpt.cpp: uint32 index length, index, data shard 0.
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "_work"
    work.mkdir(exist_ok=True)
    prefixes = {
        "crafted": fx.write_bundle(work / "crafted", _crafted_values(), partitions=_CRAFTED_PARTITIONS, restart_interval=2, block_size=300),
        "crafted_be_snappy": fx.write_bundle(work / "be", _crafted_values(), big_endian=True, compress=True),
        "dtypes": tf.train.Checkpoint(**_all_dtype_values()).write(str(work / "dtypes")),
    }
    for name, prefix in prefixes.items():
        index = Path(prefix + ".index").read_bytes()
        data = Path(prefix + ".data-00000-of-00001").read_bytes()
        (out_dir / f"{name}.bin").write_bytes(struct.pack("<I", len(index)) + index + data)
    shutil.rmtree(work)
