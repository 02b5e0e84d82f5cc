"""weightio: load neural-network weights from disk as fast as the hardware allows.

The native core reads HDF5 without libhdf5 (memory-mapped, parallel, zero-copy where the
bytes allow it); the Python layer offers an h5py-like read-only API on top.
"""

from __future__ import annotations

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "weightio's C++ extension (weightio._core) is missing: build and install the package "
        "with `pip install .` (it needs a C++17 compiler and zlib headers)"
    ) from exc

from .errors import ChecksumError, Error, FormatError, NotFoundError, UnsupportedFeatureError
from .file import (
    AttributeManager,
    Dataset,
    Empty,
    ExternalLink,
    File,
    Group,
    HardLink,
    SoftLink,
    load_file,
)

__version__ = "0.1.0"

__all__ = [
    "AttributeManager",
    "ChecksumError",
    "Dataset",
    "Empty",
    "Error",
    "ExternalLink",
    "File",
    "FormatError",
    "Group",
    "HardLink",
    "NotFoundError",
    "SoftLink",
    "UnsupportedFeatureError",
    "__version__",
    "load_file",
]
