"""The file's side of a remembered load (``legacy.py`` for Keras 3, ``tf_keras.py``, ``v3.py``):
one native digest of everything a loader reads of the file (every group's attributes, every
dataset's path, shape and element type; see ``cpp/hdf5/tree_digest.h``), taken when the plan
is made and compared before it is replayed. Equal digests mean the loader would read the same
names and find datasets of the same shapes and types under the same paths.

A file that has not been written since its digest was taken need not be digested again: when
the file opened now has the identity recorded then (device, inode, size, modification and
status-change times, from the ``fstat`` of the descriptor that was mapped; see
``File._core.identity``), the remembered addresses are used as they are. Any write changes the
status-change time, which no one can set back. File times have the resolution of the kernel's
clock tick, though, so a file changed in the tick it was digested in could change again without
new times; an identity is recorded only for a file last changed ``RACY_NS`` or more before its
digest was taken (git's "racy" index entries, the same way round). Files given as bytes (a
``.keras`` archive's member) have no identity and are digested on every replay.

A first load that knows where its datasets are (the addresses its index gave) does not digest
a file whose identity is trusted: most processes load a file once, and the digest (~10 ms for
10,000 datasets) only serves a later load. That load, finding the same identity, takes the
digest then, of the same unchanged file; finding another, it has no digest to compare and the
loader runs (a file rewritten with the same content is not replayed once, as it would be had
the digest been taken at once)."""

from __future__ import annotations

import time
from typing import Any

from ..file import File

RACY_NS = 2_000_000_000


class FileSide:
    """The file as a plan saw it: its digest, every dataset's path (the report's unused
    entries), where in that list each of the plan's datasets is, and, when trusted, the
    file's identity with those datasets' addresses."""

    __slots__ = ("addresses", "digest", "entries", "identity", "paths", "positions")

    def __init__(
        self,
        digest: bytes | None,
        entries: list[str] | None,
        positions: list[int] | None,
        identity: tuple[int, ...] | None = None,
        addresses: list[int] | None = None,
        paths: list[str] | None = None,
    ) -> None:
        self.digest = digest  # None: not taken yet (then ``paths`` are the plan's datasets)
        self.entries = entries
        self.positions = positions
        self.identity = identity
        self.addresses = addresses
        self.paths = paths


def _layout(file: File, with_paths: bool) -> tuple[bytes, list[int], list[str] | None]:
    return file._call(file.filename, "layout", file._addr, with_paths)


def trusted_identity(identity: Any, taken_ns: int) -> tuple[int, ...] | None:
    """A file's identity (``(device, inode, size, mtime_ns, ctime_ns)`` or None) if the file
    was last changed ``RACY_NS`` before ``taken_ns``."""
    if identity is None or max(identity[3], identity[4]) > taken_ns - RACY_NS:
        return None
    return tuple(identity)


def remember(file: File, paths: list[str], addresses: list[int] | None = None) -> FileSide | None:
    """The file's side of a plan whose values were read from the datasets ``paths``; None
    when one of them is not a dataset the digest covers (a linked one, say: no plan then).
    ``addresses``: those datasets' addresses, as the load's index of this file gave them;
    with them, a file whose identity is trusted is digested only when loaded again."""
    taken = time.time_ns()
    identity = trusted_identity(file._core.identity, taken)
    if identity is not None and addresses is not None:
        return FileSide(None, None, None, identity, list(addresses), list(paths))
    found = _digested(file, paths)
    if found is None:
        return None
    digest, entries, positions, addresses = found
    return FileSide(digest, entries, positions, identity, addresses)


def _digested(file: File, paths: list[str]) -> tuple[bytes, list[str], list[int], list[int]] | None:
    """The file's digest and dataset paths (entries), where each of ``paths`` is among them
    and its address; None when one is not a dataset the digest covers."""
    digest, addresses, entries = _layout(file, True)
    assert entries is not None
    position = {path: i for i, path in enumerate(entries)}
    positions = [position.get(path, -1) for path in paths]
    if -1 in positions:
        return None
    return digest, entries, positions, [addresses[i] for i in positions]


def addresses_if_unchanged(file: File, side: FileSide) -> list[int] | None:
    """The addresses of the plan's datasets in this file, if it is the file the plan saw
    (same identity) or its digest is the plan's."""
    identity = file._core.identity
    if identity is not None and side.addresses is not None and tuple(identity) == side.identity:
        return side.addresses if side.digest is not None or _digest_now(file, side) else None
    if side.digest is None:
        return None  # changed before its digest was taken: nothing to compare
    taken = time.time_ns()
    digest, addresses, _ = _layout(file, False)
    if digest != side.digest:
        return None
    side.addresses = [addresses[i] for i in side.positions]
    side.identity = trusted_identity(file._core.identity, taken)
    return side.addresses


def _digest_now(file: File, side: FileSide) -> bool:
    """Takes the digest a first load left for later (``remember``), of ``file``: the file it
    loaded, unchanged (same identity). False if the plan's datasets are not where that load
    found them (then the side never holds)."""
    assert side.paths is not None
    found = _digested(file, side.paths)
    if found is None or found[3] != side.addresses:
        side.addresses = side.identity = None
        return False
    side.digest, side.entries, side.positions, _ = found
    side.paths = None
    return True
