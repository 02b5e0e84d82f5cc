"""pytest plugin for running Keras's own saving tests (shipped in site-packages) in a
subprocess started by ``test_keras_own_tests.py``: ``-p keras_own_plugin``.

It does what the conftest.py of the Keras repository does (markers, the
``requires_trainable_backend`` skip on the numpy backend, torch imported before
TensorFlow), and, with ``WEIGHTIO_KERAS_INSTALL=1``, calls ``weightio.keras.install()`` at
start-up and counts what weightio did. The counts are written as JSON to
``WEIGHTIO_KERAS_OWN_REPORT`` at the end.
"""

from __future__ import annotations

import json
import os
from typing import Any

try:  # as Keras's conftest.py: torch before TensorFlow, or TensorFlow may crash
    import torch  # noqa: F401
except ImportError:
    pass

import pytest
from keras.src.backend import backend

COUNTS: dict[str, Any] = {"install": False, "loaded": 0, "handed_to_keras": 0, "raised": 0, "formats": {}}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_trainable_backend: mark test for trainable backend only")
    config.addinivalue_line("markers", "multi_device: mark test for running with multiple devices only")
    if os.environ.get("WEIGHTIO_KERAS_INSTALL") == "1":
        import weightio.keras as wk

        wk.install()
        COUNTS["install"] = True
        real = wk.load_weights

        def counting(*args: Any, **kwargs: Any) -> Any:
            try:
                report = real(*args, **kwargs)
            except wk.NotHandled:
                COUNTS["handed_to_keras"] += 1
                raise
            except Exception:
                COUNTS["raised"] += 1
                raise
            COUNTS["loaded"] += 1
            name = report.format.name
            COUNTS["formats"][name] = COUNTS["formats"].get(name, 0) + 1
            return report

        wk.load_weights = counting  # install()'s dispatcher looks it up at each call


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    trainable = pytest.mark.skipif(
        backend() in ("numpy", "openvino"), reason="Trainer not implemented for NumPy and OpenVINO backend."
    )
    multi_device = pytest.mark.skip(reason="Requires multiple devices")
    for item in items:
        if "requires_trainable_backend" in item.keywords:
            item.add_marker(trainable)
        if "multi_device" in item.keywords:
            item.add_marker(multi_device)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get("WEIGHTIO_KERAS_OWN_REPORT")
    if not path:
        return
    if COUNTS["install"]:
        import weightio.keras as wk

        COUNTS["still_installed"] = wk.is_installed()
    COUNTS["backend"] = backend()
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(COUNTS, fh)
