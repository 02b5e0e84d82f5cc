"""Keras benchmark: ``model.load_weights`` by Keras itself vs ``weightio.keras.load_weights``.

Keras picks its backend when first imported, so each backend runs in its own process:
``python -m weightio.bench_keras --backend numpy --json`` prints one backend's results, and
``run(backends)`` (used by ``weightio bench``) starts one such process per backend.

Models (no downloads): ResNet50 from ``keras.applications`` (``weights=None``) and a model of
2,500 BatchNormalization layers (10,000 variables). Files: Keras 3 ``.weights.h5`` and the
legacy HDF5 layout, both written by Keras. Times are medians of warm runs; the ratio is
Keras's median over weightio's, measured in the same process on the same file. The
"backend" ``tf-keras`` runs the same models in tf-keras (Keras 2) against its own loader.

TensorFlow checkpoints (when tf-keras is installed): tf-keras's ResNet50 saved with
``save_weights("ckpt")``; tf-keras's own ``model.load_weights("ckpt")`` is timed in a tf-keras
process (which also times weightio restoring the same tf-keras model), and weightio restoring
``keras.applications.ResNet50`` in each Keras 3 backend process; every ratio is over tf-keras's
own time.

The TensorFlow-based rows (``tensorflow``, ``tf-keras``) use weightio's TensorFlow ops
(``weightio.keras.tf_ops``): ``run`` builds them first (``weightio build-tf-ops``, once per
TensorFlow version, cached) and says so; ``--no-tf-ops`` times those rows without them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

DEFAULT_BACKENDS = ("numpy", "tensorflow", "jax", "torch", "tf-keras")


def _bn_model(keras: Any, n: int = 2500) -> Any:
    inputs = keras.Input((64,))
    x = inputs
    for _ in range(n):
        x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, x)


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_backend(workdir: str, repeat: int, backend: str | None = None) -> list[dict[str, Any]]:
    """Times both loaders on both models and formats with the current Keras 3 backend, or
    with tf-keras (Keras 2) when ``backend`` is ``"tf-keras"``."""
    import h5py

    import weightio.keras as wk

    if backend == "tf-keras":
        import tf_keras as keras

        name_of_backend = "tf-keras"

        def save_legacy(model: Any, path: str) -> None:
            model.save_weights(path)

    else:
        import keras
        from keras.src.legacy.saving import legacy_h5_format

        name_of_backend = keras.backend.backend()

        def save_legacy(model: Any, path: str) -> None:
            with h5py.File(path, "w") as f:
                legacy_h5_format.save_weights_to_hdf5_group(f, model)

    results = []
    for name, build, reps in (("resnet50", lambda: keras.applications.ResNet50(weights=None), repeat),
                              ("bn2500", lambda: _bn_model(keras), max(5, repeat // 2))):
        model = build()
        files = {
            ".weights.h5": os.path.join(workdir, f"{name}_{name_of_backend}.weights.h5"),
            "legacy .h5": os.path.join(workdir, f"{name}_{name_of_backend}_legacy.h5"),
        }
        model.save_weights(files[".weights.h5"])
        save_legacy(model, files["legacy .h5"])
        for fmt, path in files.items():
            model.load_weights(path)  # warm-up (page cache, first-call costs) for both
            wk.load_weights(model, path)
            keras_ms = _median_ms(lambda: model.load_weights(path), reps)
            weightio_ms = _median_ms(lambda: wk.load_weights(model, path), reps)
            first_ms = _median_ms(lambda: _first_load(wk, model, path), reps)
            results.append({
                "backend": name_of_backend, "model": name, "format": fmt,
                "variables": len(model.weights), "keras_ms": keras_ms, "weightio_ms": weightio_ms,
                "speedup": keras_ms / weightio_ms,
                "weightio_first_ms": first_ms, "first_speedup": keras_ms / first_ms,
            })
    return results


def _first_load(wk: Any, model: Any, path: str) -> None:
    """A load as into a model weightio never loaded: without a remembered plan, through
    Keras's own loading code (recording the assignments) and weightio's bulk read."""
    wk.forget_plans(model)
    wk.load_weights(model, path)


def bench_tf_keras_checkpoint(workdir: str, repeat: int) -> dict[str, Any]:
    """In a tf-keras process: writes tf-keras's ResNet50 as a TensorFlow checkpoint and times
    tf-keras's own ``load_weights`` and weightio's on it."""
    import tf_keras

    import weightio.keras as wk

    model = tf_keras.applications.ResNet50(weights=None)
    prefix = os.path.join(workdir, "resnet50_tf_keras", "ckpt")
    model.save_weights(prefix)
    _until_trusted(prefix)
    model.load_weights(prefix).expect_partial()  # warm-up for both
    wk.load_weights(model, prefix)
    tf_keras_ms = _median_ms(lambda: model.load_weights(prefix).expect_partial(), repeat)
    weightio_ms = _median_ms(lambda: wk.load_weights(model, prefix), repeat)
    first_ms = _median_ms(lambda: _first_load(wk, model, prefix), repeat)
    return {
        "prefix": prefix, "variables": len(model.weights), "tf_keras_ms": tf_keras_ms, "weightio_ms": weightio_ms,
        "weightio_first_ms": first_ms,
    }


def _until_trusted(prefix: str) -> None:
    """Waits until a checkpoint just written is old enough for its match to be remembered
    (an index file changed less than RACY_NS ago is matched on every restore)."""
    from weightio.keras.tree_check import RACY_NS

    age = time.time() - os.stat(prefix + ".index").st_ctime
    time.sleep(max(0.0, RACY_NS / 1e9 - age + 0.1))


def bench_checkpoint_backend(prefix: str, tf_keras_ms: float, repeat: int) -> list[dict[str, Any]]:
    """weightio restoring tf-keras's ResNet50 checkpoint into Keras 3's ResNet50."""
    import keras

    import weightio.keras as wk

    model = keras.applications.ResNet50(weights=None)
    wk.load_weights(model, prefix)  # warm-up
    weightio_ms = _median_ms(lambda: wk.load_weights(model, prefix), repeat)
    first_ms = _median_ms(lambda: _first_load(wk, model, prefix), repeat)
    return [{
        "backend": keras.backend.backend(), "model": "resnet50", "format": "TF checkpoint (vs tf-keras)",
        "variables": len(model.weights), "keras_ms": tf_keras_ms, "weightio_ms": weightio_ms,
        "speedup": tf_keras_ms / weightio_ms, "weightio_first_ms": first_ms, "first_speedup": tf_keras_ms / first_ms,
    }]


def _subprocess_json(args: list[str], env: dict[str, str]) -> Any:
    proc = subprocess.run([sys.executable, "-m", "weightio.bench_keras", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_tf_ops(enabled: bool = True) -> str:
    """Builds weightio's TensorFlow ops (in a subprocess: no TensorFlow in this one) unless
    not ``enabled`` (then the benchmark's processes are told not to use them); says how it went."""
    import importlib.util

    if not enabled:
        os.environ["WEIGHTIO_TF_OPS"] = "0"
        return "TensorFlow ops: not used (--no-tf-ops)"
    if importlib.util.find_spec("tensorflow") is None:
        return "TensorFlow ops: no TensorFlow"
    start = time.perf_counter()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "weightio", "build-tf-ops"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return "TensorFlow ops: not built, " + ((proc.stderr.strip().splitlines() or ["failed"])[-1])
    return f"TensorFlow ops: used ({proc.stdout.strip()}, ready in {time.perf_counter() - start:.1f} s)"


def run(
    backends: tuple[str, ...] = DEFAULT_BACKENDS, repeat: int = 5, workdir: str | None = None, checkpoint: bool = True
) -> list[dict[str, Any]]:
    """One subprocess per backend; backends that cannot be imported are reported as such.
    With ``checkpoint`` and tf-keras installed, the TensorFlow checkpoint rows too."""
    import importlib.util

    workdir = workdir or tempfile.mkdtemp(prefix="weightio-bench-keras-")
    os.makedirs(workdir, exist_ok=True)  # a --workdir that does not exist yet
    rows: list[dict[str, Any]] = []
    common = ["--json", "--repeat", str(repeat), "--workdir", workdir]
    for backend in backends:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if backend != "tf-keras":
            env["KERAS_BACKEND"] = backend
        try:
            rows.extend(_subprocess_json(["--backend", backend, *common], env))
        except RuntimeError as exc:
            rows.append({"backend": backend, "error": str(exc)})
    if not checkpoint or importlib.util.find_spec("tf_keras") is None:
        return rows
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        tfk = _subprocess_json(["--tf-keras-checkpoint", *common], env)
    except RuntimeError as exc:
        rows.append({"backend": "tf-keras", "error": str(exc)})
        return rows
    rows.append({
        "backend": "tf-keras", "model": "resnet50", "format": "TF checkpoint", "variables": tfk["variables"],
        "keras_ms": tfk["tf_keras_ms"], "weightio_ms": tfk["weightio_ms"], "speedup": tfk["tf_keras_ms"] / tfk["weightio_ms"],
        "weightio_first_ms": tfk["weightio_first_ms"], "first_speedup": tfk["tf_keras_ms"] / tfk["weightio_first_ms"],
    })
    for backend in (b for b in backends if b != "tf-keras"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        args = ["--backend", backend, "--checkpoint", tfk["prefix"], "--tf-keras-ms", str(tfk["tf_keras_ms"]), *common]
        try:
            rows.extend(_subprocess_json(args, env))
        except RuntimeError as exc:
            rows.append({"backend": backend, "error": str(exc)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | model | file | variables | Keras load_weights | weightio | speedup "
        "| weightio first load | speedup |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | - | - | - | - | - | not run: {r['error']} | - | - |")
            continue
        first = (
            f"{r['weightio_first_ms']:.1f} ms | {r['first_speedup']:.1f}x" if "weightio_first_ms" in r else "- | -"
        )
        lines.append(
            f"| {r['backend']} | {r['model']} | {r['format']} | {r['variables']} | {r['keras_ms']:.0f} ms "
            f"| {r['weightio_ms']:.1f} ms | {r['speedup']:.1f}x | {first} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightio.bench_keras", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", help="run in this process with this Keras 3 backend, or 'tf-keras'")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), help="comma-separated, one process each")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-checkpoint", action="store_true", help="leave out the TensorFlow checkpoint rows")
    parser.add_argument("--no-tf-ops", action="store_true", help="time TensorFlow and tf-keras without weightio's TensorFlow ops")
    # internal: the per-process parts of the checkpoint rows
    parser.add_argument("--tf-keras-checkpoint", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--tf-keras-ms", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="weightio-bench-keras-")
    os.makedirs(workdir, exist_ok=True)
    if args.tf_keras_checkpoint:
        print(json.dumps(bench_tf_keras_checkpoint(workdir, args.repeat)))
        return 0
    if args.backend:
        if args.backend != "tf-keras":
            os.environ.setdefault("KERAS_BACKEND", args.backend)
        if args.checkpoint:
            rows = bench_checkpoint_backend(args.checkpoint, args.tf_keras_ms, args.repeat)
        else:
            rows = bench_backend(workdir, args.repeat, args.backend)
    else:
        backends = tuple(b for b in args.backends.split(",") if b)
        if {"tensorflow", "tf-keras"} & set(backends):
            print(build_tf_ops(not args.no_tf_ops), file=sys.stderr)
        rows = run(backends, args.repeat, args.workdir, not args.no_checkpoint)
    print(json.dumps(rows) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
