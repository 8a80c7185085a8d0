"""The network architectures the training job can build, by name (light: the command line checks them before
TensorFlow is imported)."""

from typing import Literal

Arch = Literal["cnn", "mlp"]
ARCHITECTURES: tuple[Arch, ...] = ("cnn", "mlp")
