"""What a load did: ``LoadReport`` for every load, ``CheckpointLoadStatus`` (a LoadReport)
for TensorFlow checkpoints, with the checks of TensorFlow's own load status."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .formats import Format

log = logging.getLogger("weightio")

# How many names an assertion message lists before saying "and N more".
_SHOWN = 10


@dataclass
class LoadReport:
    """What a load did (returned by ``weightio.keras.load_weights``)."""

    path: str
    format: Format
    variables_assigned: int
    seconds: float
    by_keras: bool = False  # handed to Keras's own loader (a file weightio does not read)
    # What Keras's own loader returned when the file was handed to it (tf-keras returns
    # TensorFlow's load status for checkpoints); None otherwise.
    keras_result: Any = field(default=None, repr=False, compare=False)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


@dataclass
class CheckpointLoadStatus(LoadReport):
    """The outcome of restoring a TensorFlow checkpoint (returned by
    ``weightio.keras.load_weights`` and, for tf-keras models under ``install()``, by
    ``model.load_weights``), with the methods of TensorFlow's ``CheckpointLoadStatus``.

    * ``loaded``: checkpoint keys whose values were assigned to model variables;
    * ``unused``: checkpoint keys of model values that were not restored (objects the
      model does not have, or that ``assignment_map`` left out);
    * ``optimizer_values``: optimizer variables, slot variables (``.OPTIMIZER_SLOT``) and
      ``save_counter``: training state, never restored by ``load_weights`` (which restores
      weights), so expected to be left over: no check fails because of them;
    * ``unmatched``: paths of model variables that got no value (left unchanged).

    The load itself already refused any mismatch it could see (see
    ``weightio.keras.load_weights``); these checks say whether it was complete. Unless
    ``expect_partial()`` was called, a status that is dropped while values went unused logs
    one warning on the ``weightio`` logger, as TensorFlow does.
    """

    prefix: str = ""
    loaded: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    optimizer_values: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    _partial_expected: bool = field(default=False, repr=False, compare=False)

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Raises ``AssertionError`` unless every model value in the checkpoint was restored
        and every model variable got one (``optimizer_values`` are expected left over)."""
        self.assert_existing_objects_matched()
        if self.unused:
            raise AssertionError(
                f"Unused values in checkpoint {self.prefix} (they exist in the checkpoint but were "
                f"not restored): {_listing(self.unused)}"
            )
        return self

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """Raises ``AssertionError`` if a variable of the model got no value from the
        checkpoint (values left over in the checkpoint are fine)."""
        if self.unmatched:
            raise AssertionError(
                f"Found {len(self.unmatched)} model variables that were not bound to checkpointed "
                f"values from {self.prefix}: {_listing(self.unmatched)}"
            )
        return self

    def assert_nontrivial_match(self) -> CheckpointLoadStatus:
        """Raises ``AssertionError`` if nothing was restored."""
        if not self.loaded:
            raise AssertionError(
                f"Nothing was restored from checkpoint {self.prefix}: it does not match the model"
            )
        return self

    def expect_partial(self) -> CheckpointLoadStatus:
        """Silences the warning about values that were not restored; returns ``self``."""
        self._partial_expected = True
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Nothing to run: values are assigned during ``load_weights`` (as in eager TF)."""

    def initialize_or_restore(self, session: Any = None) -> None:
        """Nothing to run: values are assigned during ``load_weights`` (as in eager TF)."""

    def __del__(self) -> None:
        try:
            if self._partial_expected or self.by_keras:
                return
            if self.unused:
                log.warning(
                    "weightio: %d values in checkpoint %s were not restored: %s. Call "
                    "expect_partial() on the status returned by load_weights to silence this.",
                    len(self.unused),
                    self.prefix,
                    _listing(self.unused),
                )
        except Exception:  # noqa: BLE001 - interpreter shutdown, half-built object
            pass
