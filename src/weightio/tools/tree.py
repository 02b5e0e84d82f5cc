"""``weightio inspect --tree``: every object of an HDF5 file, like ``h5ls -r``, with attributes.
Works for any HDF5 file, the weights member of a .keras archive and each shard of a sharded
.weights.json."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import Dataset, Empty, Error, ExternalLink, File, Group, SoftLink, UnsupportedFeatureError
from ..keras.formats import _is_hdf5, open_sources
from .catalog import HDF5_FORMATS, detect
from .common import ToolError, human_bytes, message_about, shape_str

_MAX_ITEMS = 8
_MAX_CHARS = 120


def tree(path: str) -> list[dict[str, Any]]:
    """[{"file": name, "objects": [...]}] for each HDF5 file behind ``path``."""
    try:
        if os.path.isfile(path) and _is_hdf5(path):  # any HDF5 file: no need to know its layout
            with File(path) as f:
                return [{"file": f.filename, "objects": list(_objects(f))}]
        fmt = detect(path)
        if fmt not in HDF5_FORMATS:
            raise ToolError(f"{path}: --tree shows HDF5 files; this is a {fmt} file (try inspect without --tree)")
        sources = open_sources(path, HDF5_FORMATS[fmt])
        try:
            return [{"file": f.filename, "objects": list(_objects(f))} for f in sources.files.values()]
        finally:
            sources.close()
    except (Error, OSError, ValueError) as exc:
        raise ToolError(message_about(path, exc)) from None


def _objects(f: File) -> Iterator[dict[str, Any]]:
    """Depth first, members in name order (h5py's visit order), each object once: a second
    hard link to it is listed as such. An explicit stack: no recursion limit for deep files."""
    seen = {f._addr: "/"}
    stack: list[tuple[str, Iterator[str], Group]] = []
    yield _open_group(f, "", stack)
    while stack:
        prefix, names, group = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        path = f"{prefix}/{name}"
        try:
            link = _link(group, name, path)
            if link is not None:
                yield link
                continue
            obj = group[name]
        except Error as exc:
            yield {"path": path, "kind": "error", "error": str(exc)}
            continue
        if obj._addr in seen:
            yield {"path": path, "kind": "hard link", "target": seen[obj._addr]}
            continue
        seen[obj._addr] = path
        yield _open_group(obj, path, stack) if isinstance(obj, Group) else _describe(path, obj)


def _open_group(group: Group, path: str, stack: list[tuple[str, Iterator[str], Group]]) -> dict[str, Any]:
    """A group's entry; its members go on ``stack`` unless they cannot be listed."""
    entry = _describe(path or "/", group)
    if "error" not in entry:
        try:
            stack.append((path, iter(group.keys()), group))
        except Error as exc:
            entry["error"] = str(exc)
    return entry


def _link(group: Group, name: str, path: str) -> dict[str, Any] | None:
    link = group.get(name, getlink=True)
    if isinstance(link, SoftLink):
        return {"path": path, "kind": "soft link", "target": link.path}
    if isinstance(link, ExternalLink):
        return {"path": path, "kind": "external link", "target": f"{link.filename}/{link.path}"}
    return None


def _describe(path: str, obj: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "kind": "group" if isinstance(obj, Group) else "dataset"}
    if isinstance(obj, Dataset):
        info = obj._info
        entry.update(
            shape=None if info["space"] == "null" else list(info["shape"]),
            dtype=info["typestr"] or info["type"],
            layout=info["layout"],
            chunks=obj.chunks,
            filters=obj.filters,
            bytes=(obj.size or 0) * int(info["itemsize"]),
            stored_bytes=info["storage_size"],
            h5py_fallback=info["unsupported"],
        )
    try:
        entry["attrs"] = {name: _jsonable(value) for name, value in obj.attrs.items()}
    except UnsupportedFeatureError as exc:  # valid, but needs h5py to read
        entry["attrs_error"] = str(exc)
    except Error as exc:  # damaged
        entry["error"] = str(exc)
    return entry


def _jsonable(value: Any) -> Any:
    if isinstance(value, Empty):
        return {"empty": str(value.dtype)}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_jsonable(v) for v in value.ravel().tolist()]
        if value.dtype.names is not None:  # compound: one list per record
            return [[_jsonable(v) for v in record] for record in value.ravel().tolist()]
        if value.dtype.kind == "V":
            return {"dtype": value.dtype.str, "shape": list(value.shape), "hex": value.tobytes()[:64].hex()}
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind != "V" else value.tobytes().hex()
    return value


# -- text ------------------------------------------------------------------------------------


def to_text(path: str, files: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for entry in files:
        if entry["file"] != path:  # a .keras member or a shard
            lines.append(f"== {entry['file']}")
        width = min(max(len(o["path"]) for o in entry["objects"]) + 2, 60)
        for obj in entry["objects"]:
            lines.append(f"{obj['path']:<{width}} {_what(obj)}".rstrip())
            for name, value in obj.get("attrs", {}).items():
                lines.append(f"    @{name} = {_short(value)}")
            if "attrs_error" in obj:
                lines.append(f"    (attributes unreadable: {obj['attrs_error']})")
            if "error" in obj and obj["kind"] != "error":
                lines.append(f"    (unreadable: {obj['error']})")
    return "\n".join(lines)


def _what(obj: dict[str, Any]) -> str:
    kind = obj["kind"]
    if kind == "group":
        return "Group"
    if kind == "soft link":
        return f"Soft Link {{{obj['target']}}}"
    if kind == "external link":
        return f"External Link {{{obj['target']}}}"
    if kind == "hard link":
        return f"Hard Link to {obj['target']}"
    if kind == "error":
        return f"(unreadable: {obj['error']})"
    shape = "{NULL}" if obj["shape"] is None else "{" + (", ".join(map(str, obj["shape"])) or "SCALAR") + "}"
    parts = [f"Dataset {shape} {obj['dtype']}", obj["layout"]]
    if obj["chunks"]:
        parts.append(f"chunks {shape_str(tuple(obj['chunks']))}")
    if obj["filters"]:
        parts.append("+".join(obj["filters"]))
    parts.append(human_bytes(obj["bytes"]))
    if obj["stored_bytes"] != obj["bytes"]:
        parts.append(f"stored {human_bytes(obj['stored_bytes'])}")
    if obj["h5py_fallback"]:
        parts.append(f"h5py fallback: {obj['h5py_fallback']}")
    return ", ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > _MAX_ITEMS:
        text = repr(value[:_MAX_ITEMS])[:-1] + f", ... ({len(value)} items)]"
    else:
        text = repr(value)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 20] + f"... ({len(text)} chars)"
