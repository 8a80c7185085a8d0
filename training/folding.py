"""The network as it is exported: batch normalisation folded into the layer before it, dropout left out.

In inference a BatchNormalization layer is a fixed per-channel affine map,
y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta, so after a Conv2D or Dense layer without
activation it can be merged into that layer's kernel and bias. The exported graph then runs one convolution with a
bias (which TensorFlow's graph optimiser fuses with the following ReLU) where Keras's graph makes four more passes
over every feature map. Same function, up to float rounding; measured on the default CNN in docs/benchmark.md.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

FOLDABLE = (layers.Conv2D, layers.Dense)


def inference_model(model: keras.Sequential) -> keras.Sequential:
    """A new Sequential computing what `model(x, training=False)` computes, with every BatchNormalization that
    follows a Conv2D or Dense (channels last, no activation) folded into it and Dropout layers left out. Other
    layers are shared with `model`, not copied."""
    kept: list[layers.Layer] = []
    weights: dict[str, list[np.ndarray]] = {}
    pending = list(model.layers)
    while pending:
        layer = pending.pop(0)
        if isinstance(layer, layers.Dropout):
            continue
        if pending and can_fold(layer, pending[0]):
            norm = pending.pop(0)
            layer, weights[layer.name] = unfused_copy(layer), folded_weights(layer, norm)
        kept.append(layer)
    folded = keras.Sequential([keras.Input(model.input_shape[1:], name=model.inputs[0].name), *kept], name=model.name)
    for name, values in weights.items():
        folded.get_layer(name).set_weights(values)
    return folded


def can_fold(layer: layers.Layer, following: layers.Layer) -> bool:
    return (
        isinstance(layer, FOLDABLE)
        and isinstance(following, layers.BatchNormalization)
        and following.axis in (-1, len(following.input.shape) - 1)
        and layer.get_config()["activation"] == "linear"
    )


def unfused_copy(layer: layers.Layer) -> layers.Layer:
    """A fresh layer of the same kind and shape, with a bias to take the folded shift."""
    return type(layer).from_config({**layer.get_config(), "use_bias": True})


def folded_weights(layer: layers.Layer, norm: layers.BatchNormalization) -> list[np.ndarray]:
    """Kernel and bias of `norm(layer(x))` as one layer. The output channels are the kernel's last axis for both
    Conv2D (h, w, in, out) and Dense (in, out), so the per-channel scale broadcasts over it."""
    kernel = np.asarray(layer.kernel)
    bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
    variance = np.asarray(norm.moving_variance)
    gamma = np.asarray(norm.gamma) if norm.scale else np.ones_like(variance)
    beta = np.asarray(norm.beta) if norm.center else np.zeros_like(variance)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    shift = beta + (bias - np.asarray(norm.moving_mean)) * scale
    return [(kernel * scale).astype(kernel.dtype), shift.astype(kernel.dtype)]
