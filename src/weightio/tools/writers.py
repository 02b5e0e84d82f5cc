"""Writing tensors out: legacy Keras HDF5 and Keras 3 .weights.h5 (h5py), .safetensors
(safetensors), .npz (numpy). Each reads one tensor at a time from its source; only
safetensors, whose API takes everything at once, holds all tensors in memory."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from .catalog import Tensor
from .common import ToolError, require
from .legacy import TOP_LEVEL
from .progress import Progress

# Keras's HDF5_OBJECT_HEADER_LIMIT: longer name lists are split into name0, name1, ...
HDF5_OBJECT_HEADER_LIMIT = 64512

LegacyLayers = Sequence[tuple[str, Sequence[tuple[str, Tensor]]]]
Keras3Entries = Sequence[tuple[str, "str | None", Sequence[Tensor]]]


def _array(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.read())


def _is_ml_dtype(arr: np.ndarray) -> bool:
    return type(arr.dtype).__module__.startswith("ml_dtypes") or arr.dtype.type.__module__.startswith("ml_dtypes")


# -- HDF5 -------------------------------------------------------------------------------------


def _h5py() -> Any:
    return require("h5py", "writing HDF5 files")


def _write_dataset(group: Any, name: str, t: Tensor) -> None:
    arr = _array(t)
    bf16 = t.dtype == "bfloat16"  # Keras 3's encoding: 2-byte opaque, attribute dtype="bfloat16"
    if not bf16 and (arr.dtype.kind == "O" or _is_ml_dtype(arr)):
        raise ToolError(f"{t.key}: {t.dtype} tensors cannot be written to HDF5 by weightio")
    try:
        ds = group.create_dataset(name, data=arr.view("V2") if bf16 else arr)
    except (ValueError, KeyError, TypeError) as exc:  # h5py: a name that clashes or is not a path
        raise ToolError(f"{t.key}: cannot write it as {group.name}/{name}: {exc}") from None
    if bf16:
        ds.attrs["dtype"] = "bfloat16"


def _save_name_list(group: Any, name: str, items: list[str]) -> None:
    """Keras's ``save_attributes_to_hdf5_group``, byte for byte."""
    data = [item.encode("utf8") for item in items]
    if any(len(x) > HDF5_OBJECT_HEADER_LIMIT for x in data):
        raise ToolError(f"{group.name}: a name in {name} is longer than {HDF5_OBJECT_HEADER_LIMIT} bytes")
    data_npy = np.asarray(data)
    chunks = [data_npy]
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in chunks):
        chunks = np.array_split(data_npy, len(chunks) + 1)
    if len(chunks) > 1:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = data


def write_legacy(
    path: str, layers: LegacyLayers, attrs: dict[str, str], bar: Progress, top_level_group: bool = True
) -> None:
    """Keras's ``save_weights_to_hdf5_group``: root ``layer_names``, ``backend`` and
    ``keras_version``; one group per layer (created in name order) with ``weight_names``, each
    weight at ``<layer>/<weight name>``; ``top_level_model_weights`` for the model's own weights
    (written empty too with ``top_level_group``, as Keras 3 does)."""
    h5py = _h5py()
    top = [w for name, weights in layers if name == TOP_LEVEL for w in weights]
    layers = [(name, weights) for name, weights in layers if name != TOP_LEVEL]
    names = [name for name, _ in layers]
    if len(set(names)) != len(names):
        raise ToolError(f"layer names used more than once: {sorted({n for n in names if names.count(n) > 1})}")
    with h5py.File(path, "w") as f:
        _save_name_list(f, "layer_names", names)
        for key in ("backend", "keras_version"):
            if attrs.get(key) is not None:
                f.attrs[key] = attrs[key].encode("utf8")
        tail = [(TOP_LEVEL, top)] if top or top_level_group else []
        for name, weights in sorted(layers, key=lambda lw: lw[0]) + tail:
            group = f.create_group(name)
            _save_name_list(group, "weight_names", [w for w, _ in weights])
            for weight, t in weights:
                _write_dataset(group, weight, t)
                bar.update(t.nbytes)


def write_keras3(path: str, entries: Keras3Entries, bar: Progress) -> None:
    """Keras 3's ``H5IOStore``: ``<store path>/vars`` groups (attribute ``name``) in order,
    datasets ``"0"``, ``"1"``, ..."""
    h5py = _h5py()
    with h5py.File(path, "w") as f:
        for store, label, tensors in entries:
            group = f.require_group(store).create_group("vars") if store else f.create_group("vars")
            if label is not None:
                group.attrs["name"] = label
            for i, t in enumerate(tensors):
                _write_dataset(group, str(i), t)
                bar.update(t.nbytes)


# -- safetensors and npz -------------------------------------------------------------------


def write_safetensors(path: str, items: list[tuple[str, Tensor]], metadata: dict[str, str], bar: Progress) -> None:
    st = require("safetensors.numpy", "writing .safetensors files")
    tensors = {}
    for key, t in items:
        arr = _array(t)
        if arr.dtype.kind not in "biuf" and not _is_ml_dtype(arr):
            hint = " (install ml_dtypes to write bfloat16)" if t.dtype == "bfloat16" else ""
            raise ToolError(f"{key}: safetensors cannot store {t.dtype} tensors{hint}")
        tensors[key] = arr
        bar.update(t.nbytes)
    try:
        st.save_file(tensors, path, metadata=metadata)
    except Exception as exc:  # safetensors' own errors (e.g. a dtype it does not know)
        raise ToolError(f"{path}: safetensors could not write the file: {exc}") from None


def write_npz(path: str, items: list[tuple[str, Tensor]], bar: Progress) -> None:
    """``numpy.savez`` (uncompressed), one tensor in memory at a time; keys keep their order."""
    from numpy.lib import format as npy

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, t in items:
            arr = _array(t)
            if t.dtype == "bfloat16" or _is_ml_dtype(arr) or arr.dtype.kind == "O":
                raise ToolError(
                    f"{key}: .npz cannot hold {t.dtype} tensors without pickling or losing the type; use .safetensors"
                )
            with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                npy.write_array(fh, arr, allow_pickle=False)
            bar.update(t.nbytes)
