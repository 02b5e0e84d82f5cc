"""``weightio inspect``: a catalog as text for people or as JSON for programs."""

from __future__ import annotations

from typing import Any

from .catalog import KERAS3, LEGACY, Catalog, Layer, Tensor
from .common import human_bytes, human_count, shape_str

_SAVED_BY = (("keras_version", "keras"), ("backend", "backend"), ("date_saved", "on"))


def _totals(cat: Catalog) -> dict[str, int]:
    return {
        "layers": len(cat.layers),
        "layers_with_weights": sum(1 for layer in cat.layers if layer.tensors),
        "tensors": len(cat.tensors()),
        "params": sum(layer.params for layer in cat.layers),
        "bytes": sum(layer.nbytes for layer in cat.layers),
    }


def to_json(cat: Catalog) -> dict[str, Any]:
    return {
        "path": cat.path,
        "format": cat.format,
        "format_description": cat.description,
        "layout": cat.layout,
        "file_bytes": cat.file_bytes,
        "meta": cat.meta,
        "layers": [_layer_json(layer) for layer in cat.layers],
        "totals": _totals(cat),
        "issues": [vars(issue) for issue in cat.issues],
    }


def _layer_json(layer: Layer) -> dict[str, Any]:
    return {
        "name": layer.name,
        "label": layer.label,
        "class_name": layer.class_name,
        "missing": layer.missing,
        "params": layer.params,
        "bytes": layer.nbytes,
        "tensors": [_tensor_json(t) for t in layer.tensors],
    }


def _tensor_json(t: Tensor) -> dict[str, Any]:
    return {
        "key": t.key,
        "name": t.name,
        "shape": None if t.shape is None else list(t.shape),
        "dtype": t.dtype,
        "size": t.size,
        "bytes": t.nbytes,
        "storage": t.storage,
        "filters": t.filters,
        "h5py_fallback": t.fallback,
    }


def to_text(cat: Catalog) -> str:
    lines = [cat.path, f"  format  {_format_line(cat)}"]
    lines += [f"  {label:<7} {value}" for label, value in _meta_lines(cat)]
    lines.append("")
    lines += _table(cat)
    totals = _totals(cat)
    unit = {LEGACY: "layers", KERAS3: "vars groups"}.get(cat.layout, "groups")
    lines.append("")
    lines.append(
        f"  total   {totals['layers']} {unit} ({totals['layers_with_weights']} with weights), "
        f"{human_count(totals['tensors'])} tensors, {human_count(totals['params'])} parameters, "
        f"{human_bytes(totals['bytes'])}; file {human_bytes(cat.file_bytes)}"
    )
    for issue in cat.issues:
        lines.append(f"  {issue.level}: {issue.message}")
    return "\n".join(lines)


def _format_line(cat: Catalog) -> str:
    text = cat.description
    if cat.meta.get("full_model"):
        text += f", full model (weights in {cat.meta.get('weights_group', '/')})"
    if cat.meta.get("layout_from"):
        text += f", {cat.layout} layout (from the {cat.meta['layout_from']})"
    return text


def _meta_lines(cat: Catalog) -> list[tuple[str, str]]:
    meta = cat.meta
    out = []
    saved = [f"{label} {meta[key]}" for key, label in _SAVED_BY if meta.get(key)]
    if saved:
        out.append(("saved", ", ".join(saved)))
    if meta.get("model_class") or meta.get("model_name"):
        out.append(("model", " ".join(str(meta[k]) for k in ("model_class", "model_name") if meta.get(k))))
    if meta.get("training_config"):
        out.append(("also", "training_config"))
    if meta.get("optimizer_weights"):
        out.append(("also", f"optimizer_weights ({meta['optimizer_weights']} tensors, not listed)"))
    if meta.get("shards"):
        out.append(("shards", ", ".join(meta["shards"])))
    return out


def _table(cat: Catalog) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    for layer in cat.layers:
        params, size = (human_count(layer.params), human_bytes(layer.nbytes)) if layer.tensors else ("", "")
        rows.append((_layer_title(cat, layer), "", "", params, size))
        for t in layer.tensors:
            rows.append(("  " + t.name, shape_str(t.shape), t.dtype, human_count(t.size), human_bytes(t.nbytes)))
    head = ("layer / weight", "shape", "dtype", "params", "size")
    widths = [max([len(head[i])] + [len(r[i]) for r in rows]) for i in range(5)]
    widths[0] = min(widths[0], 72)

    def fmt(r: tuple[str, ...]) -> str:
        cells = [f"{r[i]:<{widths[i]}}" for i in range(3)] + [f"{r[i]:>{widths[i]}}" for i in (3, 4)]
        return ("  " + "  ".join(cells)).rstrip()

    return [fmt(head)] + [fmt(r) for r in rows]


def _layer_title(cat: Catalog, layer: Layer) -> str:
    if cat.layout == KERAS3:
        title = layer.name or "(root)"
        if layer.label and layer.label != title.rsplit("/", 1)[-1]:
            title += f" [{layer.label}]"
    else:
        title = layer.name
        if layer.class_name:
            title += f" ({layer.class_name})"
    if layer.missing:
        title += "  (missing!)"
    elif not layer.tensors:
        title += "  (no weights)"
    return title
