"""The weightio.keras per-backend suites (``backends.IN_BACKEND_PROCESS``: ``test_oracle.py``
against Keras 3, ``test_checkpoint.py`` and ``test_convert_legacy.py`` against tf-keras,
``test_report.py``), once per Keras 3 backend, each
backend in its own process (Keras fixes its backend when first imported).

The backends are ``WEIGHTIO_KERAS_BACKENDS`` (default numpy,tensorflow,jax) plus torch when
torch is installed; a required backend that is not installed fails here, loudly.
"""

from __future__ import annotations

import pytest

from backends import HERE, IN_BACKEND_PROCESS, backend_env, missing_modules, required_backends, run_pytest, tail


@pytest.mark.parametrize("backend", required_backends())
def test_oracle_suite_on_backend(backend: str, tmp_path) -> None:
    missing = missing_modules(backend)
    assert not missing, (
        f"Keras backend {backend!r} is required (WEIGHTIO_KERAS_BACKENDS) but {missing} cannot be imported: "
        "install the test extra (pip install '.[test]')"
    )
    files = [str(HERE / name) for name in IN_BACKEND_PROCESS]
    code, output, seconds = run_pytest(
        [*files, "-q", "-p", "no:cacheprovider", "-rfE", f"--basetemp={tmp_path / 'basetemp'}"],
        backend_env(backend),
    )
    print(f"{backend}: exit {code} in {seconds:.1f} s\n{tail(output, 5)}")
    assert code == 0, f"{IN_BACKEND_PROCESS} on the {backend} backend failed (exit {code}, {seconds:.0f} s):\n{tail(output)}"
