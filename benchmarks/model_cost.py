"""`python -m benchmarks.model_cost [VERSION_DIR ...]`: CPU time of one model call per image, by batch size.

Loads each SavedModel version as the service does (app.model.DigitModel, one TensorFlow thread of each kind) and
calls it on real MNIST test images, pinned to one core, at the batch sizes the engine makes under load. Prints the
median of 7 rounds of CPU time per image, which is what a batch costs the one core the service runs on. The default
is every version under models/mnist.
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


def cpu_ms_per_image(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> float:
    calls = max(10, IMAGES_PER_ROUND // len(images))
    for _ in range(3):
        predict(images)
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(calls):
            predict(images)
        rounds.append((time.process_time() - started) / calls / len(images) * 1000)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", type=Path, help="SavedModel version folders (default: models/mnist/*)")
    parser.add_argument("--core", type=int, default=0, help="the core to run on")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.sched_setaffinity(0, {args.core})

    from app.model import DigitModel, available_versions, configure_threads
    from benchmarks.run import mnist_dir, mnist_images

    configure_threads(1, 1)
    versions = args.versions or [Path("models/mnist") / str(v) for v in available_versions(Path("models/mnist"))]
    images = mnist_images(mnist_dir(), "test", max(BATCH_SIZES))[0].astype(np.float32)
    print("CPU ms per image, median of", ROUNDS, "rounds, one core:", ", ".join(f"batch {b}" for b in BATCH_SIZES))
    for version in versions:
        model = DigitModel(version.parent, version.parent.name, int(version.name))
        costs = [cpu_ms_per_image(model.predict, images[:size]) for size in BATCH_SIZES]
        print(f"{version}: " + "  ".join(f"{cost:.3f}" for cost in costs))


if __name__ == "__main__":
    main()
