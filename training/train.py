"""The training job, top to bottom: check the output, load data, build, fit, evaluate, export with its report."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from app.contract import DIGIT_SCORE_NAME, INPUT_NAME, NOT_A_DIGIT_BELOW, NUM_CLASSES, OUTPUT_NAME, SIGNATURE_NAME
from training.architectures import Arch
from training.calibration import fit_temperature
from training.data import Mnist, load_mnist
from training.evaluation import score
from training.export import check_writable, export_version, logits_of, serving_function
from training.model import augmenter, build_model
from training.report import write_metrics, write_pictures
from training.scene_samples import NONE_CLASS, scene_samples

# Scene digits and non-digits made from the validation images, for the per-epoch curves and the report's figures.
VALIDATION_SAMPLES = 300


@dataclass(frozen=True)
class TrainConfig:
    arch: Arch = "cnn"
    data_dir: Path | None = None
    output: Path = Path("models/mnist")
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 2e-3
    augment: bool = True
    seed: int = 42
    train_limit: int | None = None
    validation_size: int = 5000
    scene_digits: int = 0  # training digits also drawn into photos, scans and forms (training.scene_samples)
    non_digits: int = 0  # generated non-digits: with any, the network learns a "none of these" class
    label_smoothing: float = 0.0  # the share of a digit's target spread over the ten digits (training_targets)


@dataclass(frozen=True)
class TrainResult:
    version_dir: Path
    metrics: dict[str, Any]


def make_deterministic(seed: int) -> None:
    """Same seed, same weights: seeds Python, NumPy and TensorFlow, and asks TensorFlow for deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def split_training_data(data: Mnist, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first images train, the last `validation_size` of them validate (the test set stays unseen)."""
    images, labels = data.train_images, data.train_labels
    if config.train_limit is not None:
        images, labels = images[: config.train_limit], labels[: config.train_limit]
    held_out = min(config.validation_size, len(images) // 5)
    cut = len(images) - held_out
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def training_targets(labels: np.ndarray, classes: int, smoothing: float) -> np.ndarray:
    """One-hot targets, a digit's smoothed: `smoothing` of it spread evenly over the ten digits, a target the network
    can reach instead of one it approaches by ever larger logits (docs/training.md has what it changes). A
    non-digit's target stays certain, so the digit score keeps its meaning at the contract's threshold."""
    targets = keras.utils.to_categorical(labels, classes)
    digits = labels < NUM_CLASSES
    targets[digits, :NUM_CLASSES] = targets[digits, :NUM_CLASSES] * (1 - smoothing) + smoothing / NUM_CLASSES
    return targets


def training_dataset(images: np.ndarray, labels: np.ndarray, classes: int, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled batches of raw pixels and targets (training_targets), randomly transformed when `augment` is on."""
    targets = training_targets(labels, classes, config.label_smoothing)
    dataset = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), targets))
    dataset = dataset.shuffle(len(images), seed=config.seed).batch(config.batch_size)
    if config.augment:
        augment = augmenter(config.seed)
        dataset = dataset.map(
            lambda x, y: (tf.squeeze(augment(x[..., None], training=True), -1), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def compile_model(config: TrainConfig, steps: int) -> keras.Model:
    model = build_model(config.arch, none_class=config.non_digits > 0)
    # Cosine decay to zero over the whole run: the last epochs refine instead of bouncing around a minimum.
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def fit(model: keras.Model, train: tf.data.Dataset, val_x: np.ndarray, val_y: np.ndarray, epochs: int) -> dict:
    validation = (val_x.astype(np.float32), keras.utils.to_categorical(val_y, model.output_shape[-1]))
    verbose = 1 if sys.stdout.isatty() else 2  # progress bars for people, one line per epoch for logs
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=verbose)
    return {name: [round(float(v), 6) for v in values] for name, values in history.history.items()}


def describe(config: TrainConfig, data: Mnist, model: keras.Model, history: dict, seconds: float) -> dict[str, Any]:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return {
        "model_name": "mnist",
        "architecture": config.arch,
        "parameters": int(model.count_params()),
        "epochs": config.epochs,
        "seed": config.seed,
        "training_seconds": round(seconds, 1),
        "training_examples": int(len(data.train_images) if config.train_limit is None else config.train_limit),
        "config": settings,
        "history": history,
        "data_source": data.source,
        "data_checksums_sha256": data.checksums,
        "signature": {
            "name": SIGNATURE_NAME,
            "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, 28, 28], "range": "0-255, ink 255"},
            "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, NUM_CLASSES]},
        },
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


def in_batches(function: Callable[[Any], Any], images: np.ndarray, batch_size: int = 1000) -> list[Any]:
    """`function` of the images, a batch at a time (float32 tensors), so a large set never fills memory at once."""
    return [function(tf.constant(images[i : i + batch_size], tf.float32)) for i in range(0, len(images), batch_size)]


def predict_outputs(model: keras.Model, images: np.ndarray, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """The serving signature's outputs of the trained network, computed as the export computes them."""
    batches = in_batches(serving_function(model, temperature), images)
    return {name: np.concatenate([np.asarray(b[name]) for b in batches]) for name in batches[0]}


def calibrated_temperature(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """The temperature fitted on the held-out digits among `images` (training.calibration); 1.0 for a network
    without separate logits (the mlp, trained on hard targets)."""
    logits = logits_of(model)
    digits = labels < NUM_CLASSES
    if logits is None or not digits.any():
        return 1.0
    values = np.concatenate([np.asarray(batch) for batch in in_batches(logits, images[digits])])
    return fit_temperature(values, labels[digits])


def digit_score_figures(
    test: dict[str, np.ndarray], validation: dict[str, np.ndarray], validation_labels: np.ndarray
) -> dict[str, Any]:
    """How the digit score separates: MNIST test digits it flags, and on the generated validation samples the
    non-digits it recognises and the scene digits it flags."""
    flagged = test[DIGIT_SCORE_NAME] < NOT_A_DIGIT_BELOW
    low = validation[DIGIT_SCORE_NAME] < NOT_A_DIGIT_BELOW
    non_digit = validation_labels == NONE_CLASS
    return {
        "threshold": NOT_A_DIGIT_BELOW,
        "test_digits_flagged": round(float(flagged.mean()), 6),
        "validation_non_digits_recognised": round(float(low[non_digit].mean()), 6) if non_digit.any() else None,
        "validation_scene_digits_flagged": round(float(low[~non_digit].mean()), 6) if (~non_digit).any() else None,
    }


def train(config: TrainConfig, data: Mnist | None = None) -> TrainResult:
    """`data`, when given, is MNIST already loaded from `config.data_dir` (the command line checks it first)."""
    check_writable(config.output)
    data = data if data is not None else load_mnist(config.data_dir)
    make_deterministic(config.seed)
    train_x, train_y, val_x, val_y = split_training_data(data, config)
    extra_x, extra_y = scene_samples(train_x, train_y, config.scene_digits, config.non_digits, config.seed)
    sampled = min(VALIDATION_SAMPLES, config.scene_digits), min(VALIDATION_SAMPLES, config.non_digits)
    val_scenes_x, val_scenes_y = scene_samples(val_x, val_y, *sampled, config.seed + 1)
    classes = NUM_CLASSES + int(config.non_digits > 0)
    dataset = training_dataset(np.concatenate([train_x, extra_x]), np.concatenate([train_y, extra_y]), classes, config)
    model = compile_model(config, steps=config.epochs * int(dataset.cardinality()))

    held_out_x, held_out_y = np.concatenate([val_x, val_scenes_x]), np.concatenate([val_y, val_scenes_y])
    started = time.monotonic()
    history = fit(model, dataset, held_out_x, held_out_y, config.epochs)
    seconds = time.monotonic() - started

    temperature = calibrated_temperature(model, held_out_x, held_out_y)
    test = predict_outputs(model, data.test_images, temperature)
    probabilities = test[OUTPUT_NAME]
    metrics = {**describe(config, data, model, history, seconds), **score(probabilities, data.test_labels)}
    metrics["temperature"] = temperature
    if DIGIT_SCORE_NAME in test:
        validation = predict_outputs(model, val_scenes_x, temperature)
        metrics["digit_score"] = digit_score_figures(test, validation, val_scenes_y)

    def write_report(folder: Path) -> None:
        write_metrics(folder, metrics)
        write_pictures(
            folder,
            history,
            metrics,
            data.train_images,
            data.train_labels,
            data.test_images,
            data.test_labels,
            probabilities.argmax(axis=1),
        )

    canary = (data.test_images, data.test_labels)
    version_dir = export_version(model, config.output, write_report, canary=canary, temperature=temperature)
    return TrainResult(version_dir, metrics)
