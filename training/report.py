"""The training report: metrics.json and the PNG pictures written beside the SavedModel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt
import numpy as np

METRICS_FILE = "metrics.json"


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, training against validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        axis.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        axis.set(title=metric, xlabel="epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: Path) -> None:
    fig, axis = plt.subplots(figsize=(6.5, 6))
    axis.imshow(np.log1p(matrix), cmap="Blues")  # log scale so the few errors stay visible next to the diagonal
    for (row, col), count in np.ndenumerate(matrix):
        axis.text(col, row, str(count), ha="center", va="center", fontsize=7, color="white" if row == col else "black")
    axis.set(xlabel="predicted", ylabel="true", title="confusion matrix (test set)", xticks=range(10), yticks=range(10))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_grid(images: np.ndarray, captions: list[str], title: str, path: Path, columns: int = 6) -> None:
    """Images with a caption each, in a grid of `columns`."""
    count = max(len(images), 1)
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6 + 0.4), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            axis.set_title(captions[index], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_pictures(
    folder: Path,
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    test_predicted: np.ndarray,
) -> None:
    plot_history(history, folder / "history.png")
    plot_confusion(np.array(metrics["confusion_matrix"]), folder / "confusion_matrix.png")
    plot_grid(
        train_images[:9],
        [f"label {y}" for y in train_labels[:9]],
        "first training images",
        folder / "training_samples.png",
        columns=3,
    )
    wrong = np.flatnonzero(test_predicted != test_labels)[:36]
    plot_grid(
        test_images[wrong],
        [f"true {test_labels[i]}, got {test_predicted[i]}" for i in wrong],
        f"misclassified test images ({len(np.flatnonzero(test_predicted != test_labels))} in all)",
        folder / "misclassified.png",
    )
