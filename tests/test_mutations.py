"""Mutation testing: thousands of corrupted variants of small h5py-written files.

Every mutant (bit flips, byte overwrites, truncations, zeroed / all-ones / duplicated /
shifted 8-byte fields, half of them with their v2 checksums repaired) is opened with
``weightio.File(path, fallback=False)`` and ``weightio.load_file`` and walked completely by
``tests/mutation_worker.py`` in a subprocess. A mutant may be read fine or rejected with a
``weightio.Error``; anything else fails the test:

* the worker dies (a crash: signal, abort, sanitizer exit),
* an exception that is not a ``weightio.Error`` escapes (traceback reported),
* one mutant takes longer than ``SLOW_SECONDS`` (or hangs: the watchdog kills the worker
  after ``WATCHDOG_SECONDS`` without progress, and the run resumes after that mutant).

The first offending mutants are written to a temporary directory with a README naming the
command that reproduces each one. Mutants are deterministic in ``SEED``.

``test_mutants_slow`` (20k mutants, plus a file with many chunks) runs only with
``WEIGHTIO_SLOW_TESTS=1``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import mutation_worker  # noqa: E402

WORKER = Path(__file__).with_name("mutation_worker.py")
SEED = 20240611
FAST_MUTANTS = 10000
SLOW_MUTANTS = 20000
WORKERS = 2  # the machines have two cores
SLOW_SECONDS = 5.0  # one mutant taking longer than this is a failure
WATCHDOG_SECONDS = 20.0  # no progress for this long: the worker hangs and is killed
STARTUP_SECONDS = 120.0  # first line of a fresh worker (imports, base files)
REPORT_LIMIT = 10


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("h5py")
    directory = tmp_path_factory.mktemp("mutation_bases")
    mutation_worker.build_base_files(directory, extra=True)
    return directory


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _run_range(
    base_dir: Path, start: int, stop: int, work_dir: Path, extra: bool, watchdog: float = WATCHDOG_SECONDS,
    env: dict | None = None,
) -> tuple[list[dict], list[dict]]:
    """Runs mutants [start, stop) in worker subprocesses; returns (results, problems). A
    worker that dies or hangs is replaced, resuming after the mutant it was on."""
    results: list[dict] = []
    problems: list[dict] = []
    next_id = start
    while next_id < stop:
        stderr_path = work_dir / f"stderr_{next_id}.txt"
        cmd = [sys.executable, str(WORKER), "run", str(base_dir), str(next_id), str(stop), str(SEED),
               str(work_dir / "mutants")]
        if extra:
            cmd.append("--extra")
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
            lines: queue.Queue = queue.Queue()
            thread = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
            thread.start()
            pending = None
            timeout = STARTUP_SECONDS
            while True:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    proc.kill()
                    proc.wait()
                    if pending is None:
                        raise RuntimeError(f"mutation worker made no progress in {timeout:.0f} s: {cmd}")
                    problems.append({"id": pending, "problem": f"hang: no result after {timeout:.0f} s"})
                    next_id = pending + 1
                    break
                timeout = watchdog
                if line is None:  # the worker exited
                    rc = proc.wait()
                    if rc == 0:
                        next_id = stop
                        break
                    tail = stderr_path.read_text(errors="replace")[-3000:]
                    if pending is None:
                        raise RuntimeError(f"mutation worker failed (exit {rc}) outside a mutant:\n{tail}")
                    how = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
                    problems.append({"id": pending, "problem": f"worker died ({how})", "detail": tail})
                    next_id = pending + 1
                    break
                msg = json.loads(line)
                if "begin" in msg:
                    pending = msg["begin"]
                    continue
                pending = None
                results.append(msg)
                if msg["outcome"] == "other":
                    problems.append({"id": msg["id"], "problem": "non-weightio exception", "detail": msg["detail"]})
                elif msg["seconds"] > SLOW_SECONDS:
                    problems.append({"id": msg["id"], "problem": f"slow: {msg['seconds']:.1f} s"})
            thread.join(timeout=5)
            proc.stdout.close()
    return results, problems


def _save_offenders(problems: list[dict], base_dir: Path, out_dir: Path, extra: bool) -> list[str]:
    """Writes the offending mutants to `out_dir` and returns one report line each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bases = mutation_worker.mutation_bases(base_dir, extra)
    report = []
    for p in problems[:REPORT_LIMIT]:
        name, data, regions, hot = bases[p["id"] % len(bases)]
        mutant, ops = mutation_worker.make_mutant(data, p["id"], SEED, regions, hot)
        path = out_dir / f"mutant_{p['id']}_{name}.h5"
        path.write_bytes(mutant)
        detail = (p.get("detail") or "").strip().splitlines()[-12:]
        report.append(
            f"mutant {p['id']} of {name} [{ops}]: {p['problem']}\n"
            f"  reproduce: {sys.executable} {WORKER} one {path}\n" + "".join(f"    | {d}\n" for d in detail)
        )
    (out_dir / "README.txt").write_text("\n".join(report))
    return report


def _run_mutants(base_dir: Path, tmp_path: Path, total: int, extra: bool) -> None:
    bounds = [total * k // WORKERS for k in range(WORKERS + 1)]
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = []
        for k in range(WORKERS):
            work = tmp_path / f"worker{k}"
            work.mkdir()
            futures.append(pool.submit(_run_range, base_dir, bounds[k], bounds[k + 1], work, extra))
        results, problems = [], []
        for f in futures:
            r, p = f.result()
            results += r
            problems += p
    problems.sort(key=lambda p: p["id"])
    counts: dict[str, int] = {}
    for r in results:
        key = r["outcome"] if r["outcome"] != "weightio" else r["detail"]
        counts[key] = counts.get(key, 0) + 1
    summary = f"{len(results)} mutants finished: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(summary)
    if problems:
        report = _save_offenders(problems, base_dir, tmp_path / "offenders", extra)
        pytest.fail(
            f"{len(problems)} of {total} mutants crashed, hung, were slow or raised a non-weightio "
            f"exception ({summary}); the first {len(report)} are saved in {tmp_path / 'offenders'}:\n\n"
            + "\n".join(report),
            pytrace=False,
        )
    assert len(results) == total
    # The mutants must reach the parser: a run where (nearly) everything is rejected by the
    # first check would test little.
    assert counts.get("ok", 0) > total // 10, summary


def test_mutants(base_dir: Path, tmp_path: Path) -> None:
    _run_mutants(base_dir, tmp_path, FAST_MUTANTS, extra=False)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("WEIGHTIO_SLOW_TESTS") != "1", reason="set WEIGHTIO_SLOW_TESTS=1 to run")
def test_mutants_slow(base_dir: Path, tmp_path: Path) -> None:
    _run_mutants(base_dir, tmp_path, SLOW_MUTANTS, extra=True)


def test_mutants_are_deterministic(base_dir: Path) -> None:
    """The same id and seed give the same mutant (reports name mutants by id)."""
    name, data, regions, hot = mutation_worker.mutation_bases(base_dir, False)[0]
    a = mutation_worker.make_mutant(data, 123, SEED, regions, hot)
    b = mutation_worker.make_mutant(data, 123, SEED, regions, hot)
    assert a == b
    assert a[0] != data or a[1].startswith("truncate")


def test_checksum_repair_reaches_the_parser(base_dir: Path) -> None:
    """The lookup3 port matches HDF5's: every latest-libver base file has object headers
    whose stored checksum it reproduces (else no mutant would get past the checksums)."""
    for name, data, regions, _ in mutation_worker.mutation_bases(base_dir, True):
        if "latest" in name:
            assert any(data[s : s + 4] == b"OHDR" for s, _ in regions), name


def test_harness_notices_crashes_hangs_and_exceptions(base_dir: Path, tmp_path: Path) -> None:
    """The worker, told to abort on one mutant, hang on another and raise ValueError on a
    third, is reported for exactly those three, and the other mutants still run."""
    env = dict(os.environ, WEIGHTIO_MUTATION_SELFTEST="crash:3,hang:7,raise:11")
    results, problems = _run_range(base_dir, 0, 16, tmp_path, False, watchdog=3.0, env=env)
    found = {p["id"]: p["problem"] for p in problems}
    assert set(found) == {3, 7, 11}, found
    assert found[3].startswith("worker died") and found[7].startswith("hang")
    assert found[11] == "non-weightio exception"
    assert sorted(r["id"] for r in results) == [i for i in range(16) if i not in (3, 7)]
