"""Writing a trained model into the serving layout `<output>/<version>/`, atomically.

The version folder holds the SavedModel plus the report and the canary (training.canary). It is assembled in a
hidden temporary folder beside the versions and renamed into place only when complete, so a server watching
`<output>` never sees half a model, and an existing version is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.contract import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME, version_numbers
from training.canary import canary_sample, write_canary

if TYPE_CHECKING:
    import keras


class OutputError(Exception):
    """The output folder cannot be used; raised before training starts."""


def next_version(output: Path) -> int:
    """One past the highest version folder, complete or not, so an export never lands on an existing folder."""
    return max(version_numbers(output), default=0) + 1


def check_writable(output: Path) -> None:
    """Create `output` if needed and prove a file can be written there, so a bad path fails before training."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as error:
        raise OutputError(f"{output}: output folder is not writable ({error.strerror or error})") from None


def write_saved_model(model: keras.Sequential, path: Path, temperature: float = 1.0) -> None:
    """Export the serving signature: raw pixels float32 [N, 28, 28] (0-255) -> probabilities float32 [N, 10] (and,
    for a network with a "none of these" class, digit_score float32 [N]), computed by the network as
    training.folding prepares it for inference, the digits' logits divided by `temperature`."""
    import keras  # TensorFlow loads only when a model is written
    import tensorflow as tf

    from training.folding import inference_model

    network = inference_model(model)

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serving_function(network, temperature),
        input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def logits_of(network: keras.Sequential) -> Callable[[Any], Any] | None:
    """The network up to its "logits" layer, or None for a network whose last layer is its softmax (the mlp)."""
    names = [layer.name for layer in network.layers]
    if "logits" not in names:
        return None
    to_logits = network.layers[: names.index("logits") + 1]

    def logits(images: Any) -> Any:
        for layer in to_logits:
            images = layer(images, training=False)
        return images

    return logits


def serving_function(network: keras.Sequential, temperature: float = 1.0) -> Callable[[Any], dict[str, Any]]:
    """The signature's outputs from the network's logits (training.model.digit_outputs), or its softmax as it is."""
    from training.model import digit_outputs

    logits = logits_of(network)
    if logits is None:
        return lambda images: {OUTPUT_NAME: network(images, training=False)}
    return lambda images: digit_outputs(logits(images), temperature)


def export_version(
    model: keras.Sequential,
    output: Path,
    write_report: Callable[[Path], None],
    canary: tuple[np.ndarray, np.ndarray] | None = None,
    temperature: float = 1.0,
) -> Path:
    """Write model (its digits' logits divided by `temperature`), report and canary (from the test `(images,
    labels)`, when given) to a temporary folder, then rename it to the next free version; return that path."""
    check_writable(output)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=output))
    try:
        write_saved_model(model, staging, temperature)
        if canary is not None:
            write_canary(staging, *canary_sample(*canary))
        write_report(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a served model must be readable by the server's user
        while True:
            target = output / str(next_version(output))
            try:
                # rename() refuses a non-empty target, so a version another job just created survives: retry.
                os.rename(staging, target)
                return target
            except OSError:
                if not target.exists():
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
