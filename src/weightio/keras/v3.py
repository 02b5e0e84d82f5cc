"""Keras 3's native weights (``.weights.h5``, ``.keras``, sharded ``.weights.json``) through
Keras's own traversal (``saving_lib._load_state``) over a store backed by weightio."""

from __future__ import annotations

from typing import Any

from keras.src.saving import saving_lib

from ..file import Group
from .assign import recording
from .formats import WeightSources
from .prefetch import Prefetched
from .safe import safe_group


class WeightioStore(saving_lib.H5IOStore):
    """What ``H5IOStore``/``ShardedH5IOStore`` give ``_load_state`` in read mode: ``get(path)``
    selects the ``<path>/vars`` group(s); the store then acts as a dict of their arrays."""

    def __init__(self, sources: WeightSources, threads: int | None = None) -> None:  # noqa: D107
        # H5IOStore.__init__ opens an h5py file: not called on purpose.
        self.mode = "r"
        self.archive = None
        self.io_file = None
        self.sources = sources
        self.prefetched = {name: Prefetched(f, threads) for name, f in sources.files.items()}
        self._entries: list[tuple[Prefetched, Group]] = []

    def __bool__(self) -> bool:
        return True

    # -- selecting an entry --------------------------------------------------------------
    @staticmethod
    def _vars_group(root: Group, path: str) -> Group | None:
        """H5IOStore.get's lookup in one file, including the tf-keras 2.13 fallback."""
        if not path:
            return safe_group(root, "vars") if "vars" in root else None
        if path in root:
            group = safe_group(root, path)
            if "vars" in group:
                return safe_group(group, "vars")
        if "_layer_checkpoint_dependencies" in root:
            path = path.replace("layers", "_layer_checkpoint_dependencies")
            if path in root:
                group = safe_group(root, path)
                if "vars" in group:
                    return safe_group(group, "vars")
        return None

    def get(self, path: str) -> WeightioStore:
        self._entries = []
        weight_map = self.sources.weight_map
        if weight_map is None:
            names = list(self.prefetched)
        else:
            parsed = path or "/vars"
            listed = weight_map.get(parsed) or weight_map.get(f"/{parsed}/vars")
            names = [] if listed is None else (listed if isinstance(listed, list) else [listed])
        for name in names:
            pre = self.prefetched[name]
            group = self._vars_group(pre.file, path)
            if group is not None:
                self._entries.append((pre, group))
        return self

    def has_path(self, path: str) -> bool:
        weight_map = self.sources.weight_map
        if weight_map is None:
            return any(path in pre.file for pre in self.prefetched.values())
        leading = f"/{path}"
        return any(k == leading or k.startswith(leading + "/") for k in weight_map)

    def close(self) -> None:
        self.sources.close()

    # -- the selected entry as a dict ----------------------------------------------------
    def __len__(self) -> int:
        return sum(len(group) for _, group in self._entries)

    def keys(self) -> list[str]:
        return [key for _, group in self._entries for key in group.keys()]

    def __contains__(self, key: object) -> bool:
        return any(key in group for _, group in self._entries)

    def __getitem__(self, key: str) -> Any:
        for pre, group in self._entries:
            if key in group:
                return pre.dataset(group, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        raise ValueError("Setting a value is only allowed in write mode.")


def load(model: Any, sources: WeightSources, skip_mismatch: bool, objects_to_skip: Any, threads: int | None) -> int:
    """``saving_lib.load_weights_only`` with weightio's store and all-or-nothing assignment.
    Returns the number of variables assigned."""
    if not model.built:
        raise ValueError(
            "You are loading weights into a model that has not yet been built. "
            "Try building the model first by calling it on some data or "
            "by using `build()`."
        )
    store = WeightioStore(sources, threads)
    failed: set[int] = set()
    visited = {id(o) for o in objects_to_skip} if objects_to_skip is not None else set()
    errors: dict[int, Any] = {}
    with recording() as recorder:
        saving_lib._load_state(
            model,
            weights_store=store,
            assets_store=None,
            inner_path="",
            skip_mismatch=skip_mismatch,
            visited_saveables=visited,
            failed_saveables=failed,
            error_msgs=errors,
        )
        if failed:
            saving_lib._raise_loading_failure(errors, warn_only=skip_mismatch)
    return recorder.apply(model)
