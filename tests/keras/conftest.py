"""pytest configuration of the weightio.keras tests.

Keras 3 fixes its backend when it is first imported, so the tests that import Keras
(``backends.IN_BACKEND_PROCESS``: ``test_oracle.py``, ``test_checkpoint.py``, ``test_convert_legacy.py``,
``test_report.py``) run once
per backend, each in its own process started by ``test_backends.py`` with ``KERAS_BACKEND`` and ``WEIGHTIO_KERAS_BACKEND_RUN=1`` set. A plain
``python -m pytest`` does not collect them itself (``collect_ignore`` below) and never
imports Keras in its own process.

To run one backend by hand::

    WEIGHTIO_KERAS_BACKEND_RUN=1 KERAS_BACKEND=jax python -m pytest tests/keras/test_oracle.py -q
"""

from __future__ import annotations

import os

import pytest

from backends import IN_BACKEND_PROCESS

BACKEND_RUN = os.environ.get("WEIGHTIO_KERAS_BACKEND_RUN") == "1"

# Files that import Keras (listed in backends.py): collected only in a per-backend process.
collect_ignore = [] if BACKEND_RUN else list(IN_BACKEND_PROCESS)

# Warnings that Keras's own code raises under NumPy 2 and that say nothing about weightio:
# the numpy backend's Variable.__array__ takes no ``copy`` argument, so np.array(variable)
# (inside Keras's savers and loaders) warns. Ignored for these tests only, by message.
KERAS_NOISE = [
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            for spec in KERAS_NOISE:
                item.add_marker(pytest.mark.filterwarnings(spec))
