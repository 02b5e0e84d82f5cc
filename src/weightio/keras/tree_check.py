"""The file's side of a remembered legacy load (``legacy.py`` for Keras 3, ``tf_keras.py``):
one native digest of everything a loader reads of the file (every group's attributes, every
dataset's path, shape and element type; see ``cpp/hdf5/tree_digest.h``), taken when the plan
is made and compared before it is replayed. Equal digests mean the loader would read the same
names and find datasets of the same shapes and types under the same paths."""

from __future__ import annotations

from ..file import File


class FileSide:
    """The file as a plan saw it: its digest, every dataset's path (the report's unused
    entries), and where in that list each of the plan's datasets is."""

    __slots__ = ("digest", "entries", "positions")

    def __init__(self, digest: bytes, entries: list[str], positions: list[int]) -> None:
        self.digest = digest
        self.entries = entries
        self.positions = positions


def remember(file: File, paths: list[str]) -> FileSide | None:
    """The file's side of a plan whose values were read from the datasets ``paths``; None
    when one of them is not a dataset the digest covers (a linked one, say: no plan then)."""
    digest, _, entries = file._call(file.filename, file._core.layout, file._addr, True)
    position = {path: i for i, path in enumerate(entries)}
    positions = [position.get(path, -1) for path in paths]
    return None if -1 in positions else FileSide(digest, entries, positions)


def addresses_if_unchanged(file: File, side: FileSide) -> list[int] | None:
    """The addresses of the plan's datasets in this file, if its digest is the plan's."""
    digest, addresses, _ = file._call(file.filename, file._core.layout, file._addr, False)
    if digest != side.digest:
        return None
    return [addresses[i] for i in side.positions]
