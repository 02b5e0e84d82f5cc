"""``load_weights(..., progress=...)``: reading progress, in bytes.

``progress=True`` shows the CLI's bar on stderr (``weightio.tools.progress``: only on a
terminal, for reads big enough to be worth one, with rich or tqdm when installed); a callable
is called as ``progress(done_bytes, total_bytes)`` once before reading (done 0) and after each
batch, ``done_bytes`` growing to ``total_bytes``. The native bulk read has no progress hook, so with progress on
the datasets are read in a few large batches (at most ``BATCHES``, balanced by bytes, see
``batches``) instead of one call; each batch is still parallel. When ``progress=True`` has no bar to show (no terminal,
a small read), the read stays one call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

BATCHES = 8


class Meter:
    """Counts bytes read and tells the caller (a callable, or a bar)."""

    def __init__(self, progress: bool | Callable[[int, int], Any], label: str) -> None:
        self._progress = progress
        self._label = label
        self._bar: Any = None
        self.done = 0
        self.total = 0
        self.batches = BATCHES  # how many reads to split the bulk read into

    def start(self, total: int) -> None:
        self.done = 0
        self.total = total
        if self._progress is True:
            from ..tools.progress import Progress, progress

            self._bar = progress(total, self._label)
            self._bar.__enter__()
            # No terminal, or too little to read for a bar: nothing to show, read in one call.
            self.batches = BATCHES if type(self._bar) is not Progress else 1
        elif callable(self._progress):
            self._progress(0, total)

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif callable(self._progress):
            self._progress(self.done, self.total)

    def finish(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.__exit__(None, None, None)


def meter(progress: Any, path: str) -> Meter | None:
    """The meter for ``load_weights``'s ``progress`` argument (None: no progress)."""
    if progress is None or progress is False:
        return None
    if progress is not True and not callable(progress):
        raise TypeError(f"progress must be None, a bool or a callable(done_bytes, total_bytes), got {progress!r}")
    return Meter(progress, f"loading {os.path.basename(path)}")


def batches(sizes: list[int], n: int = BATCHES, threads: int = 1) -> list[list[int]]:
    """Indices of ``sizes`` cut into at most ``n`` batches of similar total size, each
    largest first, for ``threads`` threads per batch.

    A batch is one parallel native call whose threads take datasets in order: it ends
    when its largest dataset does, so there are no more batches than keep each one at
    least ``threads`` times the largest dataset, datasets are spread largest first over
    the batches (LPT), and each batch lists its largest first (its threads then finish
    together). Progress is only as fine as that allows."""
    if not sizes:
        return []
    largest = max(sizes)
    if largest:
        n = max(1, min(n, sum(sizes) // (max(1, threads) * largest)))
    loads = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        k = loads.index(min(loads))
        out[k].append(i)
        loads[k] += sizes[i]
    return [batch for batch in out if batch]
