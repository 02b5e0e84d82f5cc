"""Which Keras 3 backends the tests must cover, and how to run pytest in a process of its own
for one of them. Imports neither Keras nor any backend (the parent pytest process stays free
of them: Keras fixes its backend at its first import)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# The test files that import Keras: run once per backend, each backend in a process of its
# own (test_backends.py); never collected by the parent process (conftest.py).
IN_BACKEND_PROCESS = ["test_oracle.py", "test_checkpoint.py", "test_convert_legacy.py", "test_report.py"]

DEFAULT_BACKENDS = "numpy,tensorflow,jax"
# What each backend imports (Keras's numpy backend imports scipy and jax at start-up).
BACKEND_MODULES = {
    "numpy": ("numpy", "scipy", "jax"),
    "tensorflow": ("tensorflow",),
    "jax": ("jax", "jaxlib"),
    "torch": ("torch",),
}


def required_backends() -> list[str]:
    """``WEIGHTIO_KERAS_BACKENDS`` (comma-separated; default numpy,tensorflow,jax), plus torch
    whenever torch is importable. A listed backend that is not installed is a failure, never
    a skip."""
    listed = [b.strip() for b in os.environ.get("WEIGHTIO_KERAS_BACKENDS", DEFAULT_BACKENDS).split(",") if b.strip()]
    if "torch" not in listed and importlib.util.find_spec("torch") is not None:
        listed.append("torch")
    return listed


def missing_modules(backend: str) -> list[str]:
    modules = ("keras", "h5py") + BACKEND_MODULES.get(backend, (backend,))
    return [m for m in modules if importlib.util.find_spec(m) is None]


def backend_env(backend: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND=backend,
        WEIGHTIO_KERAS_BACKEND_RUN="1",
        TF_CPP_MIN_LOG_LEVEL="2",  # TensorFlow's C++ start-up chatter
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def run_pytest(args: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 1200) -> tuple[int, str, float]:
    """``python -m pytest *args`` in a new process; returns (exit code, output, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout, time.monotonic() - start


def tail(text: str, lines: int = 400) -> str:
    parts = text.splitlines()
    return "\n".join(parts[-lines:])
