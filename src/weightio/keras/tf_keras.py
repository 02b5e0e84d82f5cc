"""Legacy HDF5 weights into tf-keras (Keras 2) models, through tf-keras's own
``hdf5_format`` loaders (so its conversions of old layouts, ``preprocess_weights_for_loading``,
apply unchanged) over natively prefetched arrays, all-or-nothing.

tf-keras gathers every (variable, value) pair and sets them with one
``backend.batch_set_value``; weightio records that call, checks every shape first (a
mismatch raises TensorFlow's own error before anything is assigned), then performs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..file import File, Group
from .assign import patched
from .prefetch import Prefetched


def is_tf_keras_model(model: Any) -> bool:
    return any(cls.__module__.startswith("tf_keras.") for cls in type(model).__mro__)


def load(model: Any, file: File, by_name: bool, skip_mismatch: bool, threads: int | None) -> int:
    """tf-keras's ``save.load_weights`` for HDF5. Returns the number of variables assigned."""
    from tf_keras.src import backend
    from tf_keras.src.saving.legacy import hdf5_format

    if skip_mismatch and not by_name:
        raise ValueError(
            "When calling model.load_weights, skip_mismatch can only be "
            "set to True when by_name is True."
        )
    if not model._is_graph_network and not model.built:
        raise ValueError(
            "Unable to load weights saved in HDF5 format into a "
            "subclassed Model which has not created its variables yet. "
            "Call the Model first, then load the weights."
        )
    model._assert_weights_created()
    group: Any = file
    if "layer_names" not in file.attrs and "model_weights" in file:
        group = file["model_weights"]
    prefetched = Prefetched(file, threads)

    def load_subset(g: Group) -> list[Any]:
        names = hdf5_format.load_attributes_from_hdf5_group(g, "weight_names")
        # tf-keras follows any link here (it has no Keras 3 safety rules).
        return [_lookup(prefetched, g, name) for name in names]

    recorded: list[tuple[Any, Any]] = []
    original = backend.batch_set_value
    with patched(hdf5_format, load_subset_weights_from_hdf5_group=load_subset), patched(
        backend, batch_set_value=recorded.extend
    ):
        if by_name:
            hdf5_format.load_weights_from_hdf5_group_by_name(group, model, skip_mismatch)
        else:
            hdf5_format.load_weights_from_hdf5_group(group, model)
    for variable, value in recorded:
        if tuple(variable.shape) != np.shape(value):
            variable.assign(value)  # raises TensorFlow's shape error; nothing assigned yet
    original(recorded)
    for layer in model.layers:
        layer.finalize_state()
    return len({id(v) for v, _ in recorded})


def _lookup(prefetched: Prefetched, group: Group, name: str) -> Any:
    array = prefetched.arrays.get(f"{group.name.rstrip('/')}/{name}")
    return array if array is not None else np.asarray(group[name])
