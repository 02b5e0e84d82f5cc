"""Writes the TensorFlow checkpoints of ``test_checkpoint.py`` with tf-keras, in a process
of its own (once per test session: importing TensorFlow is slow, and the Keras 3 backend
processes need not import tf-keras)::

    python tests/keras/checkpoint_fixtures.py OUT_DIR

For every case of ``checkpoint_models.CASES``: the model with deterministic random values,
trained one step when the case has an optimizer, saved with ``model.save_weights(OUT_DIR/
<case>/ckpt)``; then a fresh model with other values restored by tf-keras's own
``load_weights``, whose weights (``leaf_weights``) and output on ``inputs_for(case)`` are the
oracle (``OUT_DIR/<case>/reference.npz``). Also ``OUT_DIR/rooted``: the sequential model
saved by ``tf.train.Checkpoint(model=model).save`` (root object not the model, a
``save_counter``); ``OUT_DIR/<case>/saved_model`` for the cases of ``SAVED_MODELS``: the
trained model saved as a SavedModel directory. Prints a JSON manifest on its last line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

import checkpoint_models as cm  # noqa: E402


# Cases also saved as a SavedModel directory (tf-keras ``model.save("dir")``).
SAVED_MODELS = ("sequential", "nested")


def optimizer(k, kind):
    if kind == "legacy_adam":
        return k.optimizers.legacy.Adam(1e-2)
    if kind == "legacy_sgd":
        return k.optimizers.legacy.SGD(1e-2, momentum=0.9)
    return k.optimizers.Adam(1e-2)


def main(out: Path) -> dict:
    import tensorflow as tf
    import tf_keras as k

    manifest: dict = {}
    for case, training in cm.CASES.items():
        model = cm.build(k, case)
        cm.randomize(model, seed=1)
        if training:
            model.compile(optimizer=optimizer(k, training), loss="mse")
            model.fit(cm.inputs_for(case), cm.targets_for(case), epochs=1, batch_size=2, verbose=0)
        prefix = out / case / "ckpt"
        model.save_weights(str(prefix))
        reference = cm.build(k, case)
        cm.randomize(reference, seed=2)
        reference.load_weights(str(prefix)).expect_partial()
        arrays = {f"{name}|{i}": v for name, values in cm.leaf_weights(reference).items() for i, v in enumerate(values)}
        arrays["__output__"] = np.asarray(reference(cm.inputs_for(case)))
        np.savez(out / case / "reference.npz", **arrays)
        manifest[case] = str(prefix)
        if case in SAVED_MODELS:
            saved_model = out / case / "saved_model"  # its variables/variables: the same values
            model.save(str(saved_model), save_format="tf")
            manifest[f"{case}:saved_model"] = str(saved_model)
        if case == "sequential":
            manifest["rooted"] = tf.train.Checkpoint(model=model).save(str(out / "rooted" / "ckpt"))
    return manifest


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
