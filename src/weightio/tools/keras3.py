"""The Keras 3 layout (``.weights.h5``, the weights of a ``.keras`` archive, the shards of a
``.weights.json``): one ``<store path>/vars`` group per object, datasets ``"0"``, ``"1"``, ...
inside. An HDF5 file with no ``vars`` group at all is read as a plain (flat) HDF5 file.

Order: Keras writes the groups in model order, but HDF5 records no order (it lists links by
name, and object addresses follow free-space reuse, not creation). The model order is known
from a .keras archive's config.json or a sharded file's weight_map (``meta["order"] ==
"model"``); otherwise groups are listed by name, numeric suffixes in numeric order
(``meta["order"] == "name"``), which is model order among layers of one class only.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from .. import Dataset, File, Group
from .catalog import FLAT, KERAS3, Catalog, Layer, tensor_from_dataset
from .common import few, natural_key
from .keras_paths import store_paths


@dataclass
class _Entry:
    label: str | None = None
    datasets: list[tuple[str, Dataset]] = field(default_factory=list)


def read(cat: Catalog, files: list[File], weight_map: dict[str, Any] | None = None, config: Any = None) -> None:
    entries: dict[str, _Entry] = {}
    stray: list[tuple[str, Dataset]] = []
    for f in files:
        f.visititems(lambda path, obj: _visit(entries, stray, path, obj))
    if not entries:
        _read_flat(cat, stray)
        return
    cat.layout = KERAS3
    ranks = _model_order(weight_map, config)
    known = all(_rank(ranks, store) is not None for store, e in entries.items() if e.datasets)
    cat.meta["order"] = "model" if known else "name"

    def order(store: str) -> tuple[int, int, list[Any]]:
        rank = _rank(ranks, store) if known else None
        return (0, rank, natural_key(store)) if rank is not None else (1, 0, natural_key(store))

    for store in sorted(entries, key=order):
        cat.layers.append(_layer(cat, store, entries[store]))
    if not known:
        cat.note("order_by_name", "vars groups listed by name: this file does not record the model's layer order")
    if stray:
        names = [ds.name for _, ds in stray]
        cat.warn("outside_vars", f"{len(names)} dataset(s) outside any vars group (Keras ignores them): {few(names)}")
    if weight_map is not None:
        _check_weight_map(cat, entries, weight_map)
    empty = [layer.name or "(root)" for layer in cat.layers if not layer.tensors]
    if empty:
        cat.note("empty_layers", f"{len(empty)} vars group(s) without weights: {few(empty)}")


def _model_order(weight_map: dict[str, Any] | None, config: Any) -> dict[str, int]:
    """Rank of each store path in model order, from a weight_map (the stores with weights, in
    the order Keras wrote them) or a model config (its top-level layers; the model's own vars
    come first)."""
    if weight_map is not None:
        stores = [key.strip("/").removesuffix("vars").rstrip("/") for key in weight_map]
    else:
        stores = store_paths(config)
    ranks = {"": -1} if weight_map is None and stores else {}
    ranks.update((store, i) for i, store in enumerate(stores))
    return ranks


def _rank(ranks: dict[str, int], store: str) -> int | None:
    """A store's rank, or that of the top-level layer it is part of (``layers/x/...``)."""
    if store in ranks:
        return ranks[store]
    parts = store.split("/")
    return ranks.get("/".join(parts[:2])) if len(parts) > 2 else None


def _visit(entries: dict[str, _Entry], stray: list[tuple[str, Dataset]], path: str, obj: Any) -> None:
    if isinstance(obj, Group):
        if posixpath.basename(path) == "vars":
            entry = entries.setdefault(posixpath.dirname(path), _Entry())
            label = obj.attrs.get("name")
            if isinstance(label, str) and entry.label is None:
                entry.label = label
        return
    parent = posixpath.dirname(path)
    if posixpath.basename(parent) == "vars":
        entries.setdefault(posixpath.dirname(parent), _Entry()).datasets.append((path, obj))
    else:
        stray.append((path, obj))


def _index_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _layer(cat: Catalog, store: str, entry: _Entry) -> Layer:
    label = entry.label if entry.label is not None else posixpath.basename(store)
    layer = Layer(name=store, label=label)
    seen: set[str] = set()
    for path, ds in sorted(entry.datasets, key=lambda item: _index_key(posixpath.basename(item[0]))):
        index = posixpath.basename(path)
        if index in seen:
            cat.warn("duplicate_var", f"{store}/vars/{index} is stored in more than one shard")
            continue
        seen.add(index)
        key = f"{store}/vars/{index}" if store else f"vars/{index}"
        layer.tensors.append(tensor_from_dataset(key, index, label, len(layer.tensors), ds))
    names = [t.name for t in layer.tensors]
    if names != [str(i) for i in range(len(names))]:
        cat.warn("var_indices", f"{store or '(root)'}/vars holds {', '.join(names)}: Keras expects 0, 1, 2, ...")
    return layer


def _read_flat(cat: Catalog, datasets: list[tuple[str, Dataset]]) -> None:
    """Any other HDF5 file: every dataset a tensor named by its path, grouped by parent."""
    cat.layout = FLAT
    if cat.format == "weights-h5":
        cat.format = "hdf5"
    by_parent: dict[str, Layer] = {}
    for path, ds in datasets:
        parent = posixpath.dirname(path)
        layer = by_parent.get(parent)
        if layer is None:
            layer = by_parent[parent] = Layer(name=parent or "/", label=parent or "/")
            cat.layers.append(layer)
        layer.tensors.append(tensor_from_dataset(path, path, layer.label, len(layer.tensors), ds))
    if not datasets:
        cat.note("no_datasets", "the file holds no datasets")


def _check_weight_map(cat: Catalog, entries: dict[str, _Entry], weight_map: dict[str, Any]) -> None:
    def vars_path(store: str) -> str:
        return f"{store}/vars" if store else "vars"

    listed = {key.strip("/") for key in weight_map}
    missing = sorted(listed - {vars_path(s) for s in entries})
    unlisted = sorted({vars_path(s) for s, e in entries.items() if e.datasets} - listed)
    if missing:
        cat.warn("shard_missing", f"{len(missing)} weight_map entries found in no shard: {few(missing)}")
    if unlisted:
        cat.warn(
            "shard_unlisted",
            f"{len(unlisted)} vars group(s) with weights not in weight_map (Keras will not find them): {few(unlisted)}",
        )
