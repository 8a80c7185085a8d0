"""The network architectures the training job can build, by name, and each one's training defaults (light: the
command line checks them and lists the defaults before TensorFlow is imported)."""

from typing import Any, Literal

Arch = Literal["cnn", "mlp"]
ARCHITECTURES: tuple[Arch, ...] = ("cnn", "mlp")

# Per-architecture defaults, chosen by measurement on a 2-core CPU (see docs/training.md).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {
        "epochs": 14,
        "learning_rate": 2e-3,
        "augment": True,
        "scene_digits": 3600,
        "non_digits": 4800,
        "label_smoothing": 0.1,
    },
    "mlp": {
        "epochs": 10,
        "learning_rate": 1e-3,
        "augment": False,
        "scene_digits": 0,
        "non_digits": 0,
        "label_smoothing": 0.0,
    },
}


def defaults_text(setting: str) -> str:
    """A setting's default for each architecture, for the command line's help: '14 for cnn, 10 for mlp'."""
    return ", ".join(f"{ARCH_DEFAULTS[arch][setting]:g} for {arch}" for arch in ARCHITECTURES)
