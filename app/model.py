"""Finding, loading and running one version of the exported SavedModel. Nothing about HTTP or images."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import (
    DIGIT_SCORE_NAME,
    IMAGE_SIDE,
    NOT_A_DIGIT_BELOW,
    NUM_CLASSES,
    OUTPUT_NAME,
    SIGNATURE_NAME,
    SIGNATURE_OUTPUTS,
    version_numbers,
)
from app.tf_import import import_tensorflow

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
# What DigitModel.predict gives for each image: one record of named fields, so that the batching engine, which cuts
# a batch's answer into each request's rows, carries both outputs without knowing them.
ANSWER = np.dtype([(OUTPUT_NAME, np.float32, (NUM_CLASSES,)), (DIGIT_SCORE_NAME, np.float32)])


class ModelLoadError(RuntimeError):
    """No usable model: the message is one line saying why. `code` is TensorFlow Serving's name for the kind of
    error (shown in its status), `reason` a short word for metrics: load, contract or canary."""

    def __init__(self, message: str, code: str = "UNKNOWN", reason: str = "load") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ModelNotFoundError(LookupError):
    """A request names a model or version this server does not serve."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    path: Path
    input_name: str
    output_names: tuple[str, ...] = (OUTPUT_NAME,)
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


@dataclass(frozen=True)
class Predictions:
    """What the service answers for N images, read from `DigitModel.predict`'s records."""

    probabilities: np.ndarray  # float32 [N, 10]
    is_digit: np.ndarray  # bool [N]
    digit_scores: np.ndarray | None  # float32 [N] in [0, 1]; None for a version without a digit_score output

    @classmethod
    def from_records(cls, records: np.ndarray, has_digit_score: bool) -> Predictions:
        # Copies, not views of the records: JSON writers and binary outputs take whole contiguous arrays.
        probabilities = np.ascontiguousarray(records[OUTPUT_NAME])
        scores = np.ascontiguousarray(records[DIGIT_SCORE_NAME])
        return cls(probabilities, scores >= NOT_A_DIGIT_BELOW, scores if has_digit_score else None)


def blank_images(images: np.ndarray) -> np.ndarray:
    """bool [N]: the images (float32 [N, 28, 28]) with no ink at all, which is what the preprocessing makes of an
    upload where it finds no digit."""
    return np.asarray((images <= 0).all(axis=(1, 2)))


class DigitModel:
    """The loaded serving signature: `predict(float32 [N, 28, 28] raw pixels)` gives N records (`ANSWER`), each
    the image's 10 probabilities and its digit score (read as `Predictions`).

    Loading checks the signature's shape against the contract (app.contract) and warms it up; app.verification then
    checks what it computes before a version takes traffic."""

    def __init__(self, model_dir: Path, name: str, version: int | None = None) -> None:
        tf = import_tensorflow()

        chosen = choose_version(model_dir, version)
        path = model_dir / str(chosen)
        started = time.monotonic()
        try:
            self._loaded = tf.saved_model.load(str(path))  # kept: the function's variables live on this object
            self._function = self._loaded.signatures[SIGNATURE_NAME]
        except Exception as error:  # TensorFlow raises many kinds for a damaged or foreign SavedModel
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ModelLoadError(f"cannot load {path}: {type(error).__name__}: {message}", "DATA_LOSS") from None
        self._tf = tf
        self._input_name = self._check_signature(path)
        self.output_names = tuple(sorted(self._function.structured_outputs))
        self.has_digit_score = DIGIT_SCORE_NAME in self.output_names
        self.predict(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))  # warm-up: traces and allocates once
        self.info = ModelInfo(
            name=name,
            version=chosen,
            path=path,
            input_name=self._input_name,
            output_names=self.output_names,
            metrics=read_metrics(path),
            load_seconds=round(time.monotonic() - started, 3),
        )
        log.info("loaded model %s version %d from %s in %.2f s", name, chosen, path, self.info.load_seconds)

    def _check_signature(self, path: Path) -> str:
        """The input's name, once the signature has the contract's shape: one float32 [N, 28, 28] input and the
        outputs `probabilities` (with `digit_score` optionally)."""
        inputs = self._function.structured_input_signature[1]
        outputs = set(self._function.structured_outputs)
        wanted = (
            f"one float32 [N, {IMAGE_SIDE}, {IMAGE_SIDE}] input and the output '{OUTPUT_NAME}' "
            f"(with '{DIGIT_SCORE_NAME}' optionally)"
        )
        problem = None
        if len(inputs) != 1:
            problem = f"{len(inputs)} inputs"
        else:
            spec = next(iter(inputs.values()))
            shape = spec.shape.as_list() if spec.shape.rank is not None else None
            if spec.dtype != self._tf.float32 or shape is None or shape[1:] != [IMAGE_SIDE, IMAGE_SIDE]:
                problem = f"input {spec.dtype.name} {shape}"
        if problem is None and (OUTPUT_NAME not in outputs or not outputs <= SIGNATURE_OUTPUTS):
            problem = f"outputs {sorted(outputs)}"
        if problem is not None:
            message = f"{path}: signature {SIGNATURE_NAME} has {problem}; the contract is {wanted}"
            raise ModelLoadError(message, "INVALID_ARGUMENT", "contract")
        return str(next(iter(inputs)))

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of the signature for `images`, by name (verification reads them all)."""
        tensor = self._tf.constant(images, dtype=self._tf.float32)
        return {name: np.asarray(value.numpy()) for name, value in self._function(**{self._input_name: tensor}).items()}

    def predict(self, images: np.ndarray) -> np.ndarray:
        """N records (`ANSWER`): each image's 10 probabilities and its digit score: 0 for a blank image (no ink is
        no digit, whatever the network makes of it), else the version's digit_score, or 1 where it has none."""
        tensor = self._tf.constant(images, dtype=self._tf.float32)
        outputs = self._function(**{self._input_name: tensor})
        records = np.empty(len(images), dtype=ANSWER)
        records[OUTPUT_NAME] = outputs[OUTPUT_NAME].numpy()
        records[DIGIT_SCORE_NAME] = outputs[DIGIT_SCORE_NAME].numpy().reshape(-1) if self.has_digit_score else 1.0
        records[DIGIT_SCORE_NAME][blank_images(images)] = 0.0
        # A version's rounding can leave a probability or its score a hair past 1 (verification tolerates it); the
        # answers keep to the contract's [0, 1]. Both fields are float32, so one clip covers the records' values.
        values = records.view(np.float32)
        np.clip(values, 0.0, 1.0, out=values)
        return records

    def answer(self, images: np.ndarray) -> Predictions:
        """`predict` read as `Predictions`, for callers outside the batching engine."""
        return Predictions.from_records(self.predict(images), self.has_digit_score)


def read_metrics(version_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((version_dir / METRICS_FILE).read_text()))
    except (OSError, ValueError):
        return {}
