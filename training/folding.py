"""The network as it is exported: the same function as the trained one, rewritten to cost less per image.

Three rewrites, each exact up to float rounding (measured on the default CNN in docs/benchmark.md):

- Batch normalisation folded into the layer before it, dropout left out. In inference a BatchNormalization layer is
  a fixed per-channel affine map, y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta, so after a
  Conv2D or Dense layer without activation it can be merged into that layer's kernel and bias. The exported graph
  then runs one convolution with a bias (which TensorFlow's graph optimiser fuses with the following ReLU) where
  Keras's graph makes four more passes over every feature map.
- A first block of 3x3 convolution on a one-channel image, ReLU and 2x2 max pooling computed by pooling phases:
  one 4x4 convolution of stride 2 whose output channels are the block's filters at each of the four positions of a
  pooling window, then the max over those four. TensorFlow's CPU convolution is slow on one input channel and
  narrow outputs; the wide strided form ran the block in about half the time (benchmarks in docs/benchmark.md).
- The input's scaling (a Rescaling layer without offset) folded into the kernel of the first convolution or dense
  layer after it, and every reshape given its shape in full. Both leave out operations that run once per call
  whatever the batch size, so they weigh most in a call for one image (docs/training.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers, ops

FOLDABLE = (layers.Conv2D, layers.Dense)
RESHAPES = (layers.Reshape, layers.Flatten)  # layers that move values without changing them
WINDOW = 2  # the pooling window's side that rewrite by phases handles
PHASES = WINDOW * WINDOW


class PhaseMax(layers.Layer):
    """[h, w, PHASES * filters] -> [h, w, filters]: the max over the PHASES blocks of channels."""

    def __init__(self, filters: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters

    def call(self, inputs: Any) -> Any:
        height, width = inputs.shape[1], inputs.shape[2]
        return ops.max(ops.reshape(inputs, (-1, height, width, PHASES, self.filters)), axis=3)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters}


class FixedReshape(layers.Layer):
    """[N, ...] -> [N, *target_shape]. Keras's Reshape and Flatten read the batch size from the input at run time,
    three more operations per call; here the reshape infers it."""

    def __init__(self, target_shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def call(self, inputs: Any) -> Any:
        return ops.reshape(inputs, (-1, *self.target_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}


def inference_model(model: keras.Sequential) -> keras.Sequential:
    """A new Sequential computing what `model(x, training=False)` computes: every BatchNormalization that follows a
    Conv2D or Dense (channels last, no activation) folded into it, Dropout layers left out, a first block of
    one-channel 3x3 convolution, ReLU and 2x2 pooling computed by phases, the input's scaling folded into the first
    kernel and the reshapes given their shapes in full. Other layers are shared with `model`."""
    network = model
    for step in (fold_batch_norm, pool_by_phases, fold_input_scale, fix_shapes):
        network = rewritten(network, step)
    return network


# A rewrite step takes the layers still to place, consumes the ones it rewrites from the front and returns what goes
# in their place, recording the weights of any new layer by its name.
Step = Callable[[list[layers.Layer], dict[str, list[np.ndarray]]], list[layers.Layer]]


def rewritten(model: keras.Sequential, step: Step) -> keras.Sequential:
    kept: list[layers.Layer] = []
    weights: dict[str, list[np.ndarray]] = {}
    pending = list(model.layers)
    while pending:
        kept += step(pending, weights)
    network = keras.Sequential([keras.Input(model.input_shape[1:], name=model.inputs[0].name), *kept], name=model.name)
    for name, values in weights.items():
        network.get_layer(name).set_weights(values)
    return network


def fold_batch_norm(pending: list[layers.Layer], weights: dict[str, list[np.ndarray]]) -> list[layers.Layer]:
    layer = pending.pop(0)
    if isinstance(layer, layers.Dropout):
        return []
    if pending and can_fold(layer, pending[0]):
        norm = pending.pop(0)
        layer, weights[layer.name] = unfused_copy(layer), folded_weights(layer, norm)
    return [layer]


def pool_by_phases(pending: list[layers.Layer], weights: dict[str, list[np.ndarray]]) -> list[layers.Layer]:
    conv = pending.pop(0)
    if len(pending) < 2 or not can_pool_by_phases(conv, pending[0], pending[1]):
        return [conv]
    relu, _ = pending.pop(0), pending.pop(0)
    strided = layers.Conv2D(PHASES * conv.filters, 2 * WINDOW, strides=WINDOW, padding="same", name=conv.name)
    weights[conv.name] = phase_weights(*conv.get_weights())
    return [strided, relu, PhaseMax(conv.filters, name=f"{conv.name}_pool")]


def fold_input_scale(pending: list[layers.Layer], weights: dict[str, list[np.ndarray]]) -> list[layers.Layer]:
    """A Rescaling by a single factor, without offset, before (past any reshapes) a Conv2D or Dense: that layer is
    linear in its input, so the factor moves into its kernel (an offset would not: "same" padding pads with 0)."""
    scaling = pending.pop(0)
    if not isinstance(scaling, layers.Rescaling) or not is_plain_scale(scaling):
        return [scaling]
    reshapes = 0
    while reshapes < len(pending) and isinstance(pending[reshapes], RESHAPES):
        reshapes += 1
    if reshapes == len(pending) or not isinstance(pending[reshapes], FOLDABLE):
        return [scaling]
    passed = [pending.pop(0) for _ in range(reshapes)]
    layer = pending.pop(0)
    copy = type(layer).from_config(layer.get_config())
    kernel, *rest = layer.get_weights()
    weights[layer.name] = [(kernel * scaling.scale).astype(kernel.dtype), *rest]
    return [*passed, copy]


def fix_shapes(pending: list[layers.Layer], weights: dict[str, list[np.ndarray]]) -> list[layers.Layer]:
    layer = pending.pop(0)
    if not isinstance(layer, RESHAPES) or None in layer.output.shape[1:]:
        return [layer]
    return [FixedReshape(layer.output.shape[1:], name=layer.name)]


def is_plain_scale(scaling: layers.Rescaling) -> bool:
    return isinstance(scaling.scale, int | float) and isinstance(scaling.offset, int | float) and scaling.offset == 0


def can_fold(layer: layers.Layer, following: layers.Layer) -> bool:
    return (
        isinstance(layer, FOLDABLE)
        and isinstance(following, layers.BatchNormalization)
        and following.axis in (-1, len(following.input.shape) - 1)
        and layer.get_config()["activation"] == "linear"
    )


def can_pool_by_phases(conv: layers.Layer, activation: layers.Layer, pool: layers.Layer) -> bool:
    """Conv2D 3x3, stride 1, "same", bias, one input channel, even height and width -> plain ReLU -> 2x2 pooling.
    One input channel only: the strided form does 16 * 4 multiply-adds per window and channel pair where the
    original does 4 * 9, which pays only where the original runs far below the CPU's speed."""
    if type(conv) is not layers.Conv2D or not isinstance(pool, layers.MaxPooling2D):
        return False
    conv_config, pool_config = conv.get_config(), pool.get_config()
    height, width, channels = conv.input.shape[1:]
    return (
        conv_config["kernel_size"] == (3, 3)
        and conv_config["strides"] == conv_config["dilation_rate"] == (1, 1)
        and conv_config["padding"] == "same"
        and conv_config["activation"] == "linear"
        and conv_config["use_bias"]
        and conv_config["data_format"] == "channels_last"
        and channels == 1
        and height % WINDOW == 0
        and width % WINDOW == 0
        and isinstance(activation, layers.ReLU)
        and activation.max_value is None
        and activation.negative_slope == activation.threshold == 0
        and pool_config["pool_size"] == pool_config["strides"] == (WINDOW, WINDOW)
        and pool_config["padding"] == "valid"
    )


def phase_weights(kernel: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """Kernel [4, 4, 1, 4 * f] and bias of the stride-2 convolution. "same" padding on an even side pads one pixel
    before, so output (i, j) sees input rows and columns 2i-1 .. 2i+2, 2j-1 .. 2j+2: the 3x3 kernel, placed at offset
    (py, px), gives the original output at (2i+py, 2j+px), whose channels go to block py * 2 + px."""
    size, filters = 2 * WINDOW, kernel.shape[-1]
    strided = np.zeros((size, size, kernel.shape[2], PHASES * filters), kernel.dtype)
    for py in range(WINDOW):
        for px in range(WINDOW):
            block = (py * WINDOW + px) * filters
            strided[py : py + 3, px : px + 3, :, block : block + filters] = kernel
    return [strided, np.tile(bias, PHASES)]


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
