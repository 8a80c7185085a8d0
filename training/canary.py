"""A version's canary: a few MNIST test images with their true labels and the probabilities the exported model gave
them, written into the version folder (`assets.extra/canary.npz`, where TensorFlow Serving keeps such extras).

The service replays it before the version takes traffic (app.verification): a model that loads but computes
something else than what was exported (damaged weights, another build's arithmetic gone wrong) is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.contract import CANARY_FILE, NUM_CLASSES

PER_CLASS = 3  # images of each digit: every class is checked, and the file stays a few kilobytes


def canary_sample(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first PER_CLASS images of each digit, in order (deterministic: the same test set gives the same canary)."""
    chosen = np.sort(np.concatenate([np.flatnonzero(labels == digit)[:PER_CLASS] for digit in range(NUM_CLASSES)]))
    return images[chosen], labels[chosen]


def write_canary(version_dir: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write `images` (uint8 [K, 28, 28]), `labels` and the probabilities the SavedModel in `version_dir` gives them
    (computed here, through its serving signature, as the service will call it)."""
    from training.evaluation import predict_saved_model  # TensorFlow loads only when a canary is written

    pixels = np.asarray(images, dtype=np.uint8)
    probabilities = predict_saved_model(version_dir, pixels).astype(np.float32)
    path = version_dir / CANARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        np.savez_compressed(file, images=pixels, labels=np.asarray(labels, dtype=np.int64), probabilities=probabilities)
    return path
