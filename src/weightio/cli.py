"""The ``weightio`` command (also ``python -m weightio``): inspect, diff, convert, bench.

Argument parsing and exit statuses only; the work is in ``weightio.tools``. Exit status 0 on
success (``diff``: identical), 1 when ``diff`` finds differences, 2 for a usage or file error,
reported as one line ``weightio: error: ...`` (no traceback). Never imports Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import Error, __version__
from .tools import ToolError

EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weightio",
        description="Inspect, compare, convert and benchmark neural-network weight files "
        "(Keras legacy .h5, .weights.h5, .keras, sharded .weights.json, .safetensors, .npz).",
    )
    parser.add_argument("--version", action="version", version=f"weightio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, description: str, run: Any, epilog: str | None = None) -> Any:
        p = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(run=run)
        return p

    p = command(
        "inspect",
        "summarize a weight file: format, layers, tensors, oddities",
        "A Keras-aware summary of a weight file (layers in order, their weights' names, shapes, dtypes and sizes, "
        "totals, anything odd), or with --tree every HDF5 object with its attributes.",
        _inspect,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--tree", action="store_true", help="the raw HDF5 tree with attributes, like h5ls -r")

    p = command(
        "diff",
        "compare the tensors of two weight files",
        "Compare two weight files tensor by tensor: by key, by name without ':0', by layer name and position, "
        "and (when the layouts differ) by order. Exit status 0: identical within --atol; 1: different; "
        "2: usage or file error.",
        _diff,
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--atol", type=_non_negative, default=0.0, help="largest |a-b| counted as equal (default 0)")
    p.add_argument(
        "--match",
        choices=("auto", "name", "order"),
        default="auto",
        help="auto (default): by name, then by order when the layouts differ; name: by name only; order: by order",
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    from .tools.convert import HELP as convert_help

    p = command(
        "convert",
        "convert between legacy .h5, .weights.h5, .safetensors and .npz",
        "Convert SRC (any format inspect reads) to the format named by DST's suffix.",
        _convert,
        epilog=convert_help,
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("-f", "--force", action="store_true", help="overwrite DST if it exists")
    p.add_argument("--keras-version", help="keras_version attribute of a legacy .h5 DST (default: the source's)")
    p.add_argument("--backend", help="backend attribute of a legacy .h5 DST (default: the source's)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")

    p = command(
        "bench",
        "time reading weight files: weightio vs h5py, safetensors, memcpy",
        "python -m weightio.bench, plus --plot. With no FILE, generates a ResNet50-size and a 10,000-dataset "
        "Keras file into --workdir (once) and times reading every dataset.",
        _bench,
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="HDF5 files (default: the generated ones)")
    p.add_argument("--repeat", type=_positive, default=None, help="timed runs per method after a warm-up (default 7)")
    p.add_argument("--threads", type=_positive, default=None, help="threads= for weightio.load_file and read_many")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--cold", action="store_true", help="also time a run after dropping the page cache (root only)")
    p.add_argument("--workdir", help="cache of generated files (default $WEIGHTIO_BENCH_DIR or <tmp>/weightio-bench)")
    p.add_argument("--plot", metavar="OUT.png", help="also draw median times per method and file (needs matplotlib)")
    p.add_argument("--keras", metavar="BACKENDS", help="also time Keras's load_weights vs weightio.keras on these "
                   "backends (default numpy,tensorflow,jax when no FILE is given and keras is installed; 'none' to skip)")

    p = command(
        "build-tf-ops",
        "compile weightio's TensorFlow ops (faster assignment into TensorFlow variables)",
        "Compile weightio's TensorFlow ops against the installed TensorFlow (needs a C++17 compiler: $CXX, "
        "else c++), once per TensorFlow version, into weightio's cache ($WEIGHTIO_CACHE_DIR, else "
        "$XDG_CACHE_HOME/weightio, else ~/.cache/weightio). weightio.keras then sets the variables of a "
        "TensorFlow model in one op call instead of one per variable. Prints the library's path.",
        _build_tf_ops,
    )
    p.add_argument("-f", "--force", action="store_true", help="compile again even if already built")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# -- commands ---------------------------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
    if args.tree:
        from .tools import tree

        files = tree.tree(args.file)
        _emit(files if args.json else tree.to_text(args.file, files), args.json)
        broken = [o for f in files for o in f["objects"] if "error" in o]
        if broken:  # what could be read is shown; the status says the file is damaged
            return _error(f"{len(broken)} object(s) could not be read, the first: {broken[0]['error']}")
        return EXIT_OK
    from .tools import summary
    from .tools.catalog import open_catalog

    with open_catalog(args.file) as cat:
        _emit(summary.to_json(cat) if args.json else summary.to_text(cat), args.json)
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from .tools import diff
    from .tools.catalog import open_catalog

    with open_catalog(args.a) as a, open_catalog(args.b) as b:
        result = diff.diff(a, b, atol=args.atol, match=args.match)
        _emit(diff.to_json(result) if args.json else diff.to_text(result), args.json)
    return EXIT_OK if result.identical else EXIT_DIFFERENT


def _convert(args: argparse.Namespace) -> int:
    from .tools.convert import convert

    report = convert(args.src, args.dst, force=args.force, keras_version=args.keras_version, backend=args.backend)
    _emit(report.to_json() if args.json else report.text(), args.json)
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    from . import bench
    from .tools import plot
    from .tools.catalog import detect
    from .tools.common import require

    if args.plot:
        plot.check_available()
    require("h5py", "weightio bench (it writes its files and checks every reader against h5py)", "'weightio[bench]'")
    for path in args.files:
        if detect(path) not in ("legacy-h5", "weights-h5"):
            raise ToolError(f"{path}: weightio bench times HDF5 files")
    repeat = bench.DEFAULT_REPEAT if args.repeat is None else args.repeat
    results = bench.run(
        args.files, repeat=repeat, threads=args.threads, json=args.json, cold=args.cold, workdir=args.workdir
    )
    if args.plot:
        plot.plot(results, args.plot)
        print(f"weightio: wrote {args.plot}", file=sys.stderr)
    bench.run_keras(args.keras, bool(args.files), repeat, args.json)
    return EXIT_OK


def _build_tf_ops(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise ToolError("build-tf-ops needs TensorFlow installed")
    from .keras import tf_ops

    try:
        path = tf_ops.build(force=args.force)
    except tf_ops.BuildError as error:
        raise ToolError(str(error)) from None
    _emit(path, False)
    return EXIT_OK


# -- output and errors ------------------------------------------------------------------------


def _emit(value: Any, as_json: bool) -> None:
    text = json.dumps(value, indent=2, default=str) if as_json else value
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `weightio inspect big.h5 | head`: the reader left, fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _error(message: str) -> int:
    print(f"weightio: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ToolError as exc:
        return _error(str(exc))
    except Error as exc:  # a corrupt file met while reading tensors: the message names the file
        return _error(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("weightio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
