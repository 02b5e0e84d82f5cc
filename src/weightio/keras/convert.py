"""Old Keras weight layouts converted for Keras 3 layers (``load_weights(..., convert_legacy=True)``).

Keras 3's legacy HDF5 loader reads ``keras_version`` and ``backend`` and ignores them: it has
no equivalent of tf-keras's ``preprocess_weights_for_loading``. These functions give Keras 3
layers the same conversions, written here with numpy from what tf-keras does (dispatch on the
layer's class name; see KERAS_FORMATS.md section 2):

* wrappers and nested models recurse: ``Bidirectional`` (forward half, backward half),
  ``TimeDistributed`` (the wrapped layer), ``Sequential``/``Functional``/``Model`` (each
  sub-layer's share of the trainable and non-trainable values);
* files without ``keras_version`` (Keras 1): Conv1D kernels stored as 4-D Conv2D kernels,
  channels-first Conv2D/Conv3D kernels, Conv2DTranspose kernels with their channel axes
  swapped, GRU as 9 per-gate arrays, LSTM and ConvLSTM2D as 12 per-gate arrays (gate order
  i, c, f, o);
* any version: a conv kernel whose shape differs from the layer's is in Theano's layout;
* any version: CuDNNLSTM / CuDNNGRU weights (3 arrays, told apart by the bias size).

Where tf-keras would fail or silently misload, these leave the values alone and let Keras's
own count and shape checks report (and ``skip_mismatch`` skip) them:

* a conv kernel is transposed to the Theano layout only when it is 4-D and the transposed
  shape is the layer's (tf-keras transposes whatever the shape, and fails on 3-D/5-D kernels);
* a Keras-1 Conv1D kernel is only rewritten when it is 4-D (tf-keras fails otherwise);
* an LSTM/GRU bias of no known size, or a GRU ``reset_after=False`` / ``True`` mix, is left
  as it is (tf-keras raises its own ``ValueError``);
* ``TimeDistributed`` converts its wrapped layer once (tf-keras converts it a second time for
  Keras-1 files: harmless for layers whose conversion is idempotent, wrong for channels-first
  convolutions, a crash for Conv1D);
* values of a nested model left over after its sub-layers stay in place, so a file with too
  many values fails Keras's count check (tf-keras drops them).

Values may be ``LazyArray``s: their shape is known without reading, and only the values a
conversion rewrites are read (one by one; conversions are for old, small files).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Weight", "preprocess_weights", "preprocess_traced"]


class Weight:
    """A value and the file entries it was built from (for ``LoadReport.loaded``)."""

    __slots__ = ("sources", "value")

    def __init__(self, value: Any, sources: tuple[str, ...] = ()) -> None:
        self.value = value
        self.sources = sources

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def array(self) -> np.ndarray:
        return np.asarray(self.value)

    def with_array(self, fn: Callable[[np.ndarray], np.ndarray]) -> Weight:
        return Weight(fn(self.array()), self.sources)

    def transposed(self, axes: tuple[int, ...]) -> Weight:
        return self.with_array(lambda a: np.transpose(a, axes))


def _concat(parts: Sequence[Weight]) -> Weight:
    """Per-gate arrays joined along the last axis (the unit axis of Keras 2+ kernels)."""
    sources = tuple(s for p in parts for s in p.sources)
    return Weight(np.concatenate([p.array() for p in parts], axis=-1), sources)


def preprocess_weights(
    layer: Any, values: Sequence[Any], original_keras_version: str | None = None, original_backend: str | None = None
) -> list[Any]:
    """The values of ``layer`` as stored by an older Keras, in the layout ``layer`` expects
    (same arguments as tf-keras's ``preprocess_weights_for_loading``)."""
    weights = [Weight(v) for v in values]
    return [w.value for w in preprocess_traced(layer, weights, original_keras_version, original_backend)]


def preprocess_traced(
    layer: Any, weights: list[Weight], original_keras_version: str | None, original_backend: str | None
) -> list[Weight]:
    """``preprocess_weights`` over ``Weight``s, keeping track of where each value came from."""
    kind = type(layer).__name__
    # Containers first: their own class matches none of the layer rules below.
    if kind == "Bidirectional":
        half = len(weights) // 2
        forward = preprocess_traced(layer.forward_layer, weights[:half], original_keras_version, original_backend)
        backward = preprocess_traced(layer.backward_layer, weights[half:], original_keras_version, original_backend)
        return forward + backward
    if kind == "TimeDistributed":
        return preprocess_traced(layer.layer, weights, original_keras_version, original_backend)
    if kind in ("Model", "Sequential", "Functional"):
        return _nested_model(layer, weights, original_keras_version, original_backend)

    weights = list(weights)
    if original_keras_version == "1":
        keras1 = _KERAS1.get(kind)
        if keras1 is not None and weights:
            weights = keras1(layer, weights)
    if kind in _CONV and weights:
        weights = _theano_layout(layer, weights, kind == "ConvLSTM2D")
    if kind == "LSTM" and len(weights) == 3:
        weights = _from_cudnn_lstm(weights)
    elif kind == "GRU" and len(weights) == 3:
        weights = _from_cudnn_gru(layer, weights)
    return weights


def _nested_model(model: Any, weights: list[Weight], version: str | None, backend: str | None) -> list[Weight]:
    """A nested model's values are its sub-layers' trainable values, then their
    non-trainable ones: hand each sub-layer its share of both, convert, put them back."""
    n_trainable = len(model.trainable_weights)
    trainable, non_trainable = weights[:n_trainable], weights[n_trainable:]
    new_trainable: list[Weight] = []
    new_non_trainable: list[Weight] = []
    for sublayer in model.layers:
        t = len(sublayer.trainable_weights)
        n = len(sublayer.non_trainable_weights)
        if not t + n:
            continue
        converted = preprocess_traced(sublayer, trainable[:t] + non_trainable[:n], version, backend)
        new_trainable += converted[:t]
        new_non_trainable += converted[t:]
        trainable, non_trainable = trainable[t:], non_trainable[n:]
    # What no sub-layer took (the model's own weights, or a file with too many values).
    return new_trainable + trainable + new_non_trainable + non_trainable


# -- Keras 1 (no keras_version in the file) -------------------------------------------------


def _keras1_conv1d(layer: Any, weights: list[Weight]) -> list[Weight]:
    # Keras 1 implemented Conv1D with a 4-D Conv2D kernel: (length, 1, in, filters), or in
    # Keras 1.1 (filters, in, length, 1). Keras 2+ keeps (length, in, filters).
    kernel = weights[0]
    shape = kernel.shape
    if len(shape) != 4:
        return weights
    length = layer.kernel_size[0]
    if shape[:2] != (length, 1) or shape[3] != layer.filters:
        kernel = kernel.transposed((2, 3, 1, 0))
    return [kernel.with_array(lambda a: a[:, 0, :, :]), *weights[1:]]


def _keras1_conv2d(layer: Any, weights: list[Weight]) -> list[Weight]:
    # Theano ordering: (filters, in, rows, cols) -> (rows, cols, in, filters).
    if layer.data_format == "channels_first":
        return [weights[0].transposed((2, 3, 1, 0)), *weights[1:]]
    return weights


def _keras1_conv2d_transpose(layer: Any, weights: list[Weight]) -> list[Weight]:
    # Keras 1 stored (rows, cols, in, filters) (or channels first (filters, in, rows, cols));
    # transposed convolutions keep (rows, cols, filters, in).
    if layer.data_format == "channels_last":
        return [weights[0].transposed((0, 1, 3, 2)), *weights[1:]]
    if layer.data_format == "channels_first":
        return [weights[0].transposed((2, 3, 0, 1)), *weights[1:]]
    return weights


def _keras1_conv3d(layer: Any, weights: list[Weight]) -> list[Weight]:
    if layer.data_format == "channels_first":
        return [weights[0].transposed((2, 3, 4, 1, 0)), *weights[1:]]
    return weights


# Keras 1 stored one (kernel, recurrent kernel, bias) triple per gate, gate after gate.
# Keras 2+ joins the gates along the last axis: GRU in order z, r, h (as stored); LSTM and
# ConvLSTM2D in order i, f, c, o where Keras 1 stored i, c, f, o.
_GRU_GATES = (0, 1, 2)
_LSTM_GATES = (0, 2, 1, 3)  # stored gate index for each of i, f, c, o


def _join_gates(weights: list[Weight], gates: tuple[int, ...]) -> list[Weight]:
    return [_concat([weights[3 * g + part] for g in gates]) for part in range(3)]


def _keras1_gru(layer: Any, weights: list[Weight]) -> list[Weight]:
    return _join_gates(weights, _GRU_GATES) if len(weights) == 9 else weights


def _keras1_lstm(layer: Any, weights: list[Weight]) -> list[Weight]:
    return _join_gates(weights, _LSTM_GATES) if len(weights) == 12 else weights


def _keras1_conv_lstm2d(layer: Any, weights: list[Weight]) -> list[Weight]:
    if len(weights) != 12:
        return weights
    kernel, recurrent, bias = _join_gates(weights, _LSTM_GATES)
    if layer.data_format == "channels_first":
        kernel, recurrent = kernel.transposed((2, 3, 1, 0)), recurrent.transposed((2, 3, 1, 0))
    return [kernel, recurrent, bias]


_KERAS1: dict[str, Callable[[Any, list[Weight]], list[Weight]]] = {
    "Conv1D": _keras1_conv1d,
    "Conv2D": _keras1_conv2d,
    "Conv2DTranspose": _keras1_conv2d_transpose,
    "Conv3D": _keras1_conv3d,
    "GRU": _keras1_gru,
    "LSTM": _keras1_lstm,
    "ConvLSTM2D": _keras1_conv_lstm2d,
}


# -- Theano kernel layout (any version) -----------------------------------------------------

_CONV = ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "ConvLSTM2D")
_THEANO_AXES = (3, 2, 0, 1)


def _theano_layout(layer: Any, weights: list[Weight], recurrent_too: bool) -> list[Weight]:
    variables = layer.weights
    if not variables:
        return weights
    expected = tuple(variables[0].shape)
    kernel = weights[0]
    if kernel.shape == expected or len(kernel.shape) != 4:
        return weights
    if tuple(kernel.shape[a] for a in _THEANO_AXES) != expected:
        return weights  # not a Theano kernel: Keras's shape check reports it
    weights = [kernel.transposed(_THEANO_AXES), *weights[1:]]
    if recurrent_too and len(weights) > 1 and len(weights[1].shape) == 4:
        weights[1] = weights[1].transposed(_THEANO_AXES)
    return weights


# -- CuDNN RNN weights (any version) --------------------------------------------------------


def _per_gate(kernel: np.ndarray, n_gates: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.concatenate([fn(block) for block in np.split(kernel, n_gates, axis=1)], axis=1)


def _cudnn_input_block(block: np.ndarray) -> np.ndarray:
    # CuDNN keeps each gate's (in, units) input matrix as its transpose, row after row: read
    # the same bytes as (units, in) and transpose them.
    rows, cols = block.shape
    return np.ascontiguousarray(block).reshape(cols, rows).T


def _from_cudnn_kernels(weights: list[Weight], n_gates: int) -> tuple[Weight, Weight]:
    kernel = weights[0].with_array(lambda k: _per_gate(k, n_gates, _cudnn_input_block))
    recurrent = weights[1].with_array(lambda k: _per_gate(k, n_gates, np.transpose))
    return kernel, recurrent


def _from_cudnn_lstm(weights: list[Weight]) -> list[Weight]:
    # CuDNNLSTM: separate input and recurrent biases, (8 * units,); LSTM: (4 * units,).
    units = weights[1].shape[0]
    if weights[2].shape != (8 * units,):
        return weights
    kernel, recurrent = _from_cudnn_kernels(weights, 4)
    bias = weights[2].with_array(lambda b: b[: 4 * units] + b[4 * units :])
    return [kernel, recurrent, bias]


def _from_cudnn_gru(layer: Any, weights: list[Weight]) -> list[Weight]:
    # CuDNNGRU: (6 * units,) biases, the layout of GRU(reset_after=True) (whose bias is
    # (2, 3 * units)) once reshaped; GRU(reset_after=False) cannot take them.
    units = weights[1].shape[0]
    if weights[2].shape != (6 * units,) or not getattr(layer, "reset_after", False):
        return weights
    kernel, recurrent = _from_cudnn_kernels(weights, 3)
    bias = weights[2].with_array(lambda b: b.reshape(2, 3 * units))
    return [kernel, recurrent, bias]
