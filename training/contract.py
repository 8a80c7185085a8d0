"""The names the exported SavedModel is known by: the one thing training and serving agree on."""

from typing import Literal

Arch = Literal["cnn", "mlp"]
ARCHITECTURES: tuple[Arch, ...] = ("cnn", "mlp")
NUM_CLASSES = 10
IMAGE_SIDE = 28
SIGNATURE_NAME = "serving_default"
INPUT_NAME = "images"  # float32 [N, 28, 28], raw pixels 0-255, background 0, ink 255
OUTPUT_NAME = "probabilities"  # float32 [N, 10], each row sums to 1
