"""What the ``weightio`` command does, kept apart from its argument parsing (``weightio.cli``).

- ``catalog``: any supported weight file read into one description (layers, tensors, metadata,
  oddities) without reading tensor data; ``legacy``/``keras3``/``flat`` read each layout.
- ``summary`` and ``tree``: ``weightio inspect`` (Keras-aware summary, raw HDF5 tree).
- ``diff``: ``weightio diff``; ``convert`` and ``writers``: ``weightio convert``;
  ``keras_paths``: the legacy <-> Keras 3 layout mapping for flat models.
- ``plot``: ``weightio bench --plot``; ``progress``: optional progress bars.

Nothing here imports Keras or TensorFlow; h5py, safetensors, ml_dtypes, matplotlib, rich and
tqdm are imported only where needed, and a missing one is a ``ToolError`` naming the package.
"""

from .common import ToolError

__all__ = ["ToolError"]
