"""Keras 3 model builders for the weightio.keras tests (imported in the per-backend runs only).

``build(name, seed)`` returns a built model whose every variable holds deterministic random
values drawn from ``seed`` (two builds with the same name and seed are identical, bit for
bit; different seeds give different values everywhere). ``MODELS`` lists the names.

Covered: Sequential, Functional (multi-input, shared layer), subclassed (with top-level
weights and list attributes), nested models (Sequential in Functional, Functional in
Sequential, a frozen sub-model), Dense, Conv1D/2D/3D, Conv2DTranspose, SeparableConv2D,
DepthwiseConv2D, BatchNormalization, LayerNormalization, Embedding, SimpleRNN, LSTM, GRU,
ConvLSTM2D, Bidirectional, TimeDistributed, MultiHeadAttention, an adapted Normalization
(its ``mean``/``variance`` come from ``finalize_state``), a custom layer with trainable,
non-trainable float and integer weights, bfloat16 layers (dtype policy "bfloat16": the
variables themselves are bfloat16) and a StringLookup in tf_idf mode (a tf.Variable that
the layer loads itself, under the key "idf_weights").
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers

PACKAGE = "weightio_tests"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaleShift(layers.Layer):
    """A custom layer with its own weights: trainable ``scale``/``shift``, non-trainable
    float ``running`` and int32 ``calls``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def build(self, input_shape: Any) -> None:
        dim = input_shape[-1]
        self.scale = self.add_weight(shape=(dim,), initializer="ones", name="scale")
        self.shift = self.add_weight(shape=(dim,), initializer="zeros", name="shift")
        self.running = self.add_weight(shape=(2, dim), initializer="zeros", trainable=False, name="running")
        self.calls = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="calls")

    def call(self, x: Any) -> Any:
        return x * self.scale + self.shift + keras.ops.sum(self.running, axis=0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        # Without it, Keras's numpy backend infers the shape by running call() on
        # uninitialized arrays, which may warn "invalid value encountered in multiply".
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class Subclassed(keras.Model):
    """A subclassed model: attribute layers, a list of layers, a custom layer and a weight
    of its own (saved as ``top_level_model_weights`` in legacy files)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.enc = layers.Dense(6, activation="relu", name="enc")
        self.blocks = [layers.Dense(6, name="block_0"), layers.Dense(6, name="block_1")]
        self.norm = layers.BatchNormalization(name="bn")
        self.custom = ScaleShift(name="scale_shift")
        self.head = layers.Dense(2, name="head")
        self.temperature = self.add_weight(shape=(2,), initializer="ones", name="temperature")

    def call(self, x: Any) -> Any:
        x = self.enc(x)
        for block in self.blocks:
            x = block(x)
        x = self.custom(self.norm(x))
        return self.head(x) * self.temperature


# -- builders: each returns an unbuilt-or-built model; build() finishes the job ----------


def _sequential_dense() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(16, activation="relu", name="d0"),
            layers.BatchNormalization(name="bn"),
            layers.Dropout(0.1, name="drop"),
            layers.LayerNormalization(name="ln"),
            layers.Dense(4, name="d1"),
        ],
        name="seq_dense",
    )


def _functional_conv() -> keras.Model:
    in1 = keras.Input((16, 3), name="in1")
    in2 = keras.Input((8, 8, 3), name="in2")
    in3 = keras.Input((4, 4, 4, 2), name="in3")
    a = layers.GlobalAveragePooling1D()(layers.Conv1D(4, 3, name="c1")(in1))
    b = layers.Conv2D(4, 3, padding="same", name="c2")(in2)
    b = layers.BatchNormalization(name="bn2")(b)
    b = layers.Conv2DTranspose(3, 3, strides=2, name="c2t")(b)
    b = layers.SeparableConv2D(4, 3, name="sep")(b)
    b = layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(b)
    b = layers.GlobalAveragePooling2D()(b)
    c = layers.GlobalAveragePooling3D()(layers.Conv3D(2, 2, name="c3")(in3))
    out = layers.Dense(3, name="head")(layers.Concatenate()([a, b, c]))
    return keras.Model([in1, in2, in3], out, name="functional_conv")


def _functional_rnn() -> keras.Model:
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = layers.Embedding(20, 5, name="emb")(tokens)
    x = layers.SimpleRNN(4, return_sequences=True, name="srnn")(x)
    x = layers.LSTM(4, return_sequences=True, name="lstm")(x)
    x = layers.Bidirectional(layers.GRU(3, return_sequences=True, name="gru"), name="bidi")(x)
    x = layers.TimeDistributed(layers.Dense(2, name="td_dense"), name="td")(x)
    return keras.Model(tokens, layers.Flatten()(x), name="functional_rnn")


def _conv_lstm() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((3, 6, 6, 2)),
            layers.ConvLSTM2D(2, 3, name="convlstm"),
            layers.Flatten(),
            layers.Dense(1, name="head"),
        ],
        name="conv_lstm",
    )


def _attention() -> keras.Model:
    x = keras.Input((5, 8), name="x")
    y = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    y = layers.LayerNormalization(name="ln")(y + x)
    return keras.Model(x, layers.Dense(3, name="head")(y), name="attention")


def _normalization() -> keras.Model:
    norm = layers.Normalization(axis=-1, name="norm")
    norm.adapt(np.arange(40, dtype="float32").reshape(10, 4) % 7)
    return keras.Sequential([keras.Input((4,)), norm, layers.Dense(2, name="head")], name="normalization")


def _custom_layer() -> keras.Model:
    return keras.Sequential(
        [keras.Input((6,)), ScaleShift(name="scale_shift"), layers.Dense(3, name="head")], name="custom_layer"
    )


def _subclassed() -> keras.Model:
    model = Subclassed(name="subclassed")
    model(np.zeros((1, 5), "float32"))
    return model


def _inner_sequential(name: str = "inner") -> keras.Model:
    return keras.Sequential(
        [keras.Input((6,)), layers.Dense(6, name="inner_dense"), layers.BatchNormalization(name="inner_bn")], name=name
    )


def _nested_seq_in_functional() -> keras.Model:
    x = keras.Input((4,), name="x")
    y = layers.Dense(6, name="pre")(x)
    y = _inner_sequential()(y)
    return keras.Model(x, layers.Dense(2, name="post")(y), name="nested_seq_in_functional")


def _nested_functional_in_seq(frozen: bool = False) -> keras.Model:
    i = keras.Input((6,))
    o = layers.LayerNormalization(name="inner_ln")(layers.Dense(6, name="inner_dense")(i))
    inner = keras.Model(i, o, name="inner_functional")
    inner.trainable = not frozen
    return keras.Sequential(
        [keras.Input((4,)), layers.Dense(6, name="pre"), inner, layers.Dense(2, name="post")],
        name="nested_frozen" if frozen else "nested_functional_in_seq",
    )


def _shared_layer() -> keras.Model:
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    out = layers.Dense(2, name="head")(layers.Concatenate()([shared(a), shared(b)]))
    return keras.Model([a, b], out, name="shared_layer")


def _bfloat16() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(3, dtype="bfloat16", name="bf16_dense"),
            layers.LayerNormalization(dtype="bfloat16", name="bf16_ln"),
            layers.Dense(2, name="f32_dense"),
        ],
        name="bfloat16",
    )


VOCABULARY = ["alpha", "beta", "gamma", "delta", "epsilon"]


def _string_lookup_tfidf(units: int = 3) -> keras.Model:
    """A StringLookup in tf_idf mode: its ``idf_weights`` is a tf.Variable that its own
    ``load_own_variables`` assigns (not a Keras variable), stored under the key
    "idf_weights", and ``idf_weights_const`` is derived from it."""
    words = keras.Input((4,), dtype="string", name="words")
    lookup = layers.StringLookup(output_mode="tf_idf", name="lookup")
    lookup.adapt(np.array([[VOCABULARY[(i * j + i) % 5] for j in range(4)] for i in range(12)]))
    return keras.Model(words, layers.Dense(units, name="head")(lookup(words)), name="string_lookup_tfidf")


BUILDERS: dict[str, Callable[[], keras.Model]] = {
    "sequential_dense": _sequential_dense,
    "functional_conv": _functional_conv,
    "functional_rnn": _functional_rnn,
    "conv_lstm": _conv_lstm,
    "attention": _attention,
    "normalization": _normalization,
    "custom_layer": _custom_layer,
    "subclassed": _subclassed,
    "nested_seq_in_functional": _nested_seq_in_functional,
    "nested_functional_in_seq": _nested_functional_in_seq,
    "nested_frozen": lambda: _nested_functional_in_seq(frozen=True),
    "shared_layer": _shared_layer,
    "bfloat16": _bfloat16,
    "string_lookup_tfidf": _string_lookup_tfidf,
}
MODELS = list(BUILDERS)


def randomize(model: keras.Model, seed: int) -> keras.Model:
    """Gives every variable of ``model`` deterministic random values from ``seed`` (keyed by
    the variable's path and position, so equal models get equal values), then re-derives
    state that depends on variables (``finalize_state``)."""
    for index, variable in enumerate(model.variables):
        key = zlib.crc32(f"{seed}/{index}/{variable.path}".encode())
        rng = np.random.default_rng(key)
        dtype = keras.backend.standardize_dtype(variable.dtype)
        shape = tuple(variable.shape)
        if "int" in dtype:
            if "seed_generator" in variable.path:
                continue  # RNG state of Dropout & co.: leave it alone
            value = rng.integers(0, 100, size=shape).astype(dtype)
        elif dtype == "bool":
            value = rng.integers(0, 2, size=shape).astype(bool)
        else:
            value = rng.standard_normal(shape).astype("float32")
            if "variance" in variable.path:
                value = np.abs(value) + 0.5
        variable.assign(value)
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, layers.Normalization) and layer.built:
            layer.finalize_state()
        if getattr(layer, "output_mode", None) == "tf_idf" and hasattr(layer, "idf_weights"):
            rng = np.random.default_rng(zlib.crc32(f"{seed}/{layer.name}/idf".encode()))
            layer.idf_weights.assign(np.abs(rng.standard_normal(layer.idf_weights.shape)).astype("float32"))
            layer.idf_weights_const = layer.idf_weights.value()
    return model


def build(name: str, seed: int = 0) -> keras.Model:
    """A built ``name`` model with random weights drawn from ``seed``."""
    return randomize(BUILDERS[name](), seed)


def sample_inputs(model: keras.Model, seed: int = 123) -> Any:
    """A deterministic input batch for ``model`` (for comparing outputs)."""
    rng = np.random.default_rng(seed)

    def one(shape: Any, dtype: str) -> np.ndarray:
        shape = (2, *shape[1:])
        if dtype == "string":
            return np.array(VOCABULARY + ["unknown"])[rng.integers(0, 6, size=shape)]
        if "int" in dtype:
            return rng.integers(0, 20, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    if isinstance(model, Subclassed):
        return one((None, 5), "float32")
    inputs = model.inputs
    arrays = [one(tuple(t.shape), keras.backend.standardize_dtype(t.dtype)) for t in inputs]
    return arrays[0] if len(arrays) == 1 else arrays
