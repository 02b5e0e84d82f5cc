"""``weightio diff``: which tensors two weight files share, and how they differ.

Tensors are matched in tiers, each over what the previous ones left:
1. ``key``: the same key (same layout: ``d1/d1/kernel:0``, ``layers/dense/vars/0``);
2. ``name``: the same key without ``:0``-style suffixes (tf-keras vs Keras 3 legacy names);
3. ``layer``: the same layer name (legacy layer / Keras 3 ``vars`` attribute ``name``) and
   position in it, which is how a legacy file and a Keras >= 3.6 file of one model line up;
4. ``path``: a legacy layer's Keras 3 store path (``keras_paths``, when its class is known)
   and position;
5. ``order``: what is left, paired in model order, when the layouts differ and both files
   record their order (``--match order`` pairs everything by order, always).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import FLAT, KERAS3, LEGACY, Catalog, Tensor
from .common import ToolError, shape_str
from .keras_paths import legacy_to_keras3
from .progress import progress

TIERS = ("key", "name", "layer", "path", "order")
_CHUNK = 1 << 22  # elements compared at a time (bounded float64 temporaries)
_SUFFIX = re.compile(r":\d+(?=/|$)")

KeyFn = Callable[[Tensor], Hashable]


@dataclass
class Pair:
    a: Tensor
    b: Tensor
    matched_by: str
    status: str = "equal"  # "equal", "values", "dtype", "shape"
    max_abs_diff: float | None = None


@dataclass
class Result:
    a: Catalog
    b: Catalog
    atol: float
    pairs: list[Pair]
    only_a: list[Tensor]
    only_b: list[Tensor]
    notes: list[str] = field(default_factory=list)

    @property
    def differing(self) -> list[Pair]:
        return [p for p in self.pairs if p.status != "equal"]

    @property
    def identical(self) -> bool:
        return not (self.differing or self.only_a or self.only_b)

    def matched(self) -> dict[str, int]:
        """How many pairs each tier matched."""
        return {tier: sum(1 for p in self.pairs if p.matched_by == tier) for tier in TIERS}


def diff(a: Catalog, b: Catalog, atol: float = 0.0, match: str = "auto") -> Result:
    tiers = [] if match == "order" else _tiers(a, b, structural=match == "auto")
    pairs, only_a, only_b = match_tensors(a.tensors(), b.tensors(), tiers)
    result = Result(a, b, atol, pairs, only_a, only_b)
    if match == "order" or (match == "auto" and a.layout != b.layout and only_a and only_b):
        if match == "order" or (_ordered(a) and _ordered(b)):
            _pair_by_order(result)
        else:
            result.notes.append("tensors left unmatched are not paired by order: a file does not record its "
                                "layers' model order (--match order pairs them anyway)")  # fmt: skip
    order = {id(t): i for i, t in enumerate(a.tensors())}
    result.pairs.sort(key=lambda p: order[id(p.a)])
    total = sum(p.a.nbytes + p.b.nbytes for p in result.pairs if p.a.shape == p.b.shape)
    with progress(total, "comparing") as bar:
        for pair in result.pairs:
            _compare(pair, atol)
            bar.update(pair.a.nbytes + pair.b.nbytes)
    return result


# -- matching ---------------------------------------------------------------------------------


def _tiers(a: Catalog, b: Catalog, structural: bool) -> list[tuple[str, KeyFn, KeyFn]]:
    def key(t: Tensor) -> Hashable:
        return t.key

    def name(t: Tensor) -> Hashable:
        return _SUFFIX.sub("", t.key)

    tiers: list[tuple[str, KeyFn, KeyFn]] = [("key", key, key), ("name", name, name)]
    if not structural or FLAT in (a.layout, b.layout):  # flat files have names, no layers to line up
        return tiers

    def layer(t: Tensor) -> Hashable:
        return (t.layer, t.index)

    tiers.append(("layer", layer, layer))
    paths_a, paths_b = _keras3_keys(a), _keras3_keys(b)
    if a.layout != b.layout and paths_a is not None and paths_b is not None:
        tiers.append(("path", lambda t: paths_a.get(id(t)), lambda t: paths_b.get(id(t))))
    return tiers


def _keras3_keys(cat: Catalog) -> dict[int, str] | None:
    """Each tensor's Keras 3 key, where the layout mapping can tell it."""
    if cat.layout == KERAS3:
        return {id(t): t.key for t in cat.tensors()}
    if cat.layout != LEGACY:
        return None
    try:
        entries = legacy_to_keras3(cat)
    except ToolError:
        return None
    return {id(t): f"{store}/vars/{i}" if store else f"vars/{i}" for store, _, ts in entries for i, t in enumerate(ts)}


def _ordered(cat: Catalog) -> bool:
    return cat.layout != KERAS3 or cat.meta.get("order") == "model"


def match_tensors(
    a: list[Tensor], b: list[Tensor], tiers: list[tuple[str, KeyFn, KeyFn]]
) -> tuple[list[Pair], list[Tensor], list[Tensor]]:
    pairs: list[Pair] = []
    left_a, left_b = list(a), list(b)
    for tier, key_a, key_b in tiers:
        index: dict[Hashable, Tensor] = {}
        for t in left_b:
            k = key_b(t)
            if k is not None:
                index.setdefault(k, t)
        unmatched = []
        for t in left_a:
            k = key_a(t)
            other = None if k is None else index.pop(k, None)
            if other is None:
                unmatched.append(t)
            else:
                pairs.append(Pair(t, other, tier))
        taken = {id(p.b) for p in pairs}
        left_a, left_b = unmatched, [t for t in left_b if id(t) not in taken]
    return pairs, left_a, left_b


def _pair_by_order(result: Result) -> None:
    n = min(len(result.only_a), len(result.only_b))
    result.pairs += [Pair(x, y, "order") for x, y in zip(result.only_a[:n], result.only_b[:n])]
    result.only_a, result.only_b = result.only_a[n:], result.only_b[n:]


# -- comparing -------------------------------------------------------------------------------


def _compare(pair: Pair, atol: float) -> None:
    ta, tb = pair.a, pair.b
    if ta.shape != tb.shape:
        pair.status = "shape"
        return
    if ta.shape is None:  # both without data
        pair.status = "equal" if ta.dtype == tb.dtype else "dtype"
        return
    x, y = ta.read(), tb.read()
    fx, fy = _numeric(x, ta.dtype), _numeric(y, tb.dtype)
    if fx is None or fy is None:
        same = ta.dtype == tb.dtype and x.tobytes() == y.tobytes()
        pair.status = "equal" if same else ("dtype" if ta.dtype != tb.dtype else "values")
        return
    pair.max_abs_diff = max_abs_diff(fx, fy)
    if ta.dtype != tb.dtype:
        pair.status = "dtype"
    elif not pair.max_abs_diff <= atol:
        pair.status = "values"


def _numeric(arr: np.ndarray, dtype: str) -> np.ndarray | None:
    """The array as numbers numpy can subtract, or None (strings, compound, opaque data)."""
    if dtype == "bfloat16" and arr.dtype.kind == "V":  # raw bytes: no ml_dtypes here
        bits = arr.view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32)
    if arr.dtype.kind in "biufc":
        return arr
    if dtype == "bfloat16" or arr.dtype.name.startswith("float8"):  # ml_dtypes types
        return arr.astype(np.float32)
    return None


def max_abs_diff(x: np.ndarray, y: np.ndarray) -> float:
    """max |x - y| in float64 (complex128), NaN matching NaN and equal infinities counting as 0,
    a NaN against a number as inf."""
    wide = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(y) else np.float64
    fx, fy = x.reshape(-1), y.reshape(-1)
    worst = 0.0
    for start in range(0, fx.size, _CHUNK):
        cx = fx[start : start + _CHUNK].astype(wide)
        cy = fy[start : start + _CHUNK].astype(wide)
        with np.errstate(all="ignore"):
            d = np.abs(cx - cy)
            same = (cx == cy) | (np.isnan(cx) & np.isnan(cy))
        d[same] = 0.0
        d[np.isnan(d)] = np.inf
        worst = max(worst, float(d.max()))
    return worst


# -- reporting ------------------------------------------------------------------------------


def to_json(result: Result) -> dict[str, Any]:
    def side(cat: Catalog) -> dict[str, Any]:
        return {"path": cat.path, "format": cat.format, "layout": cat.layout, "tensors": len(cat.tensors())}

    def tensor(t: Tensor) -> dict[str, Any]:
        return {"key": t.key, "shape": None if t.shape is None else list(t.shape), "dtype": t.dtype}

    return {
        "a": side(result.a),
        "b": side(result.b),
        "atol": result.atol,
        "identical": result.identical,
        "matched": result.matched(),
        "pairs": [
            {
                "a": tensor(p.a),
                "b": tensor(p.b),
                "matched_by": p.matched_by,
                "status": p.status,
                "max_abs_diff": _finite(p.max_abs_diff),
            }
            for p in result.pairs
        ],
        "only_in_a": [tensor(t) for t in result.only_a],
        "only_in_b": [tensor(t) for t in result.only_b],
    }


def _finite(value: float | None) -> float | str | None:
    return value if value is None or np.isfinite(value) else str(value)  # JSON has no inf


def to_text(result: Result) -> str:
    a, b = result.a, result.b
    lines = [
        f"A: {a.path} ({a.description}, {len(a.tensors())} tensors)",
        f"B: {b.path} ({b.description}, {len(b.tensors())} tensors)",
    ]
    how = ", ".join(f"{n} by {tier}" for tier, n in result.matched().items() if n)
    lines.append(f"matched {len(result.pairs)} tensors" + (f" ({how})" if how else ""))
    for p in result.differing:
        lines.append(f"  {p.status:<6} {_names(p)}: {_change(p)}")
    lines += [f"  only A {t.key}: {shape_str(t.shape)} {t.dtype}" for t in result.only_a]
    lines += [f"  only B {t.key}: {shape_str(t.shape)} {t.dtype}" for t in result.only_b]
    if result.identical:
        lines.append(f"identical: {len(result.pairs)} tensors equal within atol={result.atol:g}")
    else:
        lines.append(
            f"different: {len(result.differing)} of {len(result.pairs)} matched tensors differ (atol={result.atol:g}), "
            f"{len(result.only_a)} only in A, {len(result.only_b)} only in B"
        )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _names(p: Pair) -> str:
    return p.a.key if p.a.key == p.b.key else f"{p.a.key} <-> {p.b.key}"


def _change(p: Pair) -> str:
    a, b = p.a, p.b
    if p.status == "shape":
        return f"{shape_str(a.shape)} -> {shape_str(b.shape)} ({a.dtype}, {b.dtype})"
    text = f"{a.dtype} -> {b.dtype}" if a.dtype != b.dtype else f"{a.dtype} {shape_str(a.shape)}"
    if p.max_abs_diff is not None:
        text += f", max |a-b| = {p.max_abs_diff:.6g}"
    return text
