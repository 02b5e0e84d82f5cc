"""The store side of a remembered ``.weights.h5`` / ``.keras`` traversal (``v3.py`` for Keras 3,
``tf_keras.load_v3`` for tf-keras), replayed without looking anything up in the file again.

A first load notes what each ``store.get(path)`` selected (the ``vars`` group(s), in which
file, with their member names in order) and the shape and type of every dataset in them
(``Notes``). The plan keeps that with each file's tree digest (``tree_check``). A replay whose
files are unchanged (same identity, or an equal digest: the same groups, names, shapes and
types) gets a ``ReplayStore`` that answers the same selections from memory and hands out
``LazyArray``s at the addresses of this file; anything it was not told about (a path never
selected, a member that is not a plain dataset) raises ``Unremembered``, and the caller runs
Keras's own traversal instead. So a replay costs neither the group lookups of every step nor an
index of the file's datasets."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..file import File, Group
from . import tree_check
from .prefetch import LazyArray, Source

# One selected group: (file name, group path, its member names in order).
Part = tuple[str, str, tuple[str, ...]]


class Unremembered(Exception):
    """The replay was asked something the first load did not see."""


class Notes:
    """What the stores of a first load selected, for ``remember``."""

    def __init__(self) -> None:
        self.selections: dict[str, list[Part]] = {}

    def selected(self, path: str, parts: list[tuple[str, Group, Any]]) -> None:
        """``store.get(path)`` selected ``parts``: (file name, group, its member names)."""
        self.selections[path] = [(name, group.name.rstrip("/"), tuple(names)) for name, group, names in parts]


class Remembered:
    """A first load's selections, the datasets in them, and each file's side."""

    def __init__(
        self,
        selections: dict[str, list[Part]],
        datasets: dict[str, dict[str, tuple[int, tuple[int, ...], np.dtype]]],
        sides: dict[str, tree_check.FileSide],
        weight_map: Any,
    ) -> None:
        self.selections = selections
        # Each selection's member names as sets, made once (a replay looks every value up).
        self.keysets = {path: [frozenset(names) for _, _, names in parts] for path, parts in selections.items()}
        self.datasets = datasets  # file name -> dataset path -> (position, shape, dtype)
        self.sides = sides
        self.weight_map = weight_map

    def store(self, files: dict[str, File], weight_map: Any, threads: int | None) -> ReplayStore | None:
        """A store answering as the first load's did, if these files are what it saw; None
        otherwise (also when a file cannot be digested: the caller looks it up)."""
        if weight_map != self.weight_map or files.keys() != self.sides.keys():
            return None
        addresses: dict[str, list[int]] = {}
        for name, side in self.sides.items():
            try:
                found = tree_check.addresses_if_unchanged(files[name], side)
            except Exception:  # noqa: BLE001 - the ordinary lookup meets it and reports it
                return None
            if found is None:
                return None
            addresses[name] = found
        sharded = weight_map is not None
        sources = {name: Source(f, threads, f"{name}:" if sharded else "") for name, f in files.items()}
        return ReplayStore(self, sources, addresses)


def remember(
    notes: Notes, files: dict[str, File], arrays: dict[str, dict[str, Any]], weight_map: Any
) -> Remembered | None:
    """The replay side of a first load: ``arrays`` are the datasets it read or indexed (file
    name -> path -> array or ``LazyArray``) for their shapes and types. None when a file cannot be digested."""
    # Each file's datasets in the order first selected: path -> (position, shape, dtype).
    datasets: dict[str, dict[str, tuple[int, tuple[int, ...], np.dtype]]] = {name: {} for name in files}
    addresses: dict[str, list[int]] = {name: [] for name in files}
    for parts in notes.selections.values():
        for name, group, names in parts:
            read = arrays.get(name, {})
            found = datasets[name]
            for key in names:
                path = f"{group}/{key}"
                if path in found:
                    continue
                array = read.get(path)
                if isinstance(array, (LazyArray, np.ndarray)):
                    found[path] = (len(found), tuple(array.shape), array.dtype)
                    if type(array) is LazyArray and array.source.file is files[name]:
                        addresses[name].append(array.address)
    sides: dict[str, tree_check.FileSide] = {}
    for name, f in files.items():
        # (Addresses when every dataset's is known: from the load's index of this file.)
        known = addresses[name] if len(addresses[name]) == len(datasets[name]) else None
        try:
            side = tree_check.remember(f, list(datasets[name]), known)
        except Exception:  # noqa: BLE001 - no remembered store; replays look the file up
            return None
        if side is None:
            return None
        sides[name] = side
    return Remembered(notes.selections, datasets, sides, weight_map)


class Selection:
    """One ``get(path)``'s answer: its groups' members as a dict of arrays."""

    __slots__ = ("names", "parts", "store")

    def __init__(self, store: ReplayStore, parts: list[Part], names: list[frozenset[str]]) -> None:
        self.store = store
        self.parts = parts
        self.names = names

    def keys(self) -> list[str]:
        return [key for _, _, names in self.parts for key in names]

    def __len__(self) -> int:
        return sum(len(names) for _, _, names in self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or "/" in key:
            raise Unremembered(key)  # a path: the group's own lookup, not remembered
        return any(key in names for names in self.names)

    def __getitem__(self, key: str) -> Any:
        for (name, group, _), names in zip(self.parts, self.names):
            if key in names:
                return self.store.value(name, f"{group}/{key}")
        raise Unremembered(key)  # Keras's own lookup raises the right error


class ReplayStore:
    """Answers a replay's ``get(path)`` from what the first load selected."""

    def __init__(self, remembered: Remembered, sources: dict[str, Source], addresses: dict[str, list[int]]) -> None:
        self.remembered = remembered
        self.sources = sources
        self.addresses = addresses
        self.lazy_ok = False  # whether values may be handed out unread (set per step)
        self.origins: dict[int, tuple[str, ...]] = {}  # values read now: id -> entry

    def get(self, path: str) -> Selection:
        parts = self.remembered.selections.get(path)
        if parts is None:
            raise Unremembered(path)
        return Selection(self, parts, self.remembered.keysets[path])

    def value(self, name: str, path: str) -> Any:
        found = self.remembered.datasets[name].get(path)
        if found is None:
            raise Unremembered(path)  # not a dataset the native reader reads
        position, shape, dtype = found
        source = self.sources[name]
        lazy = LazyArray(source, path, self.addresses[name][position], shape, dtype)
        if self.lazy_ok:
            return lazy
        array = lazy.materialize()
        self.origins[id(array)] = (source.prefix + path,)
        return array

    def origin_map(self) -> dict[int, tuple[str, ...]]:
        """Which entry each value read one by one is (by id); lazy values know their own."""
        return self.origins

    def entries(self) -> list[str]:
        """Every dataset of the files (for ``LoadReport.unused``)."""
        out: list[str] = []
        for name, side in self.remembered.sides.items():
            prefix = self.sources[name].prefix
            out += [prefix + path for path in side.entries] if prefix else side.entries
        return out
