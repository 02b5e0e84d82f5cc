"""weightio's TensorFlow ops (``weightio/keras/tf_ops.cc``): many variables set in one op call.

The ops are compiled here against the installed TensorFlow (``tf_ops.build``, cached: CI
builds them before the suite, so every TensorFlow and tf-keras load in the suite uses them).
Checked: the values land bit for bit for every dtype the op copies; a tensor read from a
variable before keeps its values (copy on write, as TensorFlow's own assign); one bad
variable and none is written; a variable listed twice ends with its last value; the packed
handles of a set of variables go when one of them does; weightio's assignment uses the op
and falls back to TensorFlow's own op when the op refuses; loads into tf-keras models give
the same variables with and without the ops; the switch and the build's errors.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import weightio.keras as wk
from weightio.cli import main as cli_main
from weightio.keras import assign, tf_ops


@pytest.fixture(scope="module")
def built() -> str:
    return tf_ops.build()


@pytest.fixture
def ops(built: str) -> Iterator[Any]:
    tf_ops.forget()
    found = tf_ops.ops()
    assert found is not None, f"weightio's TensorFlow ops did not load from {built}"
    yield found
    tf_ops.forget()


DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128]
SHAPES = [(), (0,), (3,), (2, 3, 4), (1000,)]


def _random(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    if np.dtype(dtype) == np.bool_:
        raw = raw & 1
    return raw.view(dtype).reshape(shape)  # any bits, NaN payloads included: compared as bytes


def _enums(variables: list[Any]) -> np.ndarray:
    return np.array([v.dtype.as_datatype_enum for v in variables], np.int32)


def test_sets_every_dtype_the_op_copies_bit_for_bit(ops: Any) -> None:
    rng = np.random.default_rng(0)
    pairs = [(dtype, shape) for dtype in DTYPES for shape in SHAPES]
    variables = [tf.Variable(np.zeros(shape, dtype)) for dtype, shape in pairs]
    values = [_random(shape, dtype, rng) for dtype, shape in pairs]
    ops.assign(variables, values, _enums(variables))
    for variable, value in zip(variables, values):
        got = variable.numpy()
        assert got.dtype == value.dtype and got.shape == value.shape
        assert got.tobytes() == value.tobytes()


def test_a_tensor_read_before_keeps_its_values(ops: Any) -> None:
    variable = tf.Variable(np.arange(6, dtype=np.float32))
    read = variable.read_value()
    view = variable.numpy()
    before = view.copy()
    new = np.full(6, 7, np.float32)
    ops.assign([variable], [new], _enums([variable]))
    np.testing.assert_array_equal(read.numpy(), before)
    np.testing.assert_array_equal(view, before)
    np.testing.assert_array_equal(variable.numpy(), new)
    # Nothing holds the old buffer now: the next assignment writes in place, still correct.
    del read, view
    ops.assign([variable], [new + 1], _enums([variable]))
    np.testing.assert_array_equal(variable.numpy(), new + 1)


@pytest.mark.parametrize("wrong", ["size", "dtype"])
def test_one_wrong_variable_and_none_is_written(ops: Any, wrong: str) -> None:
    a = tf.Variable(np.zeros(4, np.float32))
    b = tf.Variable(np.zeros(3, np.float32))
    values = [np.ones(4, np.float32), np.ones(4 if wrong == "size" else 3, np.float32)]
    enums = _enums([a, b])
    if wrong == "dtype":
        enums[1] = tf.float64.as_datatype_enum
    with pytest.raises(tf.errors.InvalidArgumentError, match="variable 1"):
        ops.assign([a, b], values, enums)
    np.testing.assert_array_equal(a.numpy(), np.zeros(4))
    np.testing.assert_array_equal(b.numpy(), np.zeros(3))


def test_refuses_what_is_not_a_contiguous_array(ops: Any) -> None:
    a = tf.Variable(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.assign([a], [np.ones((2, 2), np.float32).T.copy().T], _enums([a]))
    with pytest.raises(ValueError, match="numpy array"):
        ops.assign([a], [[1.0, 2.0, 3.0, 4.0]], _enums([a]))
    np.testing.assert_array_equal(a.numpy(), np.zeros((2, 2)))


def test_a_variable_listed_twice_ends_with_the_last_value(ops: Any) -> None:
    a = tf.Variable(np.zeros(3, np.float32))
    ops.assign([a, a], [np.ones(3, np.float32), np.full(3, 2, np.float32)], _enums([a, a]))
    np.testing.assert_array_equal(a.numpy(), np.full(3, 2))


def test_packed_handles_many_variables_in_order_and_go_with_them(ops: Any) -> None:
    count = 3 * 64 * 64 + 5  # three levels of packing, the last part of each padded
    variables = [tf.Variable(np.float32(i)) for i in range(count)]
    values = [np.array(-i, np.float32) for i in range(count)]
    ops.assign(variables, values, _enums(variables))
    assert [v.numpy() for v in variables[::997]] == [-i for i in range(0, count, 997)]
    assert variables[-1].numpy() == -(count - 1)
    key = tuple(map(id, variables))
    assert key in ops._packed
    assert ops.packed(variables) is ops._packed[key][1]  # the same tensor the next time
    del variables[7]
    gc.collect()
    assert key not in ops._packed


def test_keeps_a_bounded_number_of_packed_sets(ops: Any) -> None:
    keep = [[tf.Variable(1.0)] for _ in range(tf_ops._MAX_PACKED + 3)]
    for variables in keep:
        ops.packed(variables)
    assert len(ops._packed) <= tf_ops._MAX_PACKED


def test_empty_makes_tensors_of_the_shapes_and_types_and_says_where_they_are(ops: Any) -> None:
    shapes = [(2, 3), (0,), (), (5, 1, 2)]
    dtypes = [tf.float32, tf.int8, tf.float64, tf.bfloat16]
    tensors, addresses = ops.empty(shapes, [d.as_datatype_enum for d in dtypes])
    assert [tuple(t.shape) for t in tensors] == shapes
    assert [t.dtype for t in tensors] == dtypes
    assert addresses[1] == 0
    for tensor, address in zip(tensors, addresses):
        if tensor.shape.num_elements():
            assert address % 64 == 0
            if tensor.dtype != tf.bfloat16:  # (numpy cannot import bfloat16 through DLPack)
                assert np.from_dlpack(tensor).ctypes.data == address


def test_variables_take_over_tensors_or_none_does(ops: Any) -> None:
    a = tf.Variable(np.zeros((2, 3), np.float32))
    b = tf.Variable(np.zeros(4, np.int32))
    (ta, tb), (address_a, _) = ops.empty([(2, 3), (4,)], [tf.float32.as_datatype_enum, tf.int32.as_datatype_enum])
    wrong, _ = ops.empty([(3, 2)], [tf.float32.as_datatype_enum])
    with pytest.raises(tf.errors.InvalidArgumentError, match="variable 1"):
        ops.adopt([b, a], [tb, wrong[0]])  # a (3, 2) tensor for a (2, 3) variable
    np.testing.assert_array_equal(b.numpy(), np.zeros(4))
    np.asarray(_memory(ta, np.float32, (2, 3), address_a))[:] = np.arange(6).reshape(2, 3)
    np.asarray(_memory(tb, np.int32, (4,), None))[:] = [7, 8, 9, 10]
    ops.adopt([a, b], [ta, tb])
    del ta, tb
    np.testing.assert_array_equal(a.numpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(b.numpy(), [7, 8, 9, 10])
    assert np.from_dlpack(a.read_value()).ctypes.data == address_a  # taken over, not copied


def _memory(tensor: Any, dtype: Any, shape: tuple[int, ...], address: Any) -> Any:
    return assign._TensorMemory(tensor, np.dtype(dtype), shape, address)


def _direct_pairs(rng: np.random.Generator) -> list[tuple[Any, np.ndarray]]:
    small = [(tf.Variable(np.zeros((4, 4), np.float32)), rng.random((4, 4), np.float32)) for _ in range(5)]
    large = [(tf.Variable(np.zeros((200, 200), np.float32)), rng.random((200, 200), np.float32))]
    bf = [(tf.Variable(np.zeros(3, ml_dtypes.bfloat16)), np.ones(3, ml_dtypes.bfloat16))]
    return small + large + bf


def test_weightios_assignment_uses_the_op_for_small_values(ops: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = type(ops).assign

    def spy(self: Any, variables: list[Any], values: list[Any], dtypes: Any) -> None:
        calls.append(len(variables))
        real(self, variables, values, dtypes)

    monkeypatch.setattr(type(ops), "assign", spy)
    pairs = _direct_pairs(np.random.default_rng(1))
    # The large value is weightio's own (fresh): adopted without a copy, not through the op.
    assign.assign_tensorflow_pairs(pairs, fresh={id(pairs[5][1])})
    assert calls == [6]
    for variable, value in pairs:
        assert variable.numpy().tobytes() == value.tobytes()


def test_weightios_assignment_falls_back_when_the_op_refuses(ops: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, variables: list[Any], values: list[Any], dtypes: Any) -> None:
        raise tf.errors.InvalidArgumentError(None, None, "refused")

    monkeypatch.setattr(type(ops), "assign", refuse)
    pairs = _direct_pairs(np.random.default_rng(2))
    assign.assign_tensorflow_pairs(pairs)
    for variable, value in pairs:
        assert variable.numpy().tobytes() == value.tobytes()


def test_a_variable_assigned_twice_in_one_call_ends_with_the_later_value(ops: Any) -> None:
    a = tf.Variable(np.zeros(3, np.float32))
    b = tf.Variable(np.zeros(3, np.float32))
    assign.assign_tensorflow_pairs(
        [(a, np.ones(3, np.float32)), (b, np.ones(3, np.float32)), (a, np.full(3, 5, np.float32))]
    )
    np.testing.assert_array_equal(a.numpy(), np.full(3, 5))
    np.testing.assert_array_equal(b.numpy(), np.ones(3))


def _bn_model() -> Any:
    inputs = tf_keras.Input((8,))
    x = inputs
    for _ in range(40):
        x = tf_keras.layers.BatchNormalization()(x)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(3)(x))


@pytest.mark.parametrize("name", ["w.h5", "w.weights.h5"])
def test_tf_keras_loads_give_the_same_variables_with_and_without_the_ops(
    ops: Any, tmp_path: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _bn_model()
    rng = np.random.default_rng(3)
    for variable in source.weights:
        variable.assign(rng.random(variable.shape, np.float32))
    path = str(tmp_path / name)
    source.save_weights(path)
    calls: list[int] = []
    real = type(ops).assign
    monkeypatch.setattr(type(ops), "assign", lambda self, *a: (calls.append(len(a[0])), real(self, *a))[1])
    with_ops, without_ops = _bn_model(), _bn_model()
    for _ in range(2):  # a first load, then a replay
        wk.load_weights(with_ops, path)
    assert calls and sum(calls) >= 2 * len(source.weights) - 2
    monkeypatch.setenv("WEIGHTIO_TF_OPS", "0")
    tf_ops.forget()
    assert tf_ops.ops() is None
    calls.clear()
    wk.load_weights(without_ops, path)
    assert calls == []
    for a, b, c in zip(source.weights, with_ops.weights, without_ops.weights):
        assert a.numpy().tobytes() == b.numpy().tobytes() == c.numpy().tobytes()


def test_the_switch_and_a_failed_build(built: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    assert os.path.exists(built)
    monkeypatch.setenv("WEIGHTIO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    for setting in ("", "build"):  # not built here: not used; "build": the build fails, not used
        monkeypatch.setenv("WEIGHTIO_TF_OPS", setting)
        tf_ops.forget()
        assert tf_ops.ops() is None
    with pytest.raises(tf_ops.BuildError, match="no C\\+\\+ compiler"):
        tf_ops.build()
    assert cli_main(["build-tf-ops"]) == 2
    assert "no C++ compiler" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
    tf_ops.forget()
