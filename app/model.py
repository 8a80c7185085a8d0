"""Finding, loading and running one version of the exported SavedModel. Nothing about HTTP or images."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import IMAGE_SIDE, SIGNATURE_NAME, version_numbers
from app.tf_import import import_tensorflow

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)


class ModelLoadError(RuntimeError):
    """No usable model: the message is one line saying why."""


class ModelNotFoundError(LookupError):
    """A request names a model or version this server does not serve."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    path: Path
    input_name: str
    output_name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0


def available_versions(model_dir: Path) -> list[int]:
    """The version folders that hold a complete SavedModel (a saved_model.pb)."""
    return [v for v in version_numbers(model_dir) if (model_dir / str(v) / "saved_model.pb").is_file()]


def choose_version(model_dir: Path, pinned: int | None) -> int:
    versions = available_versions(model_dir)
    if not versions:
        raise ModelLoadError(
            f"no model version under {model_dir}/ (expected {model_dir}/<N>/saved_model.pb); "
            "train one with 'python -m training' or set MODEL_BASE_PATH"
        )
    if pinned is None:
        return versions[-1]
    if pinned not in versions:
        raise ModelLoadError(f"MODEL_VERSION={pinned} not found under {model_dir}/ (available: {versions})")
    return pinned


def configure_threads(intra_op: int, inter_op: int) -> None:
    """Size TensorFlow's pools; must run before TensorFlow executes its first op in this process."""
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # TensorFlow already ran in this process (an embedding app, a test session): keep its pools
        log.warning("TensorFlow is already initialised; thread pools left as they are")


class DigitModel:
    """The loaded serving signature: `predict(float32 [N, 28, 28] raw pixels) -> float32 [N, 10]`."""

    def __init__(self, model_dir: Path, name: str, version: int | None = None) -> None:
        tf = import_tensorflow()

        chosen = choose_version(model_dir, version)
        path = model_dir / str(chosen)
        started = time.monotonic()
        try:
            self._loaded = tf.saved_model.load(str(path))  # kept: the function's variables live on this object
            self._function = self._loaded.signatures[SIGNATURE_NAME]
        except Exception as error:  # TensorFlow raises many kinds for a damaged or foreign SavedModel
            raise ModelLoadError(f"cannot load {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
        inputs = self._function.structured_input_signature[1]
        outputs = self._function.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(f"{path}: signature {SIGNATURE_NAME} must have one input and one output")
        input_name, output_name = next(iter(inputs)), next(iter(outputs))
        self._input_name, self._output_name = input_name, output_name
        self._tf = tf
        self.predict(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))  # warm-up: traces and allocates once
        self.info = ModelInfo(
            name=name,
            version=chosen,
            path=path,
            input_name=input_name,
            output_name=output_name,
            metrics=read_metrics(path),
            load_seconds=round(time.monotonic() - started, 3),
        )
        log.info("loaded model %s version %d from %s in %.2f s", name, chosen, path, self.info.load_seconds)

    def predict(self, images: np.ndarray) -> np.ndarray:
        tensor = self._tf.constant(images, dtype=self._tf.float32)
        result = self._function(**{self._input_name: tensor})[self._output_name]
        return np.asarray(result.numpy(), dtype=np.float32)


def read_metrics(version_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((version_dir / METRICS_FILE).read_text()))
    except (OSError, ValueError):
        return {}
