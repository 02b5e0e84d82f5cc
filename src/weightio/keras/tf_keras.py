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
from . import report
from .assign import patched
from .prefetch import Prefetched, prefetch_all


def is_tf_keras_model(model: Any) -> bool:
    return any(cls.__module__.startswith("tf_keras.") for cls in type(model).__mro__)


def load(
    model: Any, file: File, by_name: bool, skip_mismatch: bool, threads: int | None, meter: Any = None
) -> tuple[int, report.Details]:
    """tf-keras's ``save.load_weights`` for HDF5. Returns the number of variables assigned
    and what the load did. (tf-keras converts old layouts itself: ``convert_legacy`` does
    not apply.)"""
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
    (prefetched,) = prefetch_all({"": file}, threads, meter).values()
    converted: list[tuple[Any, list[Any]]] = []  # by_name + skip_mismatch: what each layer got

    def load_subset(g: Group) -> list[Any]:
        names = hdf5_format.load_attributes_from_hdf5_group(g, "weight_names")
        # tf-keras follows any link here (it has no Keras 3 safety rules).
        return [_lookup(prefetched, g, name) for name in names]

    replacements: dict[str, Any] = {"load_subset_weights_from_hdf5_group": load_subset}
    if by_name and skip_mismatch:
        preprocess = hdf5_format.preprocess_weights_for_loading

        depth = [0]  # tf-keras recurses through the module global: note the outer calls only

        def noting(layer: Any, weights: Any, *args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            try:
                values = preprocess(layer, weights, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                converted.append((layer, values))
            return values

        replacements["preprocess_weights_for_loading"] = noting
    recorded: list[tuple[Any, Any]] = []
    original = backend.batch_set_value
    with patched(hdf5_format, **replacements), patched(backend, batch_set_value=recorded.extend):
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
    skipped = _by_name_skips(group, model, converted) if by_name else []
    details = report.Details(model, report.compact(recorded, prefetched.origin_map()), prefetched.entries(), skipped)
    return len({id(v) for v, _ in recorded}), details


def _by_name_skips(group: Any, model: Any, converted: list[tuple[Any, list[Any]]]) -> list[tuple[Any, str]]:
    """What tf-keras's by-name loading skipped (it says so on its logger only)."""
    from tf_keras.src.saving.legacy import hdf5_format

    names = set(hdf5_format.load_attributes_from_hdf5_group(group, "layer_names"))
    out: list[tuple[Any, str]] = []
    for layer in model.layers:
        if layer.weights and layer.name not in names:
            out.append((layer, "by_name: no layer of this name in the file"))
    for layer, values in converted:
        weights = hdf5_format._legacy_weights(layer)
        if len(values) != len(weights):
            out.append((layer, f"weight count mismatch: the layer has {len(weights)}, the file {len(values)}"))
            continue
        for variable, value in zip(weights, values):
            if tuple(variable.shape) != tuple(np.shape(value)):
                out.append(
                    (variable, f"shape mismatch: the variable is {tuple(variable.shape)}, the file has {np.shape(value)}")
                )
    return out


def _lookup(prefetched: Prefetched, group: Group, name: str) -> Any:
    path = f"{group.name.rstrip('/')}/{name}"
    array = prefetched.arrays.get(path)
    if array is None:
        array = np.asarray(group[name])
        prefetched.origins[id(array)] = (path,)
    return array
