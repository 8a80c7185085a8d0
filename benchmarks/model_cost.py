"""`python -m benchmarks.model_cost [VERSION_DIR ...]`: CPU time of one model call per image, by batch size.

Loads each SavedModel version as the service does (app.model.DigitModel, one TensorFlow thread of each kind) and
calls it on real MNIST test images, pinned to one core, at the batch sizes the engine makes under load. Prints the
median of 7 rounds of CPU time per image, which is what a batch costs the one core the service runs on. The versions'
rounds alternate, so a drift of the shared machine touches them alike; with two versions it also prints the median
of the per-round ratios (second / first). The default is every version under models/mnist.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BATCH_SIZES = (1, 8, 16, 32, 48, 64)
ROUNDS = 7
IMAGES_PER_ROUND = 640


Predict = Callable[[np.ndarray], np.ndarray]


def cpu_ms_per_image(predict: Predict, images: np.ndarray, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        predict(images)
    return (time.process_time() - started) / calls / len(images) * 1000


def alternating_rounds(models: list[Predict], images: np.ndarray) -> list[list[float]]:
    """ROUNDS measurements per model, taken in turn: [model][round] = CPU ms per image."""
    calls = max(10, IMAGES_PER_ROUND // len(images))
    for predict in models:
        for _ in range(3):
            predict(images)
    rounds: list[list[float]] = [[] for _ in models]
    for _ in range(ROUNDS):
        for predict, costs in zip(models, rounds, strict=True):
            costs.append(cpu_ms_per_image(predict, images, calls))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", type=Path, help="SavedModel version folders (default: models/mnist/*)")
    parser.add_argument("--core", type=int, default=0, help="the core to run on")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.sched_setaffinity(0, {args.core})

    from app.model import DigitModel, available_versions, configure_threads
    from benchmarks.load import mnist_dir, mnist_images

    configure_threads(1, 1)
    versions = args.versions or [Path("models/mnist") / str(v) for v in available_versions(Path("models/mnist"))]
    images = mnist_images(mnist_dir(), "test", max(BATCH_SIZES))[0].astype(np.float32)
    print("CPU ms per image, median of", ROUNDS, "rounds, one core:", ", ".join(f"batch {b}" for b in BATCH_SIZES))
    models = [DigitModel(version.parent, version.parent.name, int(version.name)) for version in versions]
    by_size = [alternating_rounds([model.predict for model in models], images[:size]) for size in BATCH_SIZES]
    for index, version in enumerate(versions):
        print(f"{version}: " + "  ".join(f"{statistics.median(rounds[index]):.3f}" for rounds in by_size))
    if len(versions) == 2:
        ratios = [statistics.median(b / a for a, b in zip(*rounds, strict=True)) for rounds in by_size]
        print(f"{versions[1]} / {versions[0]}: " + "  ".join(f"{ratio:.3f}" for ratio in ratios))


if __name__ == "__main__":
    main()
