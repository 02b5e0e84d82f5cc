"""Every dataset of a weight file read in one parallel native pass, so that Keras's loaders
find arrays instead of opening datasets one by one."""

from __future__ import annotations

from typing import Any

from ..errors import FormatError, UnsupportedFeatureError
from ..file import Dataset, File, Group, _gc_paused
from .safe import BOMB_FLOOR_BYTES, MAX_EXPANSION, safe_dataset


class Prefetched:
    """Arrays of one file by absolute path; lookups that miss (soft links, second hard
    links, datasets the native reader leaves to h5py) go through Keras's safety rules."""

    def __init__(self, file: File, threads: int | None = None) -> None:
        self.file = file
        try:
            with _gc_paused():
                self.arrays: dict[str, Any] = file._core.load_all(file._addr, threads, BOMB_FLOOR_BYTES, MAX_EXPANSION)
        except UnsupportedFeatureError:
            self.arrays = {}  # read lazily, through the h5py fallback where needed
        except FormatError as exc:
            if "bomb" in str(exc):
                raise ValueError(f"Not allowed: {exc}") from None
            raise

    def dataset(self, group: Group, name: str) -> Any:
        """The array of ``group/name`` (Keras's ``safe_get_h5_dataset`` + read)."""
        path = f"{group.name.rstrip('/')}/{name}"
        array = self.arrays.get(path)
        if array is not None:
            return array
        ds = safe_dataset(group, name)
        return self._read(ds)

    @staticmethod
    def _read(ds: Dataset) -> Any:
        value = ds[()]
        if ds.dtype == "V2" and ds.attrs.get("dtype") == "bfloat16":
            import ml_dtypes

            return value.view(ml_dtypes.bfloat16)
        return value
