"""What a load did, for ``LoadReport.loaded`` / ``skipped`` / ``unused``.

Built from what the loaders know anyway: the recorder's (variable, value) pairs, the file
entries each value came from, the names of every dataset in the file(s), and the skips the
loaders saw. During the load only cheap references are kept (variables, entry names; never
the arrays, which belong to the variables afterwards); the lists themselves are computed
when first asked for.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from typing import Any

# A value's origin: one file entry, or several when a conversion joined them (convert_legacy).
Sources = tuple[str, ...]


def origin_of(value: Any, origins: dict[int, Sources]) -> Sources:
    """The file entries ``value`` was read from: a ``LazyArray`` knows its own; other
    values were registered in ``origins`` (by id) by whoever handed them out."""
    path = getattr(value, "path", None)
    source = getattr(value, "source", None)
    if isinstance(path, str) and source is not None:
        return (getattr(source, "prefix", "") + path,)
    return origins.get(id(value), ())


def compact(pairs: list[tuple[Any, Any]], origins: dict[int, Sources]) -> list[tuple[Any, Sources]]:
    """The recorder's pairs without their values (which must not be kept alive)."""
    return [(variable, origin_of(value, origins)) for variable, value in pairs]


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
        pairs: list[tuple[Any, Sources]],
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
        return [(variable_path(v), " + ".join(sources)) for v, sources in self._pairs]

    @functools.cached_property
    def unused(self) -> list[str]:
        used = {s for _, sources in self._pairs for s in sources}
        return sorted(entry for entry in self._entries if entry not in used)

    @functools.cached_property
    def skipped(self) -> list[tuple[str, str]]:
        out = [(_name(item), reason) for item, reason in self._skipped]
        covered = {id(v) for v, _ in self._pairs}
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


EMPTY = Details(None, [], [])
