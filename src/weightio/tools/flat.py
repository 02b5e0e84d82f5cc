"""``.safetensors`` and ``.npz`` files: named tensors, and the Keras layout their names (or the
metadata ``weightio convert`` writes into a .safetensors header) carry.

Keys written by ``weightio convert`` and recognized here:
- legacy: ``<layer>/<weight name>``, e.g. ``dense/dense/kernel:0`` (the dataset's path in the
  legacy file: layer group, then the weight name as stored);
- Keras 3: ``<store path>/vars/<i>``, e.g. ``layers/dense/vars/0``; ``vars/0`` for the model's own.
A .safetensors header can also hold ``weightio.layout`` and ``weightio.layers`` (JSON: every
layer in order, with its tensors' keys in order, empty layers too) plus ``keras_version``,
``backend``, ``model_class``, ``model_name``: safetensors sorts its keys, npz keeps their order.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

import numpy as np

from .catalog import FLAT, KERAS3, LEGACY, Catalog, Layer, Tensor
from .common import ToolError, require
from .legacy import TOP_LEVEL

LAYOUT_KEY = "weightio.layout"
LAYERS_KEY = "weightio.layers"
META_KEYS = ("keras_version", "backend", "model_class", "model_name", "order")

_KERAS3_KEY = re.compile(r"^(?:(.*)/)?vars/(\d+)$")

SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8",
    "BOOL": "bool", "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}  # fmt: skip
_ITEMSIZE = {"bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}


def read(cat: Catalog) -> None:
    if cat.format == "safetensors":
        tensors, meta = _safetensors(cat)
    else:
        tensors, meta = _npz(cat), {}
    cat.meta.update({k: meta[k] for k in META_KEYS if k in meta})
    if not _layers_from_metadata(cat, tensors, meta):
        _layers_from_keys(cat, tensors)


def _safetensors(cat: Catalog) -> tuple[list[Tensor], dict[str, str]]:
    safetensors = require("safetensors", "reading .safetensors files")
    try:
        handle = safetensors.safe_open(cat.path, framework="np")
        handle.__enter__()
    except Exception as exc:  # safetensors raises its own SafetensorError (and others) for bad files
        raise ToolError(f"{cat.path}: not a readable safetensors file: {exc}") from None
    cat._close.append(lambda: handle.__exit__(None, None, None))
    keys = handle.offset_keys() if hasattr(handle, "offset_keys") else handle.keys()
    tensors = []
    for key in keys:
        view = handle.get_slice(key)
        code = view.get_dtype()
        dtype = SAFETENSORS_DTYPES.get(code, code)
        shape = tuple(int(d) for d in view.get_shape())
        tensors.append(
            _tensor(key, shape, dtype, "safetensors", lambda key=key, dtype=dtype: _get(handle, cat.path, key, dtype))
        )
    return tensors, dict(handle.metadata() or {})


def _get(handle: Any, path: str, key: str, dtype: str) -> np.ndarray:
    if dtype in _ITEMSIZE:  # safetensors names these numpy dtypes, which exist once ml_dtypes is imported
        require("ml_dtypes", f"reading {dtype} tensors")
    try:
        return np.asarray(handle.get_tensor(key))
    except Exception as exc:  # e.g. a dtype this numpy cannot hold (bfloat16 without ml_dtypes)
        raise ToolError(f"{path}: {key}: cannot read the tensor: {exc}") from None


def _npz(cat: Catalog) -> list[Tensor]:
    npz = np.load(cat.path, allow_pickle=False)
    cat._close.append(npz.close)
    tensors = []
    for key in npz.files:
        shape, dtype = _npy_header(npz, key)
        tensors.append(_tensor(key, shape, dtype, "npz", lambda key=key: _npz_get(npz, cat.path, key)))
    return tensors


def _npy_header(npz: Any, key: str) -> tuple[tuple[int, ...], str]:
    from numpy.lib import format as npy

    with npz.zip.open(key + ".npy") as fh:
        version = npy.read_magic(fh)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(fh)
    return tuple(shape), (dtype.name if dtype.kind in "biufc" else dtype.str)


def _npz_get(npz: Any, path: str, key: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise ToolError(f"{path}: {key}: {exc}") from None


def _tensor(key: str, shape: tuple[int, ...], dtype: str, storage: str, read: Any) -> Tensor:
    size = int(np.prod(shape, dtype=np.int64))
    try:
        itemsize = _ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize
    except TypeError:
        itemsize = 0
    return Tensor(key, key, "", 0, shape, dtype, size, size * itemsize, read, storage=storage)


def _layers_from_metadata(cat: Catalog, tensors: list[Tensor], meta: dict[str, str]) -> bool:
    layout = meta.get(LAYOUT_KEY)
    if layout not in (LEGACY, KERAS3) or LAYERS_KEY not in meta:
        return False
    try:
        described = json.loads(meta[LAYERS_KEY])
        by_key = {t.key: t for t in tensors}
        layers = []
        top_level_group = False  # whether a legacy source had that group (maybe empty)
        for entry in described:
            if entry["name"] == TOP_LEVEL:
                top_level_group = True
                if not entry["tensors"]:
                    continue
            layer = Layer(
                name=str(entry["name"]),
                label=str(entry.get("label", entry["name"])),
                class_name=entry.get("class_name"),
            )
            for key in entry["tensors"]:
                layer.tensors.append(_place(by_key.pop(key), layer, key))
            layers.append(layer)
    except (ValueError, KeyError, TypeError) as exc:
        cat.warn(
            "bad_metadata",
            f"the {LAYERS_KEY} metadata does not match the tensors ({exc!r}): layout taken from the keys",
        )
        return False
    cat.layout, cat.layers = layout, layers
    cat.meta["layout_from"] = "metadata"
    if layout == LEGACY:
        cat.meta["top_level_group"] = top_level_group
    if by_key:
        cat.warn("unlisted_tensors", f"{len(by_key)} tensor(s) not in the {LAYERS_KEY} metadata")
        stray = Layer(name="(unlisted)", label="(unlisted)")
        stray.tensors = [_place(t, stray, t.key) for t in by_key.values()]
        cat.layers.append(stray)
    return True


def _place(tensor: Tensor, layer: Layer, key: str) -> Tensor:
    tensor.layer = layer.label
    tensor.index = len(layer.tensors)
    prefix = f"{layer.name}/" if layer.name else ""
    tensor.name = key[len(prefix) :] if key.startswith(prefix) else key
    if tensor.name.startswith("vars/"):
        tensor.name = tensor.name[len("vars/") :]
    return tensor


def _layers_from_keys(cat: Catalog, tensors: list[Tensor]) -> None:
    """Keras 3 keys if every key is ``.../vars/<i>``; legacy if every key has a layer part."""
    keys = [t.key for t in tensors]
    keras3 = [_KERAS3_KEY.match(k) for k in keys]
    if keys and all(keras3):
        cat.layout = KERAS3
        owner = [(m.group(1) or "") if m else "" for m in keras3]
    elif keys and all("/" in k.strip("/") for k in keys):
        cat.layout = LEGACY
        owner = [k.split("/", 1)[0] for k in keys]
    else:
        cat.layout = FLAT
        owner = [posixpath.dirname(k) for k in keys]
    cat.meta["layout_from"] = "keys"
    layers: dict[str, Layer] = {}
    for name, tensor in zip(owner, tensors):
        layer = layers.get(name)
        if layer is None:
            label = posixpath.basename(name) if cat.layout == KERAS3 else name
            layer = layers[name] = Layer(name=name, label=label)
            cat.layers.append(layer)
        layer.tensors.append(_place(tensor, layer, tensor.key) if cat.layout != FLAT else _flat(tensor, layer))


def _flat(tensor: Tensor, layer: Layer) -> Tensor:
    tensor.layer = layer.label
    tensor.index = len(layer.tensors)
    return tensor
