"""Command line: `python -m training [train] ...`, `... evaluate MODEL_DIR` and `... canary MODEL_DIR`.

Errors in the data or the output folder end the job before TensorFlow is imported, with one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.architectures import ARCH_DEFAULTS, ARCHITECTURES, defaults_text
from training.data import DataError, load_from_dir
from training.export import OutputError, check_writable

EXIT_BAD_INPUT = 2
COMMANDS = ("train", "evaluate", "canary")


def default_data_dir() -> Path | None:
    value = os.environ.get("MNIST_DATA_DIR")
    return Path(value) if value else None


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        metavar="DIR",
        help="folder with the four MNIST IDX files (gzipped or not); default $MNIST_DATA_DIR, "
        "else Keras's own MNIST download",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a digit classifier on MNIST and export it as the next version of a SavedModel, "
        "or re-measure an exported version. Without a command, 'train' runs. (To classify image files with a version "
        "as the service does: python -m app.classify.)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(commands)
    evaluate = commands.add_parser(
        "evaluate",
        help="re-measure a SavedModel on the 10,000 MNIST test images",
        description="Re-measure an exported SavedModel on the 10,000 MNIST test images.",
    )
    evaluate.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a version folder, e.g. models/mnist/1")
    data_dir_option(evaluate)
    canary = commands.add_parser(
        "canary",
        help="write a version's canary (assets.extra/canary.npz) from the MNIST test images",
        description="Write the canary the service replays before a version takes traffic: a few MNIST test images "
        "with the probabilities this SavedModel gives them. Training writes it; this adds it to older versions.",
    )
    canary.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a version folder, e.g. models/mnist/4")
    data_dir_option(canary)
    return parser


def add_train_command(commands: Any) -> None:
    parser = commands.add_parser(
        "train",
        help="train and export the next version (the default command)",
        description="Train a digit classifier on MNIST and export it as the next version of a SavedModel "
        "under --output, with metrics.json and report pictures beside it.",
    )
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="cnn",
        help="cnn: small convolutional network with a 'none of these' class (default); mlp: the classic "
        "Flatten-Dense(512)-Dense(10) tutorial network (their accuracy: docs/training.md)",
    )
    data_dir_option(parser)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("models/mnist"),
        metavar="DIR",
        help="where versions go: each run writes DIR/<next free number>/ (default models/mnist)",
    )
    parser.add_argument("--epochs", type=int, help=f"passes over the training data (default {defaults_text('epochs')})")
    parser.add_argument("--batch-size", type=int, default=128, help="examples per step (default 128)")
    parser.add_argument(
        "--learning-rate",
        type=float,
        help=f"Adam's initial rate, decayed to 0 along a cosine (default {defaults_text('learning_rate')})",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random small rotations, shifts and zooms of training images (default on for cnn)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed; same seed, same result (default 42)")
    parser.add_argument(
        "--train-limit", type=int, metavar="N", help="use only the first N training images (for quick runs)"
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        default=5000,
        metavar="N",
        help="training images held out for the per-epoch validation curves (default 5000)",
    )
    parser.add_argument(
        "--scene-digits",
        type=count,
        metavar="N",
        help="training digits also drawn into photos, scans and forms and read back through the service's "
        f"preprocessing (default {defaults_text('scene_digits')})",
    )
    parser.add_argument(
        "--non-digits",
        type=count,
        metavar="N",
        help="generated non-digits (letters, shapes, scribbles, noise, photo crops, blank pages): with any, the "
        "network learns a 'none of these' class and the export has a digit_score output "
        f"(default {defaults_text('non_digits')}, which cannot have one)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=share,
        metavar="S",
        help="the share of each digit's training target spread over the ten digits; the exported probabilities "
        "are recalibrated afterwards by a temperature fitted on held-out digits "
        f"(default {defaults_text('label_smoothing')})",
    )


def share(text: str) -> float:
    """A share from 0 up to, not including, 1 (argparse turns the ValueError into a usage error)."""
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError(text)
    return value


def count(text: str) -> int:
    """A whole number of samples, 0 or more (argparse turns the ValueError into a usage error)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def run_train(args: argparse.Namespace) -> int:
    # The output folder and local data files are checked before TensorFlow is imported: a mistake there ends the
    # job with one line, not after TensorFlow's start-up logs.
    check_writable(args.output)
    data = load_from_dir(args.data_dir) if args.data_dir is not None else None
    from training.train import TrainConfig, train  # TensorFlow loads only when it is needed

    defaults = ARCH_DEFAULTS[args.arch]
    config = TrainConfig(
        arch=args.arch,
        data_dir=args.data_dir,
        output=args.output,
        epochs=args.epochs if args.epochs is not None else defaults["epochs"],
        batch_size=args.batch_size,
        learning_rate=args.learning_rate if args.learning_rate is not None else defaults["learning_rate"],
        augment=args.augment if args.augment is not None else defaults["augment"],
        seed=args.seed,
        train_limit=args.train_limit,
        validation_size=args.validation_size,
        scene_digits=args.scene_digits if args.scene_digits is not None else defaults["scene_digits"],
        non_digits=args.non_digits if args.non_digits is not None else defaults["non_digits"],
        label_smoothing=args.label_smoothing if args.label_smoothing is not None else defaults["label_smoothing"],
    )
    result = train(config, data)
    m = result.metrics
    print(
        f"\n{'=' * 60}\n"
        f"model        mnist ({m['architecture']}, {m['parameters']:,} parameters, seed {m['seed']})\n"
        f"trained on   {m['training_examples']:,} images from {m['data_source']}, {m['epochs']} epochs, "
        f"{m['training_seconds']:.0f} s\n"
        f"test set     accuracy {m['test_accuracy']:.2%}, loss {m['test_loss']:.4f}, "
        f"{m['errors']} errors in {m['test_examples']:,}\n"
        f"{digit_score_summary(m)}"
        f"written to   {result.version_dir}/ (SavedModel, metrics.json, *.png)\n"
        f"{'=' * 60}"
    )
    return 0


def digit_score_summary(metrics: dict[str, Any]) -> str:
    figures = metrics.get("digit_score")
    if not figures:
        return ""
    line = f"digit score  flags {figures['test_digits_flagged']:.2%} of the test digits as not a digit"
    if figures["validation_non_digits_recognised"] is not None:
        line += f"; recognises {figures['validation_non_digits_recognised']:.1%} of the validation non-digits"
    return line + "\n"


def run_evaluate(args: argparse.Namespace) -> int:
    from training.data import load_mnist
    from training.evaluation import predict_saved_model, score
    from training.report import METRICS_FILE

    data = load_mnist(args.data_dir)
    result = score(predict_saved_model(args.model_dir, data.test_images), data.test_labels)
    print(
        f"{args.model_dir}: test accuracy {result['test_accuracy']:.4%}, loss {result['test_loss']:.4f}, "
        f"{result['errors']} errors in {result['test_examples']:,}"
    )
    recorded = args.model_dir / METRICS_FILE
    if recorded.exists():
        claimed = json.loads(recorded.read_text()).get("test_accuracy")
        print(f"{recorded} claims test accuracy {claimed:.4%}")
    return 0


def run_canary(args: argparse.Namespace) -> int:
    from training.canary import canary_sample, write_canary
    from training.data import load_mnist

    data = load_mnist(args.data_dir)
    path = write_canary(args.model_dir, *canary_sample(data.test_images, data.test_labels))
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")  # options alone mean the default command
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.arch == "mlp" and args.non_digits:
        parser.error("--non-digits needs --arch cnn: the mlp is the tutorial network, without a 'none of these' class")
    if args.command == "train" and args.arch == "mlp" and args.label_smoothing:
        parser.error("--label-smoothing needs --arch cnn: the mlp has no logits to calibrate the smoothing away")
    runner = {"train": run_train, "evaluate": run_evaluate, "canary": run_canary}[args.command]
    try:
        return runner(args)
    except (DataError, OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
