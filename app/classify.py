"""`python -m app.classify MODEL_DIR IMAGE...`: what the service answers for image files, without a server.

Each file goes through the service's own preprocessing (app.imaging) and the version in MODEL_DIR (a version folder
such as models/mnist/<version>, or a model's folder, for its newest version); one line per file with its digit,
whether it is a digit at all (with the digit score, when the version has one) and its ten probabilities. A file the
service would refuse is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app.contract import version_of

EXIT_BAD_INPUT = 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.classify", description=__doc__.splitlines()[0])
    parser.add_argument(
        "model_dir",
        type=Path,
        metavar="MODEL_DIR",
        help="models/mnist/<version>, or models/mnist for its newest version",
    )
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np

    from app.imaging import ImageError, preprocess
    from app.model import DigitModel, ModelLoadError

    arrays = []
    for path in args.images:
        try:
            arrays.append(preprocess(path.read_bytes()))
        except (OSError, ImageError) as error:
            print(f"error: {path}: {error.strerror if isinstance(error, OSError) else error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    folder = args.model_dir.resolve()
    # A version folder (models/mnist/4), or a model's folder (models/mnist), whose newest version is used.
    version = version_of(folder.name)
    model_dir = folder.parent if version is not None else folder
    try:
        model = DigitModel(model_dir, model_dir.name, version)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    answers = model.answer(np.stack(arrays))
    for i, (path, row) in enumerate(zip(args.images, answers.probabilities, strict=True)):
        shown = " ".join(f"{digit}:{p:.3f}" for digit, p in enumerate(row))
        verdict = "a digit" if answers.is_digit[i] else "not a digit"
        if answers.digit_scores is not None:
            verdict += f" (score {answers.digit_scores[i]:.3f})"
        print(f"{path}: class {int(row.argmax())} ({row.max():.1%}), {verdict}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
