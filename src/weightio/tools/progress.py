"""Progress bars for long reads and writes: rich, else tqdm, only when one is installed, stderr is
a terminal and the job is big enough to be worth one; otherwise nothing at all."""

from __future__ import annotations

import sys
from typing import Any

from .common import optional

MIN_BYTES = 64 * 1000 * 1000


class Progress:
    """``with progress(total, label) as bar: bar.update(n)``; the base class shows nothing."""

    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Rich(Progress):
    def __init__(self, rich: Any, total: int, label: str) -> None:
        from rich.console import Console

        columns = (rich.TextColumn(label), rich.BarColumn(), rich.DownloadColumn(), rich.TimeRemainingColumn())
        self._bar = rich.Progress(*columns, console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(label, total=total)

    def update(self, n: int) -> None:
        self._bar.advance(self._task, n)

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


class _Tqdm(Progress):
    def __init__(self, tqdm: Any, total: int, label: str) -> None:
        self._bar = tqdm.tqdm(total=total, desc=label, unit="B", unit_scale=True, file=sys.stderr, leave=False)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def progress(total_bytes: int, label: str) -> Progress:
    if total_bytes < MIN_BYTES or not sys.stderr.isatty():
        return Progress()
    rich = optional("rich.progress")
    if rich is not None:
        return _Rich(rich, total_bytes, label)
    tqdm = optional("tqdm")
    if tqdm is not None:
        return _Tqdm(tqdm, total_bytes, label)
    return Progress()
