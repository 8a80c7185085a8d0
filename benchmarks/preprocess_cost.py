"""`python -m benchmarks.preprocess_cost [--count N] [--app-from DIR]`: what the preprocessing costs per request.

Makes N uploads of each evaluation-set kind in memory (evalsets.scenes, the same generators as `make evaluate`), and
N each of the negatives' noise pictures and of speckled pages (a digit on a page with thousands of specks: a grainy
picture is where the digit finder meets the most marks), then times
app.imaging.preprocess on each, CPU time on this thread, in ROUNDS rounds, and prints per kind the median and the
slowest upload in ms (each upload's median over the rounds). In the same run it times the committed model on one
image (the SavedModel's signature, batch of 1), so the preprocessing's cost reads against the model's. With
--app-from DIR the preprocessing comes from another checkout (e.g. main's), to compare on the same files. Also prints
the installed size of OpenCV, which the preprocessing adds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np

ROUNDS = 5
MODEL_CALLS = 200


def installed_mb(distribution: str) -> float:
    """The size on disk of an installed distribution's files, in MB."""
    files = metadata.distribution(distribution).files or []
    paths = [Path(str(f.locate())) for f in files]
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6


def speckled_page(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A dusty or grainy scan: a 400 px page with dark specks on 3 % of it, and the digit written in the middle."""
    import cv2

    from evalsets import scenes

    page = np.full((400, 400, 3), 235.0)
    specks = rng.random(page.shape[:2]) < 0.03
    page[specks] = rng.uniform(60, 200, (int(specks.sum()), 1))
    ink = cv2.resize(digit.astype(np.float32) / 255, (200, 200), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    page[100:300, 100:300] *= 1 - 0.85 * ink[..., None]
    return scenes.encode(page, rng)[0]


def uploads(count: int) -> dict[str, list[bytes]]:
    from evalsets import inks, make, scenes
    from training.data import load_mnist

    data_dir = os.environ.get("MNIST_DATA_DIR")
    mnist = load_mnist(Path(data_dir) if data_dir else None)
    files: dict[str, list[bytes]] = {}
    for number, spec in enumerate(make.DIGIT_SETS):
        rng = np.random.default_rng(number)
        digits = mnist.test_images[:count] if spec.source == "mnist" else inks.sklearn_digits()[0][:count]
        ink = inks.mnist_digit if spec.source == "mnist" else np.asarray
        files[spec.name] = [spec.scene(ink(d), rng)[0] for d in digits]
    rng = np.random.default_rng(len(files))
    files["noise"] = [scenes.noise_image(rng)[0] for _ in range(count)]
    files["speckled"] = [speckled_page(d, rng) for d in mnist.test_images[:count]]
    return files


def cpu_ms(call: Callable[[], object]) -> float:
    started = time.process_time()
    with contextlib.suppress(ValueError):  # a refused upload (a 4xx) still costs its time
        call()
    return (time.process_time() - started) * 1000


def preprocess_ms(preprocess: Callable[[bytes], np.ndarray], files: list[bytes]) -> tuple[float, float]:
    """The median and the largest, over the files, of each file's median CPU ms over ROUNDS rounds."""
    rounds = [[cpu_ms(partial(preprocess, data)) for data in files] for _ in range(ROUNDS)]
    per_file = [statistics.median(times) for times in zip(*rounds, strict=True)]
    return statistics.median(per_file), max(per_file)


def model_ms() -> float:
    """The committed model on one 28x28 image, median CPU ms per call (after a warm-up call)."""
    from evalsets.score import load_model, version_folder

    model = load_model(version_folder(Path("models/mnist")))
    image = np.zeros((1, 28, 28), np.float32)
    model.predict(image)
    return statistics.median(cpu_ms(partial(model.predict, image)) for _ in range(MODEL_CALLS))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preprocess_cost", description=__doc__)
    parser.add_argument("--count", type=int, default=40, help="uploads per kind (default 40)")
    parser.add_argument("--app-from", type=Path, metavar="DIR", help="time the app package of this checkout")
    args = parser.parse_args()
    files = uploads(args.count)
    if args.app_from:
        from evalsets.__main__ import use_app_from

        use_app_from(args.app_from)
    from app.imaging import preprocess

    print(f"preprocessing from {args.app_from or 'this checkout'}; CPU ms per upload, {ROUNDS} rounds")
    for name, data in files.items():
        size = statistics.median(len(d) for d in data) / 1e3
        median, slowest = preprocess_ms(preprocess, data)
        print(f"  {name:8s} median {median:7.1f} ms, slowest {slowest:7.1f} ms   (files: median {size:.0f} kB)")
    print(f"the model on one image: {model_ms():.1f} ms CPU (median of {MODEL_CALLS} calls)")
    print(f"opencv-python-headless installed: {installed_mb('opencv-python-headless'):.0f} MB")


if __name__ == "__main__":
    main()
