"""Keras's own weight-loading tests, run with ``weightio.keras.install()`` active.

Keras ships its tests in site-packages. The weight-loading ones (``LoadWeightsTests`` and the
``objects_to_skip`` tests of ``saving_api_test.py``, all of ``legacy_h5_format_test.py``, the
weights tests of ``saving_lib_test.py``) run twice per backend, each time in a process of its
own: without weightio, and with ``weightio.keras.install()`` called at start-up (see
``keras_own_plugin.py``). Tests that fail or skip without weightio are fine; every test that
passes without weightio must pass with it, and weightio must really have loaded weights.

Backends: ``WEIGHTIO_KERAS_OWN_BACKENDS`` (default numpy,tensorflow).
"""

from __future__ import annotations

import importlib.util
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from backends import HERE, backend_env, missing_modules, run_pytest, tail

KERAS_TESTS = ["saving/saving_api_test.py", "legacy/saving/legacy_h5_format_test.py", "saving/saving_lib_test.py"]
# The weight-related tests of those files (pytest -k).
SELECT = "not efficientnet and (" + " or ".join(
    [
        "LoadWeightsTests",
        "objects_to_skip",
        "LegacyH5",
        "DirectoryCreationTest",
        "weights_only",
        "partial_load",
        "redefinition_of_trackable",
        "model_api_endpoint",
        "legacy_h5_format",
        "normalization_legacy",
        "shape_bomb",
        "weights_sharding",
        "legacy_load_skips_missing_nested_containers",
        "fresh_save_load_emits_no_container_skip_warning",
        "remove_weights_only_saving_and_loading",
        "save_weights_subclassed_functional",
        "bidirectional_lstm_saving",
        "nested_functional_model_saving",
    ]
) + ")"  # the EfficientNet sharding cases take ~30 s and call saving_lib directly
DEFAULT_BACKENDS = "numpy,tensorflow"


def own_backends() -> list[str]:
    value = os.environ.get("WEIGHTIO_KERAS_OWN_BACKENDS", DEFAULT_BACKENDS)
    return [b.strip() for b in value.split(",") if b.strip()]


def keras_src() -> Path:
    spec = importlib.util.find_spec("keras")
    assert spec is not None and spec.origin, "keras is not installed"
    return Path(spec.origin).parent / "src"


def outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed / failed / skipped, from a JUnit XML report."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A test with an error in teardown is reported twice: the worst outcome wins.
        if result.get(name) != "failed":
            result[name] = outcome
    return result


def run_keras_tests(backend: str, directory: Path, install: bool) -> tuple[dict[str, str], dict, str, float]:
    directory.mkdir(parents=True)
    ini = directory / "pytest.ini"
    ini.write_text("[pytest]\n")  # not the project's config (its warnings-as-errors is not Keras's)
    junit = directory / "junit.xml"
    report = directory / "weightio.json"
    src = keras_src()
    args = [
        *(str(src / f) for f in KERAS_TESTS),
        "-k",
        SELECT,
        "-c",
        str(ini),
        "--rootdir",
        str(directory),
        "-p",
        "keras_own_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        f"--junitxml={junit}",
        f"--basetemp={directory / 'basetemp'}",
    ]
    env = backend_env(
        backend,
        WEIGHTIO_KERAS_INSTALL="1" if install else "0",
        WEIGHTIO_KERAS_OWN_REPORT=str(report),
        PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    code, output, seconds = run_pytest(args, env, cwd=directory)
    assert junit.exists() and report.exists(), f"Keras's tests did not run (exit {code}):\n{tail(output)}"
    return outcomes(junit), json.loads(report.read_text()), output, seconds


def summary(results: dict[str, str]) -> str:
    counts = {k: sum(1 for v in results.values() if v == k) for k in ("passed", "failed", "skipped")}
    return ", ".join(f"{n} {k}" for k, n in counts.items())


@pytest.mark.parametrize("backend", own_backends())
def test_keras_own_tests_with_install(backend: str, tmp_path: Path) -> None:
    missing = missing_modules(backend)
    assert not missing, f"Keras backend {backend!r} is required but {missing} cannot be imported"
    without, _, out_without, t_without = run_keras_tests(backend, tmp_path / "without", install=False)
    with_, counts, out_with, t_with = run_keras_tests(backend, tmp_path / "with", install=True)
    print(
        f"{backend}: Keras's own tests without weightio: {summary(without)} ({t_without:.0f} s); "
        f"with install(): {summary(with_)} ({t_with:.0f} s); weightio: {counts}"
    )
    assert counts["install"] and counts.get("still_installed"), counts
    assert counts["loaded"] > 0, f"weightio loaded nothing: {counts}"
    assert set(with_) == set(without), "not the same tests ran"
    assert len(with_) > 50, summary(with_)
    newly_failing = sorted(t for t, o in with_.items() if o == "failed" and without[t] != "failed")
    newly_skipped = sorted(t for t, o in with_.items() if o == "skipped" and without[t] == "passed")
    assert not newly_failing and not newly_skipped, (
        f"with weightio.keras.install(), {len(newly_failing)} of Keras's own tests fail "
        f"and {len(newly_skipped)} skip that pass without:\n"
        + "\n".join(newly_failing + newly_skipped)
        + f"\n\n{tail(out_with, 300)}"
    )
