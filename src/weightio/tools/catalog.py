"""A weight file of any supported kind as one description: its layers in order, each with its
tensors (name, shape, dtype, size, storage), the file's metadata and anything odd about it.

Opening a catalog reads metadata only; ``Tensor.read()`` reads one tensor's data. The three
layouts: ``legacy`` (Keras 2 / tf-keras HDF5: ``layer_names``/``weight_names``), ``keras3``
(``<store path>/vars/<i>`` groups) and ``flat`` (named tensors with no Keras structure: any
other HDF5 file, or a .safetensors/.npz file whose keys carry no Keras layout).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import Dataset, Error
from ..keras.formats import KERAS_WEIGHTS_MEMBER, Format, open_sources, sniff
from .common import ToolError, few, message_about, optional

LEGACY, KERAS3, FLAT = "legacy", "keras3", "flat"
READABLE = "HDF5 .h5/.weights.h5, .keras, sharded .weights.json, .safetensors or .npz"

# Format ids (JSON output, convert targets) and how they read in text.
FORMATS = {
    "legacy-h5": "legacy Keras HDF5",
    "weights-h5": "Keras 3 .weights.h5",
    "keras-zip": "Keras 3 .keras archive",
    "sharded-json": "Keras 3 sharded .weights.json",
    "hdf5": "HDF5 file without a Keras weight layout",
    "safetensors": "safetensors",
    "npz": "NumPy .npz archive",
}
# The formats whose weights are HDF5, as weightio.keras.formats opens them.
HDF5_FORMATS = {
    "legacy-h5": Format.LEGACY_H5,
    "weights-h5": Format.WEIGHTS_H5,
    "keras-zip": Format.KERAS_ZIP,
    "sharded-json": Format.SHARDED_JSON,
}


@dataclass
class Tensor:
    """One stored tensor. ``key`` is unique in its file: what ``diff`` matches and what
    ``convert`` writes as the tensor's name (``d1/d1/kernel:0``, ``layers/dense/vars/0``)."""

    key: str
    name: str  # legacy: the weight name as stored; Keras 3: the index; flat: the key
    layer: str  # the label of its layer (for matching across layouts)
    index: int  # position in its layer
    shape: tuple[int, ...] | None  # None: null dataspace (no data)
    dtype: str  # numpy's name ("float32"), "bfloat16", or what the type is ("compound (8 bytes)")
    size: int  # elements
    nbytes: int
    read: Callable[[], np.ndarray] = field(repr=False, compare=False)
    storage: str = "contiguous"  # the HDF5 layout, or the container ("safetensors", "npz")
    filters: list[str] = field(default_factory=list)
    fallback: str | None = None  # why the native reader leaves this one to h5py
    bf16_opaque: bool = False  # Keras's bfloat16: 2-byte opaque with attribute dtype="bfloat16"
    big_endian: bool = False


@dataclass
class Layer:
    """A layer as the file records it. ``name`` identifies it in its layout (legacy: the layer
    name; Keras 3: the store path, "" for the model's own ``vars``); ``label`` is the layer's own
    name where the file keeps it (Keras 3's ``vars`` attribute ``name``)."""

    name: str
    label: str
    tensors: list[Tensor] = field(default_factory=list)
    class_name: str | None = None  # Keras class, when the file says (model_config)
    missing: bool = False  # listed in layer_names, but no such group

    @property
    def params(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


@dataclass
class Issue:
    level: str  # "warning": the file is inconsistent; "note": worth knowing, not wrong
    code: str
    message: str


@dataclass
class Catalog:
    path: str
    format: str  # a key of FORMATS
    layout: str  # LEGACY, KERAS3 or FLAT
    layers: list[Layer] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    file_bytes: int = 0
    _close: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def description(self) -> str:
        return FORMATS[self.format]

    def tensors(self) -> list[Tensor]:
        return [t for layer in self.layers for t in layer.tensors]

    def note(self, code: str, message: str) -> None:
        self.issues.append(Issue("note", code, message))

    def warn(self, code: str, message: str) -> None:
        self.issues.append(Issue("warning", code, message))

    def close(self) -> None:
        while self._close:
            self._close.pop()()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- tensors from HDF5 datasets -----------------------------------------------------------


def dtype_name(dtype: np.dtype) -> str:
    """numpy's name for numbers ("float32", whatever the byte order), else its type string."""
    return dtype.name if dtype.kind in "biufc" else dtype.str


def tensor_from_dataset(key: str, name: str, layer: str, index: int, ds: Dataset) -> Tensor:
    info = ds._info
    shape = None if info["space"] == "null" else tuple(int(d) for d in info["shape"])
    size = 0 if shape is None else int(np.prod(shape, dtype=np.int64))
    typestr = info["typestr"]
    bf16 = typestr == "|V2" and _is_bf16(ds)
    if bf16:
        dtype = "bfloat16"
    elif typestr:
        dtype = dtype_name(np.dtype(typestr))
    else:
        dtype = info["type"]
    return Tensor(
        key=key,
        name=name,
        layer=layer,
        index=index,
        shape=shape,
        dtype=dtype,
        size=size,
        nbytes=size * int(info["itemsize"]),
        read=lambda: _read_dataset(ds, bf16),
        storage=info["layout"],
        filters=ds.filters,
        fallback=info["unsupported"],
        bf16_opaque=bf16,
        big_endian=typestr.startswith(">") and int(info["itemsize"]) > 1,
    )


def _is_bf16(ds: Dataset) -> bool:
    try:
        return bool(ds.attrs.get("dtype") == "bfloat16")
    except Error:
        return False


def _read_dataset(ds: Dataset, bf16: bool) -> np.ndarray:
    if ds.shape is None:
        raise ToolError(f"{ds.file.filename}: {ds.name}: the dataset has no data (null dataspace)")
    arr = ds.read()  # (what needs the h5py fallback raises UnsupportedFeatureError without h5py)
    if bf16:
        ml_dtypes = optional("ml_dtypes")
        if ml_dtypes is not None:
            return arr.view(ml_dtypes.bfloat16)
    return arr


# -- opening ------------------------------------------------------------------------------


def detect(path: str) -> str:
    """The format id of ``path`` judged by content (raises ToolError for what we cannot read)."""
    if not os.path.exists(path):
        if os.path.isfile(path + ".index"):
            raise ToolError(f"{path}: TensorFlow checkpoints are not supported by the weightio command")
        raise ToolError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ToolError(f"{path}: is a directory, not a weight file")
    if _looks_like_safetensors(path):
        return "safetensors"
    if zipfile.is_zipfile(path):
        return _zip_kind(path)
    try:
        fmt = sniff(path)
    except (Error, OSError) as exc:
        raise ToolError(message_about(path, exc)) from None
    if fmt is Format.LEGACY_H5:
        return "legacy-h5"
    if fmt is Format.WEIGHTS_H5:
        return "weights-h5"  # (or any other HDF5 file: decided when the layout is read)
    if fmt is Format.SHARDED_JSON:
        return "sharded-json"
    raise ToolError(f"{path}: not a weight file weightio reads ({READABLE})")


def _looks_like_safetensors(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
        size = os.fstat(fh.fileno()).st_size
    if len(head) < 9 or head[8:9] != b"{":
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 2 <= header_len <= size - 8


def _zip_kind(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ToolError(f"{path}: bad zip archive: {exc}") from None
    if KERAS_WEIGHTS_MEMBER in names:
        return "keras-zip"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    if "model.weights.npz" in names:
        raise ToolError(f"{path}: a .keras archive with .npz weights, which weightio does not read")
    raise ToolError(f"{path}: a zip archive that is neither a .keras model nor an .npz file")


def open_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Reads the description of any supported weight file (metadata only)."""
    path = os.fspath(path)
    fmt = detect(path)
    cat = Catalog(path=path, format=fmt, layout=FLAT, file_bytes=_size(path))
    try:
        if fmt in ("safetensors", "npz"):
            from . import flat

            flat.read(cat)
        else:
            _read_hdf5(cat)
        storage_notes(cat)
    except ToolError:
        cat.close()
        raise
    except (Error, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        cat.close()
        raise ToolError(message_about(path, exc)) from None
    return cat


def _read_hdf5(cat: Catalog) -> None:
    from . import keras3, legacy

    fmt = HDF5_FORMATS[cat.format]
    sources = open_sources(cat.path, fmt)
    cat._close.append(sources.close)
    config = None
    if cat.format == "keras-zip":
        meta, config = _keras_zip_meta(cat.path)
        cat.meta.update(meta)
    if cat.format == "sharded-json":
        cat.meta["shards"] = list(sources.files)
        cat.file_bytes += sum(_size(os.path.join(os.path.dirname(cat.path), n)) for n in sources.files)
    files = list(sources.files.values())
    if fmt is Format.LEGACY_H5:
        legacy.read(cat, files[0])
    else:
        keras3.read(cat, files, sources.weight_map, config)


def storage_notes(cat: Catalog) -> None:
    """What is worth knowing about how the tensors are stored."""
    tensors = cat.tensors()

    def note(code: str, pick: list[Tensor], what: str, warn: bool = False) -> None:
        if pick:
            (cat.warn if warn else cat.note)(code, f"{len(pick)} {what}: {few([t.key for t in pick])}")

    def listed(values: set[str], sep: str = ", ") -> str:
        return sep.join(sorted(values))

    odd = [t for t in tensors if t.storage not in ("contiguous", "safetensors", "npz")]
    note("not_contiguous", odd, f"tensor(s) not contiguous ({listed({t.storage for t in odd})}; no zero-copy view)")
    filtered = [t for t in tensors if t.filters]
    note("filtered", filtered, f"tensor(s) compressed/filtered ({listed({f for t in filtered for f in t.filters})})")
    fallback = [t for t in tensors if t.fallback]
    how = "read through the h5py fallback" if optional("h5py") else "unreadable here: the h5py fallback needs h5py"
    note("h5py_fallback", fallback, f"tensor(s) {how} ({listed({t.fallback or '' for t in fallback}, '; ')})")
    note(
        "bfloat16_opaque",
        [t for t in tensors if t.bf16_opaque],
        "bfloat16 tensor(s) stored as 2-byte opaque data with attribute dtype='bfloat16' "
        "(Keras's encoding; h5py reads them as |V2)",
    )
    note("big_endian", [t for t in tensors if t.big_endian], "tensor(s) stored big-endian")
    note("null_dataspace", [t for t in tensors if t.shape is None], "dataset(s) without data (null dataspace)", True)


def _keras_zip_meta(path: str) -> tuple[dict[str, Any], Any]:
    """metadata.json (keras_version, date_saved), the model's class and name, and its config."""
    meta: dict[str, Any] = {}
    config: Any = None
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for member in ("metadata.json", "config.json"):
            if member not in names:
                continue
            if zf.getinfo(member).file_size > 64 << 20:
                raise ToolError(f"{path}: {member} is implausibly large")
            try:
                value = json.loads(zf.read(member))
            except ValueError:
                meta.setdefault("unreadable", []).append(member)
                continue
            if not isinstance(value, dict):
                continue
            if member == "metadata.json":
                meta.update({k: v for k, v in value.items() if isinstance(v, (str, int, float))})
            else:
                config = value
                meta["model_class"] = value.get("class_name")
                inner = value.get("config")
                if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                    meta["model_name"] = inner["name"]
        meta["members"] = sorted(names)
    return meta, config


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
