"""Which kind of weight file is this? Decided by content, not by suffix, so a legacy HDF5
file named ``.keras`` or ``.h5f`` still loads.

Also opens the HDF5 bytes of each kind with the native reader: a file, the
``model.weights.h5`` member of a ``.keras`` zip (memory-mapped in place when stored
uncompressed, as Keras writes it), or the shards of a sharded ``.weights.json``.
"""

from __future__ import annotations

import enum
import json
import mmap
import os
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ..file import File

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
# Keras refuses zip members that inflate beyond this many times their stored size.
_MAX_ZIP_RATIO = 1000


class Format(enum.Enum):
    LEGACY_H5 = "legacy HDF5 (Keras 2 / tf-keras save_weights or save)"
    WEIGHTS_H5 = "Keras 3 .weights.h5"
    KERAS_ZIP = "Keras 3 .keras archive"
    SHARDED_JSON = "Keras 3 sharded .weights.json"
    TF_CHECKPOINT = "TensorFlow checkpoint"
    UNKNOWN = "unknown"


def _is_hdf5(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            at = 0
            while at + 8 <= size:
                fh.seek(at)
                if fh.read(8) == HDF5_SIGNATURE:
                    return True
                at = 512 if at == 0 else at * 2
    except OSError:
        return False
    return False


def _is_saved_model(path: str) -> bool:
    """A SavedModel directory (``model.save("dir")`` in tf-keras, ``tf.saved_model.save``)
    with its variables checkpoint."""
    return (
        os.path.isdir(path)
        and any(os.path.isfile(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt"))
        and os.path.isfile(os.path.join(path, "variables", "variables.index"))
    )


def _head(path: str, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def sniff(path: str | os.PathLike[str]) -> Format:
    """The format of ``path`` judged by its bytes."""
    path = os.fspath(path)
    if os.path.isfile(path + ".index") or (os.path.isdir(path) and os.path.isfile(os.path.join(path, "checkpoint"))):
        return Format.TF_CHECKPOINT
    if _is_saved_model(path):
        return Format.TF_CHECKPOINT  # its variables/variables checkpoint, as tf-keras loads it
    if not os.path.isfile(path):
        return Format.UNKNOWN
    head = _head(path)
    if head.startswith(b"PK\x03\x04"):
        return Format.KERAS_ZIP
    if head.lstrip().startswith(b"{"):
        try:
            with open(path, encoding="utf-8") as fh:
                if "weight_map" in json.load(fh):
                    return Format.SHARDED_JSON
        except (OSError, ValueError):
            pass
        return Format.UNKNOWN
    if _is_hdf5(path):
        with File(path) as f:
            if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
                return Format.LEGACY_H5
            return Format.WEIGHTS_H5
    return Format.UNKNOWN


@dataclass
class WeightSources:
    """The open HDF5 files that hold one model's weights (one, or several shards)."""

    files: dict[str, File]
    weight_map: dict[str, Any] | None = None  # sharded: store path -> shard file name(s)
    _keep: list[Any] = field(default_factory=list)  # mappings and archives kept open

    def __enter__(self) -> WeightSources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
            f._buffer = None
        for obj in self._keep:
            try:
                obj.close()
            except BufferError:  # a caller still holds a view: the mapping goes with it
                pass


def has_h5_weights_member(path: str) -> bool:
    """Whether a ``.keras`` archive stores its weights as HDF5 (not ``model.weights.npz``)."""
    with zipfile.ZipFile(path) as archive:
        return KERAS_WEIGHTS_MEMBER in archive.namelist()


def _zip_member_view(path: str, member: str) -> tuple[Any, list[Any]]:
    """The bytes of a zip member: a memoryview into a mapping of the archive when the member
    is stored uncompressed (no copy), else its inflated bytes (size-checked first)."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise FileNotFoundError(f"{path}: the archive has no '{member}'") from None
        if info.compress_type != zipfile.ZIP_STORED:
            if info.compress_size and info.file_size > _MAX_ZIP_RATIO * info.compress_size:
                raise ValueError(f"{path}: '{member}' inflates {info.file_size} bytes from {info.compress_size}: refusing a zip bomb")
            return archive.read(member), []
        offset, size = info.header_offset, info.file_size
    fh = open(path, "rb")
    try:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    finally:
        fh.close()
    header = mapped[offset : offset + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        mapped.close()
        raise ValueError(f"{path}: bad local header for '{member}'")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = offset + 30 + name_len + extra_len
    if start + size > len(mapped):
        mapped.close()
        raise ValueError(f"{path}: '{member}' runs past the end of the archive")
    return memoryview(mapped)[start : start + size], [mapped]


def open_sources(path: str | os.PathLike[str], fmt: Format) -> WeightSources:
    """Opens the HDF5 bytes that hold the weights of ``path`` (of format ``fmt``)."""
    path = os.fspath(path)
    if fmt in (Format.LEGACY_H5, Format.WEIGHTS_H5):
        return WeightSources({os.path.basename(path): File(path)})
    if fmt is Format.KERAS_ZIP:
        data, keep = _zip_member_view(path, KERAS_WEIGHTS_MEMBER)
        name = f"{path}/{KERAS_WEIGHTS_MEMBER}"
        try:
            f = File(name, buffer=data)
        except BaseException:
            if isinstance(data, memoryview):
                data.release()
            for obj in keep:
                obj.close()
            raise
        return WeightSources({KERAS_WEIGHTS_MEMBER: f}, _keep=keep)
    if fmt is Format.SHARDED_JSON:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
        weight_map = config["weight_map"]
        names: list[str] = []
        for value in weight_map.values():
            for name in value if isinstance(value, list) else [value]:
                if name not in names:
                    names.append(name)
        directory = os.path.dirname(path)
        files: dict[str, File] = {}
        try:
            for name in names:
                if os.path.basename(name) != name:
                    raise ValueError(f"{path}: shard name {name!r} is not a plain file name")
                files[name] = File(os.path.join(directory, name))
        except BaseException:
            for f in files.values():
                f.close()
            raise
        return WeightSources(files, weight_map=weight_map)
    raise ValueError(f"{path}: not a weight file weightio reads ({fmt.value})")
