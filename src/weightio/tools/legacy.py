"""The legacy Keras HDF5 layout (Keras 2 / tf-keras ``save_weights("x.h5")``, full-model
``.h5``, Keras 3's legacy writer): layers in ``layer_names`` order, each layer's weights in its
``weight_names`` order, as Keras's loaders see them; and what does not add up."""

from __future__ import annotations

import json
from typing import Any

from .. import Dataset, File, Group
from .catalog import LEGACY, Catalog, Layer, tensor_from_dataset
from .common import few, list_attr, strings

TOP_LEVEL = "top_level_model_weights"


def read(cat: Catalog, file: File) -> None:
    cat.layout = LEGACY
    root: Group = file
    model_weights = file.get("model_weights")
    if list_attr(file.attrs, "layer_names") is None and isinstance(model_weights, Group):
        root = model_weights  # a full-model file (Keras's loader makes the same choice)
        cat.meta["weights_group"] = root.name
    classes = _read_meta(cat, file, root)
    layer_names = list_attr(root.attrs, "layer_names")
    if layer_names is None:
        cat.warn("no_layer_names", f"{root.name}: no layer_names attribute: Keras cannot load this file")
        layer_names = []
    for name in layer_names:
        cat.layers.append(_layer(cat, root, name, classes.get(name)))
    top = _top_level(cat, root)
    if top is not None:
        cat.layers.append(top)
    _unlisted_groups(cat, root, layer_names)
    _summarize_empty(cat)


def _read_meta(cat: Catalog, file: File, root: Group) -> dict[str, str]:
    """Versions, the model and its training/optimizer state into ``cat.meta``; returns each
    layer's class when the file has a model_config."""
    classes: dict[str, str] = {}
    for attr in ("keras_version", "backend"):
        for holder in (root, file):
            if attr in holder.attrs:
                cat.meta[attr] = " ".join(strings(holder.attrs[attr]))
                break
    if "model_config" in file.attrs:
        cat.meta["full_model"] = True
        classes = _model_config(cat, " ".join(strings(file.attrs["model_config"])))
    if "training_config" in file.attrs:
        cat.meta["training_config"] = True
    optimizer = file.get("optimizer_weights")
    if isinstance(optimizer, Group):
        count: list[int] = []
        optimizer.visititems(lambda _, obj: count.append(1) if isinstance(obj, Dataset) else None)
        cat.meta["optimizer_weights"] = len(count)
    return classes


def _model_config(cat: Catalog, text: str) -> dict[str, str]:
    """The model's class and name; returns each layer's class (for the Keras 3 path mapping)."""
    try:
        config = json.loads(text)
    except ValueError:
        cat.warn("bad_model_config", "model_config is not valid JSON")
        return {}
    if not isinstance(config, dict):
        return {}
    cat.meta["model_class"] = config.get("class_name")
    inner = config.get("config")
    layers: Any = inner.get("layers") if isinstance(inner, dict) else inner  # Keras 2.0 Sequential: a list
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        cat.meta["model_name"] = inner["name"]
    classes = {}
    for entry in layers if isinstance(layers, list) else []:
        if not isinstance(entry, dict):
            continue
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if isinstance(name, str) and isinstance(entry.get("class_name"), str):
            classes[name] = entry["class_name"]
    return classes


def _layer(cat: Catalog, root: Group, name: str, class_name: str | None) -> Layer:
    layer = Layer(name=name, label=name, class_name=class_name)
    group = root.get(name) if name else None
    if not isinstance(group, Group):
        layer.missing = True
        what = "is missing" if group is None else "is not a group"
        cat.warn("missing_layer", f"layer {name!r} is listed in layer_names but its group {what}")
        return layer
    _weights(cat, layer, group)
    return layer


def _weights(cat: Catalog, layer: Layer, group: Group) -> None:
    weight_names = list_attr(group.attrs, "weight_names")
    if weight_names is None:
        if len(group):
            cat.warn("no_weight_names", f"{group.name}: no weight_names attribute, so Keras sees no weights here")
        weight_names = []
    listed = set()
    for weight in weight_names:
        obj = group.get(weight) if weight else None
        if not isinstance(obj, Dataset):
            what = "points nowhere" if obj is None else "is not a dataset"
            cat.warn("dangling_weight", f"{group.name}: weight_names entry {weight!r} {what}")
            continue
        listed.add(obj.name)
        key = f"{layer.name}/{weight}"
        layer.tensors.append(tensor_from_dataset(key, weight, layer.label, len(layer.tensors), obj))
    stray: list[str] = []
    group.visititems(
        lambda _, obj: stray.append(obj.name) if isinstance(obj, Dataset) and obj.name not in listed else None
    )
    if stray:
        cat.note(
            "unlisted_dataset",
            f"{group.name}: {len(stray)} dataset(s) not in weight_names (Keras ignores them): {few(stray)}",
        )


def _top_level(cat: Catalog, root: Group) -> Layer | None:
    """Keras 3 (and tf-keras for subclassed models) keep the model's own weights here; an
    empty one is what Keras 3 always writes."""
    group = root.get(TOP_LEVEL)
    cat.meta["top_level_group"] = isinstance(group, Group)
    if not isinstance(group, Group):
        return None
    layer = Layer(name=TOP_LEVEL, label=TOP_LEVEL)
    _weights(cat, layer, group)
    return layer if layer.tensors else None


def _unlisted_groups(cat: Catalog, root: Group, layer_names: list[str]) -> None:
    known = set(layer_names) | {TOP_LEVEL}
    if root.name == "/":
        known |= {"model_weights", "optimizer_weights"}
    extra = [k for k in root.keys() if k not in known]
    if extra:
        cat.note(
            "unlisted_group",
            f"{root.name}: {len(extra)} member(s) not in layer_names (Keras ignores them): {few(extra)}",
        )


def _summarize_empty(cat: Catalog) -> None:
    empty = [layer.name for layer in cat.layers if not layer.tensors and not layer.missing]
    if empty:
        cat.note("empty_layers", f"{len(empty)} layer(s) without weights: {few(empty)}")
