"""``weightio convert SRC DST``: SRC in any format the catalog reads, DST's format named by its
suffix. What can be written from what, and the tensor names used, are in ``HELP`` (shown by
``weightio convert --help``)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import Error
from .catalog import FLAT, KERAS3, LEGACY, Catalog, Tensor, open_catalog
from .common import ToolError, human_bytes, require
from .flat import LAYERS_KEY, LAYOUT_KEY, META_KEYS
from .keras_paths import FLAT_CLASSES, keras3_to_legacy, legacy_to_keras3
from .legacy import TOP_LEVEL
from .progress import Progress, progress
from .writers import write_keras3, write_legacy, write_npz, write_safetensors

DEFAULT_KERAS_VERSION = "3.0.0"
DEFAULT_BACKEND = "tensorflow"

HELP = f"""\
DST suffix:
  .safetensors  every tensor, named by its key; a Keras layout and keras_version/backend go
                in the header metadata (needs the safetensors package)
  .npz          every tensor, named by its key, in file order (numpy only; no bfloat16)
  .h5, .hdf5    legacy Keras weights, as save_weights writes them: layer_names, weight_names,
                keras_version, backend (needs h5py)
  .weights.h5   Keras 3 weights: <path>/vars/<i> groups with their name attribute (needs h5py)

Keys (tensor names in .safetensors/.npz, and what diff matches):
  legacy   <layer>/<weight name>, the dataset's path: dense/dense/kernel:0
  Keras 3  <store path>/vars/<i>: layers/dense/vars/0 (vars/0 for the model's own)

Legacy <-> Keras 3 (files, or .safetensors/.npz with those keys) holds for flat Sequential/
Functional models only: legacy layer order is model.layers order, and every layer with weights
keeps them in its own variables, i.e. is one of
{textwrap.fill(", ".join(sorted(FLAT_CLASSES)), 94, initial_indent="  ", subsequent_indent="  ")}.
Keras 3 names each layer's path after its class (layers/dense_1), so each layer's class must be
known: from model_config (a full-model .h5) or from an automatic layer name (dense_3, conv2d,
input_1); a layer named "d1" in a weights-only file cannot be placed. Anything else is refused,
saying why.
"""

_TARGETS = (
    (".weights.h5", KERAS3),
    (".safetensors", "safetensors"),
    (".npz", "npz"),
    (".h5", LEGACY),
    (".hdf5", LEGACY),
)
_TARGET_NAMES = {KERAS3: "Keras 3 .weights.h5", LEGACY: "legacy Keras HDF5", "safetensors": "safetensors", "npz": "npz"}
_REFUSED = {
    ".keras": "writing .keras archives is not supported (they hold the model's config too); write .weights.h5",
    ".json": "writing sharded .weights.json is not supported; write .weights.h5",
}


@dataclass
class Report:
    src: Catalog
    dst: str
    target: str
    tensors: int = 0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = (
            f"wrote {self.dst} ({_TARGET_NAMES[self.target]}): {self.tensors} tensors, {human_bytes(self.bytes)}, "
            f"from {self.src.path} ({self.src.description})"
        )
        return "\n".join([head] + [f"note: {n}" for n in self.notes])

    def to_json(self) -> dict[str, Any]:
        return {
            "src": self.src.path,
            "src_format": self.src.format,
            "dst": self.dst,
            "dst_format": self.target,
            "tensors": self.tensors,
            "bytes": self.bytes,
            "notes": self.notes,
        }


def target_of(dst: str) -> str:
    lower = dst.lower()
    for suffix, target in _TARGETS:
        if lower.endswith(suffix):
            return target
    _, ext = os.path.splitext(lower)
    if ext in _REFUSED:
        raise ToolError(f"{dst}: {_REFUSED[ext]}")
    raise ToolError(f"{dst}: unknown output suffix {ext or '(none)'!r}: use .h5, .weights.h5, .safetensors or .npz")


def convert(
    src: str, dst: str, force: bool = False, keras_version: str | None = None, backend: str | None = None
) -> Report:
    target = target_of(dst)
    if target == "safetensors":
        require("safetensors.numpy", "writing .safetensors files")
    elif target in (LEGACY, KERAS3):
        require("h5py", "writing HDF5 files")
    if os.path.exists(dst):
        if os.path.exists(src) and os.path.samefile(src, dst):
            raise ToolError(f"{dst}: is the source file")
        if not force:
            raise ToolError(f"{dst}: already exists (use --force to overwrite)")
    with open_catalog(src) as cat:
        report = Report(cat, dst, target)
        write = _plan(cat, report, target, keras_version, backend)
        tmp = os.path.join(os.path.dirname(os.path.abspath(dst)), f".{os.path.basename(dst)}.tmp{os.getpid()}")
        try:
            with progress(report.bytes, f"writing {os.path.basename(dst)}") as bar:
                write(tmp, bar)
            os.replace(tmp, dst)
        except Error:
            raise  # (a FormatError is an OSError too) the source is damaged: its message names it
        except OSError as exc:
            raise ToolError(f"{dst}: cannot write: {exc.strerror or exc}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return report


def _plan(
    cat: Catalog, report: Report, target: str, keras_version: str | None, backend: str | None
) -> Callable[[str, Progress], None]:
    """Checks that ``cat`` can be written as ``target`` (filling in ``report``); returns the writer."""

    def count(tensors: list[Tensor]) -> None:
        report.tensors = len(tensors)
        report.bytes = sum(t.nbytes for t in tensors)

    if target in ("safetensors", "npz"):
        items = [(t.key, t) for t in cat.tensors()]
        count([t for _, t in items])
        if target == "npz":
            return lambda path, bar: write_npz(path, items, bar)
        metadata = _safetensors_metadata(cat)
        return lambda path, bar: write_safetensors(path, items, metadata, bar)
    if cat.layout == FLAT:
        raise ToolError(
            f"cannot convert {cat.path} to the {_TARGET_NAMES[target]} layout: its tensor names carry no Keras layout "
            "(expected <layer>/<weight> or <path>/vars/<i> keys)"
        )
    if target == LEGACY:
        layers = _legacy_layers(cat, report)
        count([t for _, weights in layers for _, t in weights])
        attrs = _legacy_attrs(cat, report, keras_version, backend)
        # Keras 3's writer always adds top_level_model_weights, tf-keras's only when used.
        top = cat.meta.get("top_level_group", True) if cat.layout == LEGACY else True
        return lambda path, bar: write_legacy(path, layers, attrs, bar, top_level_group=top)
    entries = (
        [(layer.name, layer.label, layer.tensors) for layer in cat.layers]
        if cat.layout == KERAS3
        else legacy_to_keras3(cat)
    )
    count([t for _, _, tensors in entries for t in tensors])
    if cat.layout == LEGACY:
        report.notes.append(
            "Keras 3 store paths derived from layer classes in layer order (flat Sequential/Functional model)"
        )
    return lambda path, bar: write_keras3(path, entries, bar)


def _legacy_layers(cat: Catalog, report: Report) -> list[tuple[str, list[tuple[str, Tensor]]]]:
    if cat.layout == LEGACY:
        return [(layer.name, [(t.name, t) for t in layer.tensors]) for layer in cat.layers]
    layers, skipped = keras3_to_legacy(cat)
    if skipped:
        report.notes.append(f"left out (a legacy weights file has no place for them): {', '.join(skipped)}")
    report.notes.append(
        "legacy layers named by their vars groups' name attributes, in model order (flat Sequential/Functional model)"
    )
    return layers


def _legacy_attrs(cat: Catalog, report: Report, keras_version: str | None, backend: str | None) -> dict[str, str]:
    """The source's own values; a legacy source without keras_version keeps none (Keras 2 loaders
    then apply their Keras 1 conversions, as they would to the source); others get defaults."""
    attrs = {
        "keras_version": keras_version or cat.meta.get("keras_version"),
        "backend": backend or cat.meta.get("backend"),
    }
    if cat.format != "legacy-h5":
        for key, default in (("keras_version", DEFAULT_KERAS_VERSION), ("backend", DEFAULT_BACKEND)):
            if attrs[key] is None:
                attrs[key] = default
                report.notes.append(
                    f"{key} unknown in the source: wrote {default!r} (set it with --{key.replace('_', '-')})"
                )
    elif attrs["keras_version"] is None:
        report.notes.append("the source has no keras_version (a Keras 1 file): none written either")
    return {k: v for k, v in attrs.items() if v is not None}


def _safetensors_metadata(cat: Catalog) -> dict[str, str]:
    meta = {key: str(cat.meta[key]) for key in META_KEYS if cat.meta.get(key) is not None}
    if cat.layout in (LEGACY, KERAS3):
        meta[LAYOUT_KEY] = cat.layout
        layers = [
            {
                "name": layer.name,
                "label": layer.label,
                "class_name": layer.class_name,
                "tensors": [t.key for t in layer.tensors],
            }
            for layer in cat.layers
        ]
        if cat.meta.get("top_level_group") and not any(layer.name == TOP_LEVEL for layer in cat.layers):
            layers.append({"name": TOP_LEVEL, "tensors": []})
        meta[LAYERS_KEY] = json.dumps(layers)
    return meta
