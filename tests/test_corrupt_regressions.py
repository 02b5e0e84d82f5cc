"""Regression files for bugs found by fuzzing and review of the native reader.

Every file in ``tests/corrupt/`` once crashed, hung or over-allocated in the C++ core. Each
is opened and walked completely (``tests/mutation_worker.py one``: ``weightio.File`` and
``weightio.load_file`` with ``fallback=False``) in a subprocess, so a crash fails the test
instead of killing pytest. It must be read fine or raise a ``weightio.Error``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import weightio

CORRUPT = Path(__file__).with_name("corrupt")
WORKER = Path(__file__).with_name("mutation_worker.py")
TIMEOUT_SECONDS = 60

FILES = sorted(CORRUPT.glob("*.h5"))


def test_there_are_regression_files() -> None:
    assert FILES, f"no regression files in {CORRUPT}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corrupt_file_fails_cleanly(path: Path) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, str(WORKER), "one", str(path)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: no result after {TIMEOUT_SECONDS} s (hang)", pytrace=False)
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        pytest.fail(f"{path.name}: worker died ({how}):\n{proc.stderr[-3000:]}", pytrace=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] in ("ok", "weightio"), f"{path.name}:\n{result['detail']}"


def test_v2_btree_limit_encoding(tmp_path: Path) -> None:
    """A valid file: rank-15 chunk index v2 B-tree of depth 2, whose internal nodes store
    cumulative record counts below 2^8 (239) in one byte. The reader once used two."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "bt2_rank15.h5"
    rank = 15
    shape = (20, 20) + (1,) * (rank - 2)
    data = np.arange(400, dtype="<u2").reshape(shape)
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=data, chunks=(1,) * rank, maxshape=(None, None) + (1,) * (rank - 2),
                         track_times=False)
    with weightio.File(path, fallback=False) as f:
        assert f["d"].chunks == (1,) * rank
        np.testing.assert_array_equal(f["d"][()], data)
