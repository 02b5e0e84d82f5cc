"""Regression files for bugs found by fuzzing and review of the native reader.

Every file in ``tests/corrupt/`` once crashed, hung or over-allocated in the C++ core. Each
is opened and walked completely (``tests/mutation_worker.py one``: ``weightio.File`` and
``weightio.load_file`` with ``fallback=False``) in a subprocess, so a crash fails the test
instead of killing pytest. It must be read fine or raise a ``weightio.Error``.
"""

from __future__ import annotations

import json
import struct
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


def _check_in_subprocess(path: Path) -> dict:
    """Walks `path` in a worker subprocess; fails on a crash, a hang or a non-weightio error."""
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
    return result


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corrupt_file_fails_cleanly(path: Path) -> None:
    _check_in_subprocess(path)


def test_headers_sharing_one_continuation_block(tmp_path: Path) -> None:
    """1000 dataset headers whose continuation message points at one shared block of 60000
    NIL messages (generated: the file is ~850 KB). Each header decoded the whole block:
    2.4 GB of cached header messages for an 850 KB file. Now the metadata budget
    (Context::charge) rejects it."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "shared_continuation.h5"
    n, nil_messages = 1000, 60000
    with h5py.File(path, "w", libver="earliest") as f:
        addrs = [
            h5py.h5o.get_info(f.create_dataset(f"d{i:04d}", data=np.float32(i), track_times=False).id).addr
            for i in range(n)
        ]
    data = bytearray(path.read_bytes())
    block = len(data)
    data += bytes(8 * nil_messages)  # v1 NIL messages (type 0, size 0): 8 bytes each
    for addr in addrs:
        count = struct.unpack_from("<H", data, addr + 2)[0]
        struct.pack_into("<H", data, addr + 2, 0xFFFF)  # message count: read the whole block
        at = addr + 16
        for _ in range(count):  # turn the header's NIL padding message into a continuation
            kind, size = struct.unpack_from("<HH", data, at)
            if kind == 0 and size >= 16:
                struct.pack_into("<H", data, at, 0x10)
                struct.pack_into("<QQ", data, at + 8, block, 8 * nil_messages)
                break
            at += 8 + size
        else:
            raise AssertionError("h5py wrote no NIL message to replace")
    struct.pack_into("<Q", data, 40, len(data))  # superblock v0 end-of-file address
    path.write_bytes(bytes(data))
    result = _check_in_subprocess(path)
    assert result == {**result, "outcome": "weightio", "detail": "FormatError"}


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
