"""Models for the TensorFlow checkpoint tests, buildable with tf-keras and with Keras 3
(``build(keras_module, case)``), so that a checkpoint tf-keras writes can be restored into
the same architecture in both. Imports no Keras itself.

Every layer with weights has an explicit name: ``leaf_weights`` pairs the two models'
variables by layer names, never by variable names (which differ between the two Kerases).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# case -> how tf-keras trains it before saving (None: saved untrained, no optimizer state)
CASES = {
    "sequential": "legacy_adam",  # slot variables under .OPTIMIZER_SLOT
    "rnn": None,
    "nested": "adam",  # Keras 2.11+ optimizer: its variables under optimizer/_variables
    "subclassed": "legacy_sgd",
}


def inputs_for(case: str) -> Any:
    """A fixed input batch for ``case``'s model."""
    rng = np.random.default_rng(7)
    if case == "sequential":
        return rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    if case == "rnn":
        return rng.integers(0, 20, size=(2, 6)).astype(np.int32)
    return rng.standard_normal((2, 4)).astype(np.float32)


def targets_for(case: str) -> np.ndarray:
    return np.random.default_rng(8).standard_normal((2, 2 if case != "sequential" else 5)).astype(np.float32)


def build(k: Any, case: str, head: int | None = None, **changes: Any) -> Any:
    """``case``'s model with Keras module ``k`` (``tf_keras`` or ``keras``). ``head``
    replaces the size of the last Dense (a different head for transfer learning);
    ``changes`` alter the architecture for the mismatch tests (``extra_layer``, ``units``)."""
    L = k.layers
    units = changes.get("units", 4)
    if case == "sequential":
        stack = [k.Input((8, 8, 3)), L.Conv2D(4, 3, name="conv"), L.BatchNormalization(name="bn"), L.Flatten(name="flat")]
        # A kernel of 72 KiB: large values take their own path on TensorFlow (read into
        # tensors the variables take over).
        stack.append(L.Dense(128, name="wide"))
        stack.append(L.Dense(head or 5, name="dense" if head is None else "new_head"))
        if changes.get("extra_layer"):
            stack.append(L.Dense(6, name="extra"))
        return k.Sequential(stack, name="seq")
    if case == "rnn":
        tokens = k.Input((6,), dtype="int32")
        x = L.Embedding(20, 4, name="emb")(tokens)
        x = L.LSTM(5, return_sequences=True, name="lstm")(x)
        x = L.Bidirectional(L.GRU(3), name="bi")(x)
        x = L.LayerNormalization(name="ln")(x)
        return k.Model(tokens, L.Dense(head or 2, name="head")(x), name="rnn")
    if case == "nested":
        inner = k.Sequential(
            [k.Input((4,)), L.Dense(changes.get("units", 3), name="i1"), L.BatchNormalization(name="ibn")], name="inner"
        )
        x_in = k.Input((4,))
        shared = L.Dense(4, name="shared")
        x = shared(shared(x_in))  # one layer applied twice
        x = inner(x)
        return k.Model(x_in, L.Dense(head or 2, name="out")(x), name="nested")
    if case == "subclassed":

        class Subclassed(k.Model):
            def __init__(self) -> None:
                super().__init__(name="sub")
                self.enc = L.Dense(units, name="enc")
                self.blocks = [L.Dense(4, name="b0"), L.Dense(4, name="b1")]
                self.norm = L.LayerNormalization(name="norm")
                self.out_dense = L.Dense(head or 2, name="out_dense")

            def call(self, t: Any) -> Any:
                t = self.enc(t)
                for block in self.blocks:
                    t = block(t)
                return self.out_dense(self.norm(t))

        model = Subclassed()
        model(inputs_for(case))
        return model
    raise AssertionError(case)


def randomize(model: Any, seed: int) -> None:
    """Deterministic non-trivial values (positive where a variance is expected)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.standard_normal(tuple(w.shape)).astype(np.float32) * 0.5
        if "variance" in w.name:
            value = np.abs(value) + 0.5
        w.assign(value)


def leaf_weights(model: Any, prefix: str = "") -> dict[str, list[np.ndarray]]:
    """``{layer name chain: [values of layer.weights]}``, descending into nested models
    only (their ``weights`` order differs between tf-keras and Keras 3; a layer's own
    does not for the layers used here)."""
    out: dict[str, list[np.ndarray]] = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        name = f"{prefix}{layer.name}"
        if hasattr(layer, "layers"):
            out.update(leaf_weights(layer, name + "/"))
        else:
            out[name] = [np.array(w.numpy() if hasattr(w, "numpy") else w) for w in layer.weights]
    return out
