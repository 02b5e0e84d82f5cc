"""weightio's exceptions: one root, and classes that say what went wrong.

``FormatError`` is also an ``OSError`` and ``UnsupportedFeatureError`` also a
``NotImplementedError``, so code written for h5py's exceptions keeps working.
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error weightio raises on purpose."""


class FormatError(Error, OSError):
    """The file is corrupt, truncated or contradicts the format (names the byte offset)."""

    def __str__(self) -> str:  # OSError would format (errno, strerror) pairs
        return str(self.args[0]) if self.args else ""


class ChecksumError(FormatError):
    """A stored checksum does not match the bytes it covers."""


class UnsupportedFeatureError(Error, NotImplementedError):
    """Valid HDF5 that the native reader does not read (the h5py fallback may)."""


class NotFoundError(Error, KeyError):
    """No object at the given path."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def with_context(exc: Error, filename: str, name: str | None = None) -> Error:
    """A copy of ``exc`` whose message names the file and the object."""
    where = filename if name is None else f"{filename}: {name}"
    message = str(exc)
    if message.startswith(where):
        return exc
    new = type(exc)(f"{where}: {message}")
    new.__cause__ = exc.__cause__
    return new
