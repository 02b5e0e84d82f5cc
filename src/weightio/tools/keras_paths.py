"""Legacy layer names <-> Keras 3 store paths, for flat Sequential/Functional models only.

A legacy file names each layer (``d1``, ``dense_3``); a Keras 3 file names each layer's store
path after its class and its rank among the model's layers of that class (``layers/dense``,
``layers/dense_1``, ...), never after ``layer.name``. The mapping therefore needs each layer's
class, and holds only when:

- the model is a flat Sequential or Functional model: legacy ``layer_names`` order is
  ``model.layers`` order, and every layer keeps all its weights in its own variables, in the
  same order in both formats (the classes in ``FLAT_CLASSES``; LSTM, attention, wrappers and
  nested models keep weights in sub-objects, which a legacy file cannot place);
- each layer's class is known: from the ``model_config`` of a full-model file, or, for a
  weights-only file, from an automatic name (``dense``, ``conv2d_4``, ``input_1``: class name
  in snake case plus an optional ``_<n>``; a layer named ``d1`` cannot be placed).

Anything else is refused with the reason (``ToolError``).
"""

from __future__ import annotations

import re
from typing import Any

from .catalog import Catalog, Layer, Tensor
from .common import ToolError, few
from .legacy import TOP_LEVEL

# Keras 3 store-path names (snake case of the class) of layers whose weights are all their own
# variables, with the names Keras gives them (used for legacy weight names).
FLAT_CLASSES: dict[str, tuple[str, ...]] = {
    "dense": ("kernel", "bias"),
    "einsum_dense": ("kernel", "bias"),
    "conv1d": ("kernel", "bias"),
    "conv2d": ("kernel", "bias"),
    "conv3d": ("kernel", "bias"),
    "conv1d_transpose": ("kernel", "bias"),
    "conv2d_transpose": ("kernel", "bias"),
    "conv3d_transpose": ("kernel", "bias"),
    "depthwise_conv1d": ("kernel", "bias"),
    "depthwise_conv2d": ("kernel", "bias"),
    "separable_conv1d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "layer_normalization": ("gamma", "beta"),
    "group_normalization": ("gamma", "beta"),
    "embedding": ("embeddings",),
    "p_re_lu": ("alpha",),
}
# A class's snake-case name and an optional rank: automatic layer names, Keras 3 store paths.
_AUTO_NAME = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)(?:_\d+)?$")
_STORE_PATH = re.compile(r"^layers/(?P<base>[a-z][a-z0-9_]*?)(?:_\d+)?$")


def snake_case(class_name: str) -> str:
    """Keras's ``naming.to_snake_case`` (the name of a class's store path)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _refuse(cat: Catalog, target: str, why: str) -> ToolError:
    return ToolError(f"cannot convert {cat.path} to the {target} layout: {why} (see weightio convert --help)")


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's ``saving_lib._get_unique_name``: ``dense``, ``dense_1``, ``dense_2``, ..."""
    rank = used.get(name, -1) + 1
    used[name] = rank
    return name if rank == 0 else f"{name}_{rank}"


def store_paths(config: Any) -> list[str]:
    """The store paths of a Functional or Sequential model's layers in ``model.layers`` order,
    from its config (a .keras archive's config.json); [] when the config does not list them."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not all(
        isinstance(e, dict) and isinstance(e.get("class_name"), str) for e in layers
    ):
        return []
    if config.get("class_name") == "Sequential":  # Sequential.layers leaves out its InputLayer
        layers = [e for e in layers if e["class_name"] != "InputLayer"]
    used: dict[str, int] = {}
    return [f"layers/{_unique(snake_case(e['class_name']), used)}" for e in layers]


# -- legacy -> Keras 3 ---------------------------------------------------------------------


def _class_of(layer: Layer) -> str | None:
    """The snake-case class of a legacy layer: from model_config, else from an automatic name."""
    if layer.class_name:
        return snake_case(layer.class_name)
    match = _AUTO_NAME.match(layer.name)
    if match is None:
        return None
    base = match["base"]
    if base in ("input", "input_layer"):  # tf-keras "input_1", Keras 3 "input_layer_2"
        return "input_layer"
    return base if base in FLAT_CLASSES else None


def legacy_to_keras3(cat: Catalog) -> list[tuple[str, str | None, list[Tensor]]]:
    """(store path, vars name attribute, tensors) in Keras's write order, for a legacy catalog."""
    out: list[tuple[str, str | None, list[Tensor]]] = [("", cat.meta.get("model_name"), [])]
    used: dict[str, int] = {}
    for layer in cat.layers:
        if layer.name == TOP_LEVEL:
            out[0][2].extend(layer.tensors)
            continue
        cls = _class_of(layer)
        if cls is None:
            if not layer.tensors:
                continue  # an unknown weightless layer only names an empty group: nothing lost
            raise _refuse(
                cat,
                "Keras 3",
                f"layer {layer.name!r} has weights but its Keras class is unknown (a "
                "weights-only legacy file stores layer names, not classes: convert a full-model .h5, or "
                "name layers automatically)",
            )
        if layer.tensors and cls not in FLAT_CLASSES:
            raise _refuse(
                cat,
                "Keras 3",
                f"layer {layer.name!r} is a {layer.class_name}, which keeps weights in sub-objects in Keras 3",
            )
        out.append((f"layers/{_unique(cls, used)}", layer.name, layer.tensors))
    return out


# -- Keras 3 -> legacy ---------------------------------------------------------------------


def keras3_to_legacy(cat: Catalog) -> tuple[list[tuple[str, list[tuple[str, Tensor]]]], list[str]]:
    """([(layer name, [(weight name, tensor)])], skipped store paths) for a Keras 3 catalog.
    Optimizer variables are skipped (a legacy weights file holds none)."""
    layers: list[tuple[str, list[tuple[str, Tensor]]]] = []
    skipped: list[str] = []
    top: list[tuple[str, Tensor]] = []
    classes: set[str] = set()
    for layer in cat.layers:
        if not layer.name:
            top = [(f"{TOP_LEVEL}/{i}", t) for i, t in enumerate(layer.tensors)]
            continue
        if layer.name == "optimizer" or layer.name.startswith("optimizer/"):
            if layer.tensors:
                skipped.append(layer.name)
            continue
        match = _STORE_PATH.match(layer.name)
        if match is None:
            if layer.tensors:
                raise _refuse(cat, "legacy", f"{layer.name}/vars is not a top-level layer of a flat model")
            continue
        base = match["base"]
        if layer.tensors and base not in FLAT_CLASSES:
            raise _refuse(cat, "legacy", f"{layer.name} is a {base} layer, whose weights live in sub-objects")
        if layer.tensors:
            classes.add(base)
        name = layer.label or layer.name.rsplit("/", 1)[-1]
        layers.append(
            (name, [(f"{name}/{w}", t) for w, t in zip(_weight_names(base, len(layer.tensors)), layer.tensors)])
        )
    if cat.meta.get("order") != "model" and len(classes) > 1:
        # By name, dense_1 follows dense but not conv2d_3: only one class keeps model order.
        raise _refuse(
            cat,
            "legacy",
            "it does not record its layers' model order (HDF5 lists groups by name), which a legacy file needs "
            f"when layers of several classes have weights ({', '.join(sorted(classes))}); convert the model's "
            ".keras archive or sharded .weights.json instead",
        )
    names = [name for name, _ in layers]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise _refuse(cat, "legacy", f"layer names used twice: {few(doubled)}")
    if top:
        layers.append((TOP_LEVEL, top))
    return layers, skipped


def _weight_names(base: str, count: int) -> list[str]:
    known = FLAT_CLASSES.get(base, ())
    if count == len(known):
        return list(known)
    if count == 1 and known[:1] in (("kernel",), ("embeddings",)):  # use_bias=False
        return [known[0]]
    return [str(i) for i in range(count)]
