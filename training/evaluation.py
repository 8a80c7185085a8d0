"""Scoring predictions, and running an exported SavedModel over a test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.contract import NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Loss, accuracy, per-class precision and recall, and the confusion matrix of a set of predictions."""
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    true_positives = np.diag(matrix).astype(np.float64)
    picked = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    eps = 1e-7  # as Keras clips, so a confident mistake costs a finite loss
    loss = -np.log(np.clip(probabilities[np.arange(len(labels)), labels], eps, 1.0)).mean()
    return {
        "test_loss": round(float(loss), 6),
        "test_accuracy": round(float((predicted == labels).mean()), 6),
        "test_examples": len(labels),
        "errors": int((predicted != labels).sum()),
        "per_class": {
            str(digit): {
                "precision": round(float(true_positives[digit] / max(picked[digit], 1)), 6),
                "recall": round(float(true_positives[digit] / max(actual[digit], 1)), 6),
                "support": int(actual[digit]),
            }
            for digit in range(NUM_CLASSES)
        },
        "confusion_matrix": matrix.tolist(),
    }


def predict_saved_model(model_dir: Path, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Probabilities [N, 10] from an exported model's serving signature, fed raw pixels as the contract says."""
    import tensorflow as tf

    from app.contract import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME

    serve = tf.saved_model.load(str(model_dir)).signatures[SIGNATURE_NAME]
    batches = [
        serve(**{INPUT_NAME: tf.constant(images[start : start + batch_size], dtype=tf.float32)})[OUTPUT_NAME].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), dtype=np.float32)
