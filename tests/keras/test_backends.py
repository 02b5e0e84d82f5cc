"""The weightio.keras oracle suites (``test_oracle.py``, ``test_checkpoint.py``), once per
Keras 3 backend, each in its own process (Keras fixes its backend when first imported).

The backends are ``WEIGHTIO_KERAS_BACKENDS`` (default numpy,tensorflow,jax) plus torch when
torch is installed; a required backend that is not installed fails here, loudly.
"""

from __future__ import annotations

import pytest

from backends import HERE, backend_env, missing_modules, required_backends, run_pytest, tail


@pytest.mark.parametrize("backend", required_backends())
def test_oracle_suite_on_backend(backend: str, tmp_path) -> None:
    missing = missing_modules(backend)
    assert not missing, (
        f"Keras backend {backend!r} is required (WEIGHTIO_KERAS_BACKENDS) but {missing} cannot be imported: "
        "install the test extra (pip install '.[test]')"
    )
    code, output, seconds = run_pytest(
        [str(HERE / "test_oracle.py"), str(HERE / "test_checkpoint.py"), "-q", "-p", "no:cacheprovider", "-rfE", f"--basetemp={tmp_path / 'basetemp'}"],
        backend_env(backend),
    )
    print(f"{backend}: exit {code} in {seconds:.1f} s\n{tail(output, 5)}")
    assert code == 0, f"test_oracle.py/test_checkpoint.py on the {backend} backend failed (exit {code}, {seconds:.0f} s):\n{tail(output)}"
