"""Draw docs/preprocessing.png: realistic uploads (top) and the 28x28 image the model sees (bottom).

Run: .venv/bin/python -m scripts.preprocessing_figure   (reads MNIST from $MNIST_DATA_DIR)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from app.imaging import preprocess
from evalsets import inks, scenes
from tests.uploads import paper_jpeg, photo_jpeg, thick_png, transparent_canvas_png
from training.data import load_from_dir


def main() -> None:
    mnist = load_from_dir(Path(os.environ.get("MNIST_DATA_DIR", "../shared/data/mnist")))
    rng = np.random.default_rng(4)
    digits = mnist.test_images
    uploads = [
        ("photo, uneven light", photo_jpeg(digits[4], rng)),
        ("dark ink on white, off-centre", paper_jpeg(digits[1], rng)),
        ("transparent canvas", transparent_canvas_png(digits[0], rng)),
        ("thick marker", thick_png(digits[2])),
        ("camera: sheet on a table, shadow", scenes.camera(inks.mnist_digit(digits[7]), rng)[0]),
        ("form box", scenes.form(inks.mnist_digit(digits[3]), rng)[0]),
    ]
    fig, axes = plt.subplots(2, len(uploads), figsize=(3 * len(uploads), 6.2))
    for column, (title, data) in enumerate(uploads):
        original = Image.open(io.BytesIO(data))
        shown = original.convert("RGBA")
        backdrop = Image.new("RGBA", shown.size, (200, 200, 200, 255))  # grey shows where the canvas is transparent
        axes[0, column].imshow(Image.alpha_composite(backdrop, shown))
        axes[0, column].set_title(f"{title}\n{original.format} {original.width}x{original.height}", fontsize=9)
        axes[1, column].imshow(preprocess(data), cmap="gray", vmin=0, vmax=255)
        axes[1, column].set_title("what the model sees: 28x28", fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig("docs/preprocessing.png", dpi=80)


if __name__ == "__main__":
    main()
