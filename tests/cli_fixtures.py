"""Weight files for the ``weightio`` command's tests, written with h5py the way Keras writes them.

One small model throughout (``MODEL``): Input -> Dense(4->3) -> BatchNormalization(3) ->
Dense(3->2), with fixed random values, in every layout:

- ``write_legacy``: ``save_weights("x.h5")`` / full-model ``.h5`` (tf-keras or Keras 3 names,
  fixed- or variable-length name lists, chunked ``layer_names0..``, ``model_config``);
- ``write_keras3``: ``.weights.h5`` (``<path>/vars/<i>``, groups created in Keras's order);
- ``write_keras_zip``: a ``.keras`` archive around it; ``write_sharded``: a ``.weights.json``
  index and two shards.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

_rng = np.random.default_rng(7)


def _random(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape).astype("f4")


# (layer name, class, [(weight, array)]): Keras's model.layers order.
MODEL: list[tuple[str, str, list[tuple[str, np.ndarray]]]] = [
    ("input_1", "InputLayer", []),
    ("dense", "Dense", [("kernel", _random(4, 3)), ("bias", _random(3))]),
    (
        "batch_normalization",
        "BatchNormalization",
        [
            ("gamma", _random(3)),
            ("beta", _random(3)),
            ("moving_mean", _random(3)),
            ("moving_variance", abs(_random(3))),
        ],
    ),
    ("dense_1", "Dense", [("kernel", _random(3, 2)), ("bias", _random(2))]),
]
_SNAKE = {"InputLayer": "input_layer", "Dense": "dense", "BatchNormalization": "batch_normalization"}


def keras3_paths(model: list) -> list[str]:
    """Keras 3 store paths of a model's layers: snake-case class, then _1, _2, ... per class."""
    seen: dict[str, int] = {}
    paths = []
    for _, cls, _ in model:
        name = _SNAKE[cls]
        paths.append(f"layers/{name}" + (f"_{seen[name]}" if name in seen else ""))
        seen[name] = seen.get(name, 0) + 1
    return paths


KERAS3_PATHS = keras3_paths(MODEL)  # input_layer, dense, batch_normalization, dense_1
HEADER_LIMIT = 64512


def renamed(names: dict[str, str], model: list = MODEL) -> list:
    """MODEL with some layers renamed (user-chosen names like ``d1``)."""
    return [(names.get(n, n), c, w) for n, c, w in model]


def _name_list(group: Any, name: str, items: list[str], fixed: bool) -> None:
    """Keras's save_attributes_to_hdf5_group: fixed-length bytes (h5py 2 era) or the list of
    bytes Keras passes (h5py 3 stores variable-length strings); chunks name0, name1, ..."""
    data = np.asarray([s.encode() for s in items])
    chunks = [data]
    while any(c.nbytes > HEADER_LIMIT for c in chunks):
        chunks = np.array_split(data, len(chunks) + 1)
    if len(chunks) > 1:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = data if fixed else [s.encode() for s in items]


def write_legacy(
    path: Path,
    model: list = MODEL,
    *,
    style: str = "tf",  # "tf": dense/kernel:0; "k3": dense/kernel
    fixed: bool = True,
    full_model: bool = False,
    keras_version: str | None = "2.13.1",
    backend: str = "tensorflow",
) -> Path:
    with h5py.File(path, "w") as f:
        group = f
        if full_model:
            f.attrs["model_config"] = json.dumps(_config(model))
            f.attrs["backend"] = backend
            if keras_version:
                f.attrs["keras_version"] = keras_version
            group = f.create_group("model_weights")
        _name_list(group, "layer_names", [n for n, _, _ in model], fixed)
        group.attrs["backend"] = np.bytes_(backend.encode())
        if keras_version:
            group.attrs["keras_version"] = np.bytes_(keras_version.encode())
        for name, _, weights in sorted(model, key=lambda layer: layer[0]):
            g = group.create_group(name)
            names = [f"{name}/{w}:0" if style == "tf" else f"{name}/{w}" for w, _ in weights]
            _name_list(g, "weight_names", names, fixed)
            for wname, (_, value) in zip(names, weights):
                g.create_dataset(wname, data=value)
    return path


def write_keras3(path: Path, model: list = MODEL, *, names: bool = True, root_vars: bool = True) -> Path:
    """Keras 3's H5IOStore: root vars first, then each layer's vars in model order."""
    with h5py.File(path, "w") as f:
        if root_vars:
            root = f.create_group("vars")
            if names:
                root.attrs["name"] = "model"
        for store, (name, _, weights) in zip(keras3_paths(model), model):
            g = f.create_group(store).create_group("vars")
            if names:
                g.attrs["name"] = name
            for i, (_, value) in enumerate(weights):
                g[str(i)] = value
    return path


def _config(model: list) -> dict:
    layers = [{"class_name": c, "name": n, "config": {"name": n}} for n, c, _ in model]
    return {"class_name": "Functional", "config": {"name": "model", "layers": layers}}


def write_keras_zip(path: Path, weights_h5: Path, model: list = MODEL, keras_version: str = "3.15.1") -> Path:
    """A .keras archive: metadata.json, config.json (which lists the layers in model order)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": keras_version, "date_saved": "2025-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps(_config(model)))
        zf.write(weights_h5, "model.weights.h5")
    return path


def write_sharded(path: Path, model: list = MODEL) -> Path:
    """``x.weights.json`` with layers 0-1 in ``x_00000.weights.h5`` and the rest in ``_00001``."""
    stem = path.name.replace(".weights.json", "")
    shards = [path.with_name(f"{stem}_0000{i}.weights.h5") for i in range(2)]
    weight_map = {}
    with h5py.File(shards[0], "w") as f0, h5py.File(shards[1], "w") as f1:
        for i, (store, (name, _, weights)) in enumerate(zip(keras3_paths(model), model)):
            f = f0 if i < 2 else f1
            g = f.create_group(store).create_group("vars")
            g.attrs["name"] = name
            for j, (_, value) in enumerate(weights):
                g[str(j)] = value
            if weights:
                weight_map[f"/{store}/vars"] = shards[0 if i < 2 else 1].name
    path.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return path
