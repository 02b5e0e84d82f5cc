"""Shared pytest fixtures.

``variant_path(name, libver)`` returns the path of a fixture file from
``tests/fixtures.py``, written once per session (h5py writing is cheap but
the same files are used by many tests).  Tests must treat these files as
read-only; tests that corrupt files copy them first (``variant_copy``).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import pytest

from fixtures import write_variant

# When a hypothesis test fails, hypothesis' pytest plugin lazily imports its
# patch writer (libcst), which can emit a DeprecationWarning at import time;
# under `filterwarnings = error` that aborts the whole session with an
# INTERNALERROR instead of reporting the failure.  Import it up front, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass


@pytest.fixture(scope="session")
def variant_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, libver: str) -> Path:
        key = (name, libver)
        if key not in cache:
            # One directory per file: external-link targets are siblings.
            cache[key] = write_variant(name, libver, root / f"{name}-{libver}")
        return cache[key]

    return get


@pytest.fixture
def variant_copy(variant_path, tmp_path):
    """Like variant_path, but a private copy (with its siblings) the test may modify."""

    def get(name: str, libver: str) -> Path:
        src = variant_path(name, libver)
        dst_dir = tmp_path / f"{name}-{libver}"
        shutil.copytree(src.parent, dst_dir)
        return dst_dir / src.name

    return get


@pytest.fixture
def h5file(request):
    """Open files with h5py and close them at teardown: ``h5file(path)``."""
    opened = []

    def open_(path) -> h5py.File:
        f = h5py.File(path, "r")
        opened.append(f)
        return f

    yield open_
    for f in opened:
        f.close()


@pytest.fixture
def wfile(request):
    """Open files with weightio and close them at teardown: ``wfile(path, fallback=False)``.

    Tests of native reading pass fallback=False so that h5py can never
    quietly do weightio's job.
    """
    import weightio

    opened = []

    def open_(path, fallback: bool = False):
        f = weightio.File(path, fallback=fallback)
        opened.append(f)
        return f

    yield open_
    for f in opened:
        f.close()
