"""`python -m evalsets make --out DIR` writes the evaluation sets; `python -m evalsets evaluate --sets DIR` scores the
served model on them (the newest version under models/mnist unless --model names another)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evalsets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    make = commands.add_parser("make", help="write the evaluation sets (skipped when DIR already holds them)")
    make.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the sets (created)")
    make.add_argument("--count", type=int, default=500, help="images per set (default 500)")
    make.add_argument("--seed", type=int, default=0, help="the sets are a function of this seed (default 0)")
    make.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MNIST_DATA_DIR") or "../shared/data/mnist"),
        metavar="DIR",
        help="the MNIST IDX files; only the test images are used (default $MNIST_DATA_DIR)",
    )
    evaluate = commands.add_parser("evaluate", help="score a model on the sets through the service's preprocessing")
    evaluate.add_argument("--sets", type=Path, required=True, metavar="DIR", help="a folder written by 'make'")
    evaluate.add_argument(
        "--model",
        type=Path,
        default=Path("models/mnist"),
        metavar="DIR",
        help="a version folder, or a model folder for its newest version (default models/mnist)",
    )
    evaluate.add_argument(
        "--app-from",
        type=Path,
        metavar="DIR",
        help="take the service's preprocessing (the app package) from this checkout instead, to measure another "
        "version of it on the same sets (e.g. main's: git archive main app | tar -x -C DIR)",
    )
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON here")
    evaluate.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as Markdown here")
    return parser.parse_args(argv)


def use_app_from(root: Path) -> None:
    """Import `app` from `root`: ahead of everything on sys.path, and without the editable install's finder, which
    would otherwise map `app` to this checkout."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder)]
    sys.path.insert(0, str(root.resolve()))
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]  # anything of app imported already came from this checkout


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "make":
        from evalsets.make import make_sets
        from training.data import load_from_dir

        mnist = load_from_dir(args.data_dir)
        wrote = make_sets(args.out, (mnist.test_images, mnist.test_labels), args.count, args.seed)
        print(f"{'wrote' if wrote else 'reusing'} the evaluation sets in {args.out}")
        return 0
    if args.app_from:
        use_app_from(args.app_from)
    from evalsets.score import evaluate, markdown

    results = evaluate(args.sets, args.model)
    table = markdown(results)
    print(table, end="")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
