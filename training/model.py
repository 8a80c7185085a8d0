"""The two network architectures. Both take raw pixels (0-255) and own their scaling via a Rescaling layer."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from app.contract import DIGIT_SCORE_NAME, NUM_CLASSES, OUTPUT_NAME
from training.architectures import Arch


def build_mlp() -> keras.Model:
    """The classic tutorial network: Flatten -> Dense(512, relu) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="images"),
            layers.Rescaling(1.0 / 255),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
        ],
        name="mnist_mlp",
    )


def conv_bn_relu(filters: int, padding: str = "same") -> list[layers.Layer]:
    """A 3x3 convolution with batch normalisation (which makes the bias redundant) and ReLU."""
    return [layers.Conv2D(filters, 3, padding=padding, use_bias=False), layers.BatchNormalization(), layers.ReLU()]


def build_cnn(classes: int = NUM_CLASSES) -> keras.Model:
    """Three conv blocks (32, 48, 128 filters), a last 2x2 max pooling and a small dense head, sized for a 2-core
    CPU's training budget and serving cost. With `classes` = NUM_CLASSES + 1 the
    last class is "none of these" (training.scene_samples.NONE_CLASS).

    The second block, the costliest layer in serving, is kept narrow and trained longer rather than made wide; its
    width is a multiple of 16, which the CPU's convolution kernels run at full speed (docs/training.md).

    The second and third convolutions are unpadded: their border positions would mostly see MNIST's empty margin,
    and without them serving costs a third less CPU per image (docs/training.md). The head sees the last features
    by quadrant rather than pooled over the whole image: where a stroke is tells a 4 from a 9 and a 7 from a 1, and
    a quadrant's 128 features cost the dense layer little. The logits and the softmax are separate layers so that
    the export can split the logits into the digits' probabilities and the digit score."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="images"),
            layers.Rescaling(1.0 / 255),
            layers.Reshape((28, 28, 1)),
            *conv_bn_relu(32),
            layers.MaxPooling2D(),
            *conv_bn_relu(48, padding="valid"),
            layers.MaxPooling2D(),
            *conv_bn_relu(128, padding="valid"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Dropout(0.2),
            layers.Dense(classes, name="logits"),
            layers.Softmax(name="classes"),
        ],
        name="mnist_cnn",
    )


def build_model(arch: Arch, none_class: bool) -> keras.Model:
    """The network for `arch`; with `none_class`, one more output class for images that show no digit (the cnn only:
    the mlp is the tutorial network as it is)."""
    if none_class and arch != "cnn":
        raise ValueError(f"the {arch} architecture has no 'none of these' class")
    return build_mlp() if arch == "mlp" else build_cnn(NUM_CLASSES + int(none_class))


def digit_outputs(logits: Any, temperature: float = 1.0) -> dict[str, Any]:
    """Logits over the digits (and "none of these") -> the signature's outputs. The digits' probabilities are a
    softmax of their logits divided by `temperature` (training.calibration), over the digits alone so that existing
    clients keep 10 that sum to 1. With a "none of these" class, the digit score is the probability that the image
    shows a digit at all, from the logits as trained (its targets are never smoothed): the digits' share of the
    softmax over every class, summed rather than taken as 1 - P(none) so that it stays exact where P(none) rounds to
    1, and capped at 1, which the rounding of the sum can pass."""
    digits = logits[:, :NUM_CLASSES]
    outputs = {OUTPUT_NAME: ops.softmax(digits if temperature == 1.0 else digits / temperature, axis=-1)}
    if logits.shape[-1] > NUM_CLASSES:
        share = ops.sum(ops.softmax(logits, axis=-1)[:, :NUM_CLASSES], axis=-1)
        outputs[DIGIT_SCORE_NAME] = ops.minimum(share, 1.0)
    return outputs


def augmenter(seed: int) -> keras.Sequential:
    """Small random rotations, shifts and zooms: the variation real handwriting has after MNIST-style centring."""
    return keras.Sequential(
        [
            layers.RandomRotation(0.025, fill_mode="constant", seed=seed),  # about +-9 degrees
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom(0.08, fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )
