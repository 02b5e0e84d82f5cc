"""``weightio.keras.load_model``: build the model from its stored config the way Keras does
(never by unpickling or running code from the file), with the weights (and, when compiling,
the optimizer state) read by weightio."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from typing import Any

from .assign import patched
from .formats import Format, open_sources, sniff
from .prefetch import Prefetched
from .safe import safe_group


def load_model(filepath: Any, custom_objects: Any = None, compile: bool = True, safe_mode: bool = True) -> Any:
    path = os.fspath(filepath)
    fmt = sniff(path)
    if fmt is Format.KERAS_ZIP:
        return _load_keras_zip(path, custom_objects, compile, safe_mode)
    if fmt is Format.LEGACY_H5:
        return _load_legacy_h5(path, custom_objects, compile, safe_mode)
    import keras

    return keras.saving.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def _load_keras_zip(path: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    """Keras's ``_load_model_from_fileobj`` with weightio's weights store."""
    from keras.src.saving import saving_lib

    from .v3 import WeightioStore
    from .walk import faster_traversal

    with zipfile.ZipFile(path, "r") as archive:
        names = archive.namelist()
        if "model.weights.h5" not in names:  # .npz weights: Keras's own loader
            import keras

            return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
        config_json = saving_lib._safe_zip_read(archive, "config.json")
        model = saving_lib._model_from_config(config_json, custom_objects, compile, safe_mode)
        assets = saving_lib.DiskIOStore("assets", archive=archive, mode="r") if len(names) > 3 else None
        with open_sources(path, Format.KERAS_ZIP) as sources:
            store = WeightioStore(sources)
            failed: set[int] = set()
            errors: dict[int, Any] = {}
            try:
                with faster_traversal():
                    saving_lib._load_state(
                        model,
                        weights_store=store,
                        assets_store=assets,
                        inner_path="",
                        visited_saveables=set(),
                        failed_saveables=failed,
                        error_msgs=errors,
                    )
            finally:
                if assets is not None:
                    assets.close()
        if failed:
            saving_lib._raise_loading_failure(errors)
    return model


class _H5pyForThisThread:
    """Stands in for the ``h5py`` module inside Keras's legacy loader. On the loading thread
    ``File`` is a class whose "opening" returns the file weightio already opened; other
    threads (and every other attribute) get the real h5py, so Keras code running elsewhere
    meanwhile is unaffected."""

    def __init__(self, file: Any, real: Any) -> None:
        opened = file

        class OpenedFile:
            def __new__(cls, *args: Any, **kwargs: Any) -> Any:
                return opened

        self._opened = OpenedFile
        self._real = real
        self._owner = threading.get_ident()

    @property
    def File(self) -> Any:  # noqa: N802 - h5py's name
        return self._opened if threading.get_ident() == self._owner else self._real.File

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _load_legacy_h5(path: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    """Keras's ``load_model_from_hdf5`` over weightio (weights and optimizer state)."""
    from keras.src.legacy.saving import legacy_h5_format

    with open_sources(path, Format.LEGACY_H5) as sources:
        (file,) = sources.files.values()
        if "model_config" not in file.attrs:
            raise ValueError(f"No model config found in the file at {path}.")
        json.loads(file.attrs["model_config"] if isinstance(file.attrs["model_config"], str) else file.attrs["model_config"].decode())
        prefetched = Prefetched(file)
        with patched(
            legacy_h5_format,
            h5py=_H5pyForThisThread(file, legacy_h5_format.h5py),
            safe_get_h5_group=safe_group,
            safe_get_h5_dataset=prefetched.dataset,
        ):
            return legacy_h5_format.load_model_from_hdf5(path, custom_objects=custom_objects, compile=compile)
