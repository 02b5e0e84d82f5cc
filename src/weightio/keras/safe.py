"""Keras 3's safety rules for weight files (``saving_lib.safe_get_h5_group`` /
``safe_get_h5_dataset``), over weightio objects: no soft or external links, no empty path
parts, no external or virtual datasets, no "shape bombs". Same errors as Keras."""

from __future__ import annotations

from typing import Any

from ..file import Dataset, ExternalLink, Group, SoftLink

BOMB_FLOOR_BYTES = 1 << 32  # Keras: _H5_DATASET_BOMB_FLOOR_BYTES
MAX_EXPANSION = 1000  # Keras: _H5_DATASET_MAX_EXPANSION


def _refuse_links(parent: Group, name: str) -> None:
    link = parent.get(name, getlink=True)
    if isinstance(link, (SoftLink, ExternalLink)):
        raise ValueError(f"Not allowed: H5 file with {type(link).__name__}")


def safe_group(parent: Any, name: str) -> Any:
    """``safe_get_h5_group`` for weightio groups (an empty dict passes through, as in Keras)."""
    current = parent
    for part in name.split("/"):
        if not part:
            raise ValueError(f"Invalid path in H5 file: {name}")
        if not isinstance(current, Group):  # Keras's empty-dict case
            if part not in current:
                raise KeyError(name)
            current = current[part]
        else:
            try:
                kind, child = current._child(part)
            except KeyError:
                raise KeyError(name) from None
            if kind != "hard":
                raise ValueError(f"Not allowed: H5 file with {'SoftLink' if kind == 'soft' else 'ExternalLink'}")
            current = child
        if not isinstance(current, Group):
            raise ValueError(f"Invalid H5 file, expected Group but received {type(current)}")
    return current


def safe_dataset(group: Any, name: str) -> Dataset:
    """``safe_get_h5_dataset`` for weightio groups."""
    if "/" in name:
        group_name, name = name.rsplit("/", 1)
        group = safe_group(group, group_name)
    if name not in group:
        raise KeyError(name)
    _refuse_links(group, name)
    dataset = group[name]
    if not isinstance(dataset, Dataset):
        raise ValueError(f"Invalid H5 file, expected Dataset, received {type(dataset)}")
    if dataset.layout == "virtual":
        raise ValueError("Not allowed: H5 file with virtual Dataset")
    if dataset._info["external"]:
        raise ValueError(f"Not allowed: H5 file with external Dataset: {dataset._info['external']}")
    declared = (dataset.size or 0) * dataset.dtype.itemsize
    stored = dataset._info["storage_size"]
    if declared > BOMB_FLOOR_BYTES and declared > MAX_EXPANSION * stored:
        from keras.src.utils.summary_utils import readable_memory_size

        raise ValueError(
            f"Not allowed: H5 dataset '{name}' declares "
            f"{readable_memory_size(declared)} but only "
            f"{readable_memory_size(stored)} are stored on disk; "
            "refusing to load a potential decompression/shape bomb."
        )
    return dataset
