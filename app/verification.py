"""Is a loaded version good enough to take traffic? Two checks, both on what the model computes.

The contract: probe images give probabilities [N, 10] in [0, 1] with rows summing to 1 (and, when the signature has
it, a digit score [N] in [0, 1]), each within SUM_TOLERANCE for rounding. The canary: the version's own
`assets.extra/canary.npz`, written at export, holds some MNIST test images and the probabilities the trained model
gave them; replayed here, every answer (argmax) must be the same and no probability may move by more than
CANARY_TOLERANCE. A version without a canary (another tool's export) is checked on the contract alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.contract import CANARY_FILE, DIGIT_SCORE_NAME, IMAGE_SIDE, NUM_CLASSES, OUTPUT_NAME
from app.model import DigitModel, ModelLoadError

# Room for the arithmetic of another CPU, thread count or TensorFlow build; a retrained or damaged model moves
# probabilities by far more.
CANARY_TOLERANCE = 1e-3
SUM_TOLERANCE = 1e-3
PROBE_SEED = 28


def probe_images() -> np.ndarray:
    """Blank, full and noisy images: a few inputs any model must answer within the contract."""
    noise = np.random.default_rng(PROBE_SEED).integers(0, 256, (3, IMAGE_SIDE, IMAGE_SIDE))
    plain = np.stack([np.zeros((IMAGE_SIDE, IMAGE_SIDE)), np.full((IMAGE_SIDE, IMAGE_SIDE), 255.0)])
    return np.concatenate([plain, noise]).astype(np.float32)


def contract_problem(outputs: dict[str, np.ndarray], count: int) -> str | None:
    probabilities = outputs[OUTPUT_NAME]
    if probabilities.shape != (count, NUM_CLASSES):
        return f"probabilities have shape {list(probabilities.shape)} for {count} images, not [{count}, {NUM_CLASSES}]"
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1 + SUM_TOLERANCE:
        return "probabilities outside [0, 1]"
    sums = probabilities.sum(axis=1, dtype=np.float64)
    if np.abs(sums - 1).max() > SUM_TOLERANCE:
        return f"probability rows sum to {float(sums.min()):.4f}..{float(sums.max()):.4f}, not 1"
    score = outputs.get(DIGIT_SCORE_NAME)
    valid_score = score is None or (
        score.shape == (count,) and bool(((score >= 0) & (score <= 1 + SUM_TOLERANCE)).all())
    )
    if not valid_score:
        return f"{DIGIT_SCORE_NAME} is not [{count}] values in [0, 1]"
    return None


def read_canary(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(images, recorded probabilities) from the version's canary file; None when it has none."""
    file = path / CANARY_FILE
    if not os.path.lexists(file):
        return None
    try:
        with np.load(file, allow_pickle=False) as canary:
            images, recorded = canary["images"], canary["probabilities"]
    except Exception as error:  # a directory, a dangling link, a damaged zip (BadZipFile, zlib.error, EOFError, ...)
        message = f"{type(error).__name__}: {error}"
        raise ModelLoadError(f"{file}: unreadable canary ({message})", "DATA_LOSS", "canary") from None
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or recorded.shape != (len(images), NUM_CLASSES):
        raise ModelLoadError(f"{file}: canary arrays have the wrong shapes", "DATA_LOSS", "canary")
    return images, recorded


def canary_problem(model: DigitModel, images: np.ndarray, recorded: np.ndarray) -> str | None:
    got = model.outputs(images.astype(np.float32))[OUTPUT_NAME]
    changed = np.flatnonzero(got.argmax(axis=1) != recorded.argmax(axis=1))
    if changed.size:
        first = int(changed[0])
        return (
            f"{changed.size} of {len(images)} canary images changed their answer "
            f"(image {first}: {int(recorded[first].argmax())} -> {int(got[first].argmax())})"
        )
    moved = float(np.abs(got - recorded).max())
    if moved > CANARY_TOLERANCE:
        return f"a canary probability moved by {moved:.4g} (tolerance {CANARY_TOLERANCE})"
    return None


def verify(model: DigitModel) -> None:
    """Raise ModelLoadError (one line) unless `model` computes what the contract and its canary say."""
    path = model.info.path
    probes = probe_images()
    problem = contract_problem(model.outputs(probes), len(probes))
    if problem is not None:
        raise ModelLoadError(f"{path}: {problem}", "INVALID_ARGUMENT", "contract")
    canary = read_canary(path)
    if canary is not None and (problem := canary_problem(model, *canary)) is not None:
        raise ModelLoadError(f"{path}: {problem}", "FAILED_PRECONDITION", "canary")
