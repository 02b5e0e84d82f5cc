"""All-or-nothing assignment: record every ``variable.assign`` that Keras's own loading code
makes, then apply them only if loading finished without error.

weightio runs Keras's own loaders (so matching, warnings and error messages are Keras's)
over natively read arrays. While they run, ``Variable.assign`` only validates the shape
(mismatches go to Keras's own ``assign``, which raises its own error before assigning) and
records the pair. If loading raises, nothing was assigned and the model is unchanged.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

# Loaders patch module-level Keras functions while they run: one load at a time.
LOAD_LOCK = threading.RLock()


class Recorder:
    """The assignments made while recording, in order."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []

    def apply(self, model: Any) -> int:
        """Performs the recorded assignments; returns how many variables were assigned."""
        from keras.src.backend.common import variables as kv

        for variable, value in self.pairs:
            kv.Variable.assign(variable, value)
        assigned = {id(v) for v, _ in self.pairs}
        # Some layers derive state from their variables when loaded (Normalization,
        # Discretization, lookup layers): redo that now that the values are in place.
        for layer in _all_layers(model):
            if hasattr(layer, "finalize_state") and any(id(v) in assigned for v in layer.variables):
                layer.finalize_state()
        return len(assigned)


def _all_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return [model]
    return list(flatten(include_self=True, recursive=True))


def _shape_of(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(np.shape(value)) if shape is None else tuple(shape)


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """Within the block, Keras 3 ``Variable.assign`` records instead of assigning."""
    from keras.src.backend.common import variables as kv

    recorder = Recorder()
    original = kv.Variable.assign

    def record(self: Any, value: Any) -> Any:
        if kv.in_stateless_scope() or not kv.shape_equal(_shape_of(value), self.shape):
            return original(self, value)  # Keras raises its own shape error, assigning nothing
        recorder.pairs.append((self, value))
        return value

    with LOAD_LOCK:
        kv.Variable.assign = record
        try:
            yield recorder
        finally:
            kv.Variable.assign = original


@contextlib.contextmanager
def patched(module: Any, **replacements: Any) -> Iterator[None]:
    """Temporarily replaces attributes of ``module`` (Keras's I/O helpers)."""
    saved = {name: getattr(module, name) for name in replacements}
    with LOAD_LOCK:
        for name, value in replacements.items():
            setattr(module, name, value)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(module, name, value)
