"""Small things every command needs: the user-facing error, optional imports, number formats."""

from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import Error


class ToolError(Exception):
    """A problem with the user's input or environment: reported as one line, exit status 2."""


def require(module: str, purpose: str, install: str | None = None) -> Any:
    """Imports an optional dependency, or raises a ToolError saying what needs it and how to
    install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.partition(".")[0]
        raise ToolError(f"{purpose} needs the {package} package (pip install {install or package})") from None


def message_about(path: str, exc: BaseException) -> str:
    """An exception's message, naming ``path`` if it does not already (weightio's errors do)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and not isinstance(exc, Error):
        message = f"missing {message}"
    return message if path in message else f"{path}: {message}"


def optional(module: str) -> Any:
    """The module if it can be imported, else None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def human_bytes(n: int) -> str:
    """Decimal units, like the benchmark's tables: 512 B, 1.2 kB, 102.5 MB."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000.0
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000.0:.1f} TB"


def human_count(n: int) -> str:
    return f"{n:,}"


def natural_key(text: str) -> list[Any]:
    """Sorts ``dense_2`` before ``dense_10`` (strings and numbers alternate, so lists compare)."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]


def few(names: list[str], n: int = 5) -> str:
    """The first ``n`` names, and how many more."""
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def shape_str(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "null"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def strings(value: Any) -> list[str]:
    """An attribute holding names (Keras's ``layer_names``/``weight_names``) as a list of str,
    whatever h5py-era encoding it has: variable-length str, fixed-length bytes, a scalar, or the
    empty float64 array Keras writes for an empty list."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    out = []
    for item in getattr(value, "flat", value):
        if isinstance(item, bytes):
            out.append(item.decode("utf-8", "replace"))
        elif isinstance(item, str):
            out.append(item)
        else:  # a number: only the empty float64 list is legitimate, and it has no items
            out.append(str(item))
    return out


def list_attr(attrs: Any, name: str) -> list[str] | None:
    """Keras's ``load_attributes_from_hdf5_group``: ``name``, else the chunks ``name0``,
    ``name1``, ... up to the first missing index; None when neither exists."""
    if name in attrs:
        return strings(attrs[name])
    if f"{name}0" not in attrs:
        return None
    out: list[str] = []
    i = 0
    while f"{name}{i}" in attrs:
        out += strings(attrs[f"{name}{i}"])
        i += 1
    return out
