"""``weightio bench --plot out.png``: median time per method per file, as grouped bars."""

from __future__ import annotations

import os
from typing import Any

from .common import require


def check_available() -> None:
    """Fails before a long benchmark run, not after it."""
    require("matplotlib", "--plot")


def plot(results: dict[str, Any], out: str) -> None:
    matplotlib = require("matplotlib", "--plot")
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    files = results["files"]
    methods: list[str] = []
    for res in files:
        methods += [key for key in res["methods"] if key not in methods]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(files) * max(1, len(methods)) / 3), 4.5))
    width = 0.8 / max(1, len(methods))
    for i, key in enumerate(methods):
        xs, ys = [], []
        for j, res in enumerate(files):
            row = res["methods"].get(key, {})
            if row.get("median_ms"):
                xs.append(j + (i - (len(methods) - 1) / 2) * width)
                ys.append(row["median_ms"])
        label = next((res["methods"][key]["label"] for res in files if key in res["methods"]), key)
        ax.bar(xs, ys, width=width, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("median time (ms, log scale)")
    ax.set_xticks(range(len(files)))
    ax.set_xticklabels([os.path.basename(res["path"]) for res in files])
    ax.set_title("weightio bench: reading every dataset")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
