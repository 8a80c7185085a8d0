"""The committed model: its claimed accuracy holds, and MNIST-format uploads get the offline answer."""

from __future__ import annotations

import json

import numpy as np

from app.imaging import preprocess
from tests.conftest import COMMITTED_VERSION
from tests.uploads import mnist_png
from training.data import Mnist
from training.evaluation import score


def test_committed_model_has_the_accuracy_its_metrics_claim(mnist: Mnist, offline_probabilities: np.ndarray) -> None:
    claimed = json.loads((COMMITTED_VERSION / "metrics.json").read_text())
    measured = score(offline_probabilities, mnist.test_labels)
    float_error = 0.0002  # float differences between machines move up to 2 images
    assert measured["test_accuracy"] >= 0.996 - float_error
    assert abs(measured["test_accuracy"] - claimed["test_accuracy"]) <= float_error
    assert claimed["architecture"] == "cnn"
    size = sum(p.stat().st_size for p in COMMITTED_VERSION.rglob("*") if p.is_file())
    assert size < 5_000_000, f"committed version is {size:,} bytes"


def test_committed_model_confidence_means_what_it_says(mnist: Mnist, offline_probabilities: np.ndarray) -> None:
    """Trained on smoothed targets, the network is calibrated afterwards (training.calibration): a clear digit is
    answered with a confidence near 1, and the mean confidence is near the share read right."""
    confidence = offline_probabilities.max(axis=1)
    right = offline_probabilities.argmax(axis=1) == mnist.test_labels
    assert np.median(confidence) > 0.99
    assert abs(confidence.mean() - right.mean()) < 0.01


def test_all_10000_test_pngs_preprocess_to_the_offline_answer(mnist: Mnist, offline_probabilities: np.ndarray) -> None:
    """Every test image saved as PNG and read back through the upload pipeline: >= 99.9 % agreement (in fact all)."""
    from training.evaluation import predict_saved_model

    uploaded = np.stack([preprocess(mnist_png(digit)) for digit in mnist.test_images])
    served = predict_saved_model(COMMITTED_VERSION, uploaded)
    agreement = (served.argmax(axis=1) == offline_probabilities.argmax(axis=1)).mean()
    assert agreement >= 0.999
