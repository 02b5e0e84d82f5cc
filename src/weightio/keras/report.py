"""What a load did: ``LoadReport`` for every load (its ``loaded`` / ``skipped`` / ``unused``
lists built lazily by ``Details``), ``CheckpointLoadStatus`` (a LoadReport) for TensorFlow
checkpoints, with the checks of TensorFlow's own load status.

The lists are built from what the loaders know anyway: the recorder's (variable, value)
pairs, the file entries each value came from, the names of every dataset in the file(s),
and the skips the loaders saw. During the load only cheap references are kept (variables,
entry names; never the arrays, which belong to the variables afterwards); the lists
themselves are computed when first asked for.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .formats import Format

log = logging.getLogger("weightio")

# A value's origin: one file entry, or several when a conversion joined them (convert_legacy).
Sources = tuple[str, ...]


def origin_of(value: Any, origins: dict[int, Sources]) -> Sources:
    """The file entries ``value`` was read from: a ``LazyArray`` knows its own; other
    values were registered in ``origins`` (by id) by whoever handed them out."""
    found = _origin(value, origins)
    return (found,) if type(found) is str else found


def _origin(value: Any, origins: dict[int, Sources]) -> str | Sources:
    """``origin_of``, a single entry as the string itself."""
    path = getattr(value, "path", None)
    source = getattr(value, "source", None)
    if isinstance(path, str) and source is not None:
        return getattr(source, "prefix", "") + path
    return origins.get(id(value), ())


class Compact:
    """The recorder's pairs without their values (which must not be kept alive): the
    variables, and where each value came from (one entry as a string, several as a tuple).
    Two lists, not a tuple per pair: a load's survivors are what the garbage collector
    scans when it runs again after the load (10,000 variables: 20,000 tuples fewer)."""

    __slots__ = ("origins", "variables")

    def __init__(self, variables: list[Any], origins: list[str | Sources]) -> None:
        self.variables = variables
        self.origins = origins

    def sources(self) -> Iterator[Sources]:
        for found in self.origins:
            yield (found,) if type(found) is str else found


def compact(pairs: list[tuple[Any, Any]], origins: dict[int, Sources]) -> Compact:
    """The recorder's pairs without their values (see ``Compact``)."""
    return Compact([variable for variable, _ in pairs], [_origin(value, origins) for _, value in pairs])


def variable_path(variable: Any) -> str:
    path = getattr(variable, "path", None)
    return path if isinstance(path, str) else str(variable.name)


def _name(item: Any) -> str:
    if isinstance(item, str):
        return item
    if hasattr(item, "assign"):
        return variable_path(item)
    return str(getattr(item, "name", item))


class Details:
    """The lazily computed lists of a ``LoadReport``."""

    def __init__(
        self,
        model: Any,
        pairs: Compact,
        entries: Iterable[str],
        skipped: list[tuple[Any, str]] | None = None,
    ) -> None:
        try:
            self._model: Any = weakref.ref(model)
        except TypeError:
            self._model = lambda: model
        self._pairs = pairs
        self._entries = entries
        self._skipped = skipped or []

    @functools.cached_property
    def loaded(self) -> list[tuple[str, str]]:
        pairs = self._pairs
        return [(variable_path(v), " + ".join(sources)) for v, sources in zip(pairs.variables, pairs.sources())]

    @functools.cached_property
    def unused(self) -> list[str]:
        used = {s for sources in self._pairs.sources() for s in sources}
        return sorted(entry for entry in self._entries if entry not in used)

    @functools.cached_property
    def skipped(self) -> list[tuple[str, str]]:
        out = [(_name(item), reason) for item, reason in self._skipped]
        covered = {id(v) for v in self._pairs.variables}
        for item, _ in self._skipped:
            covered.add(id(item))
            covered.update(id(w) for w in _weights_of(item))
        model = self._model()
        if model is not None:
            for variable in getattr(model, "weights", []):
                if id(variable) not in covered:
                    covered.add(id(variable))
                    out.append((variable_path(variable), "not loaded: nothing in the file was assigned to it"))
        return out


def _weights_of(item: Any) -> list[Any]:
    if isinstance(item, str) or hasattr(item, "assign"):
        return []
    try:
        return list(getattr(item, "weights", []))
    except Exception:  # noqa: BLE001 - an object whose weights cannot be listed
        return []


EMPTY = Details(None, Compact([], []), [])


class Listed:
    """Details whose lists are known already (TensorFlow checkpoints)."""

    def __init__(self, loaded: list[tuple[str, str]], skipped: list[tuple[str, str]], unused: list[str]) -> None:
        self.loaded = loaded
        self.skipped = skipped
        self.unused = unused


# How many names an assertion message lists before saying "and N more".
_SHOWN = 10


@dataclass
class LoadReport:
    """What a load did (returned by ``weightio.keras.load_weights``).

    ``loaded``: (variable path, file entry) for every assignment, in order; an entry is the
    dataset's path in the file (``"shard.weights.h5:/path"`` for sharded files; entries
    joined by ``" + "`` for a value ``convert_legacy`` built from several; the checkpoint key
    for TensorFlow checkpoints).
    ``skipped``: (variable path or layer/object name, reason) for what the model has and
    did not get: ``skip_mismatch`` skips, by-name layers missing from the file,
    ``objects_to_skip``, anything else not loaded.
    ``unused``: the file's entries never assigned, sorted (layers the model lacks, extra
    ``vars``, optimizer state not loaded, ...).
    The lists are computed when first read. All three are empty when ``by_keras``.
    """

    path: str
    format: Format
    variables_assigned: int
    seconds: float
    by_keras: bool = False  # handed to Keras's own loader (a file weightio does not read)
    # What Keras's own loader returned when the file was handed to it (tf-keras returns
    # TensorFlow's load status for checkpoints); None otherwise.
    keras_result: Any = field(default=None, repr=False, compare=False)
    details: Any = field(default=None, repr=False, compare=False)

    @property
    def loaded(self) -> list[tuple[str, str]]:
        return list(self.details.loaded) if self.details is not None else []

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return list(self.details.skipped) if self.details is not None else []

    @property
    def unused(self) -> list[str]:
        return list(self.details.unused) if self.details is not None else []


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


@dataclass
class CheckpointLoadStatus(LoadReport):
    """The outcome of restoring a TensorFlow checkpoint (returned by
    ``weightio.keras.load_weights`` and, for tf-keras models under ``install()``, by
    ``model.load_weights``), with the methods of TensorFlow's ``CheckpointLoadStatus``.

    * ``loaded``: (variable path, checkpoint key) for every value assigned;
    * ``unused``: checkpoint keys of model values that were not restored (objects the
      model does not have, or that ``assignment_map`` left out);
    * ``skipped``: (variable path, reason) for the model variables that got no value;
    * ``optimizer_values``: optimizer variables, slot variables (``.OPTIMIZER_SLOT``),
      ``save_counter`` and a SavedModel's compiled metrics: training state, never restored by
      ``load_weights`` (which restores weights), so expected to be left over: no check fails
      because of them;
    * ``unmatched``: paths of model variables that got no value (left unchanged).

    The load itself already refused any mismatch it could see (see
    ``weightio.keras.load_weights``); these checks say whether it was complete. Unless
    ``expect_partial()`` was called, a status that is dropped while values went unused logs
    one warning on the ``weightio`` logger, as TensorFlow does.
    """

    prefix: str = ""
    optimizer_values: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    _partial_expected: bool = field(default=False, repr=False, compare=False)

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Raises ``AssertionError`` unless every model value in the checkpoint was restored
        and every model variable got one (``optimizer_values`` are expected left over)."""
        self.assert_existing_objects_matched()
        unused = self.unused
        if unused:
            raise AssertionError(
                f"Unused values in checkpoint {self.prefix} (they exist in the checkpoint but were "
                f"not restored): {_listing(unused)}"
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
            unused = self.unused
            if unused:
                log.warning(
                    "weightio: %d values in checkpoint %s were not restored: %s. Call "
                    "expect_partial() on the status returned by load_weights to silence this.",
                    len(unused),
                    self.prefix,
                    _listing(unused),
                )
        except Exception:  # noqa: BLE001 - interpreter shutdown, half-built object
            pass
