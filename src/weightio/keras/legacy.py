"""Legacy HDF5 weights (Keras 2 / tf-keras ``save_weights("x.h5")`` and full-model ``.h5``)
into Keras 3 models, through Keras's own ``legacy_h5_format`` loaders over weightio."""

from __future__ import annotations

from typing import Any

from keras.src.legacy.saving import legacy_h5_format

from ..file import File
from .assign import patched, recording
from .prefetch import Deferred
from .safe import safe_group


def load(model: Any, file: File, by_name: bool, skip_mismatch: bool, threads: int | None) -> int:
    """Keras 3's topological or by-name legacy loading, all-or-nothing. Returns the number
    of variables assigned."""
    group: Any = file
    if "layer_names" not in file.attrs and "model_weights" in file:
        group = safe_group(file, "model_weights")
    # Keras's legacy loaders only look at a weight's shape and assign it: the bytes are read
    # at the end, in bulk, straight to their destination (see prefetch.Deferred).
    deferred = Deferred(file, threads)

    def load_subset(layer_group: Any) -> list[Any]:
        names = legacy_h5_format.load_attributes_from_hdf5_group(layer_group, "weight_names")
        return [deferred.dataset(layer_group, name) for name in names]

    loader = (
        legacy_h5_format.load_weights_from_hdf5_group_by_name
        if by_name
        else legacy_h5_format.load_weights_from_hdf5_group
    )
    with patched(
        legacy_h5_format,
        safe_get_h5_group=safe_group,
        load_subset_weights_from_hdf5_group=load_subset,
    ), recording() as recorder:
        loader(group, model, skip_mismatch)
    return recorder.apply(model)
