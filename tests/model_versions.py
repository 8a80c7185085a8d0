"""Version folders for the repository's tests, made from the committed model: good copies, a re-export with disturbed
weights (its canary fails), one whose digit score rounds past 1, a SavedModel with another signature, damaged and
half-copied folders."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from app.contract import CANARY_FILE, DIGIT_SCORE_NAME, INPUT_NAME, SIGNATURE_NAME
from tests.conftest import COMMITTED_VERSION


def install(source: Path, model_dir: Path, version: int) -> Path:
    """Copy `source` in as `version`, the way an export does: into a hidden folder first, then one rename."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    shutil.copytree(source, staging, dirs_exist_ok=True)
    target = model_dir / str(version)
    os.rename(staging, target)
    return target


def half_copy(model_dir: Path, version: int) -> Path:
    """A copy interrupted before its saved_model.pb: variables only."""
    target = model_dir / str(version)
    shutil.copytree(COMMITTED_VERSION / "variables", target / "variables")
    return target


def truncated(model_dir: Path, version: int) -> Path:
    """A complete-looking folder whose saved_model.pb is cut in half."""
    target = install(COMMITTED_VERSION, model_dir, version)
    data = (target / "saved_model.pb").read_bytes()
    (target / "saved_model.pb").write_bytes(data[: len(data) // 2])
    return target


def disturbed_weights(target: Path) -> Path:
    """The committed model with every weight moved a little, re-exported with the same signature and the original's
    canary: it loads and keeps the contract, but its answers are not the exported ones."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(COMMITTED_VERSION))
    rng = np.random.default_rng(15)
    for variable in loaded.variables:
        value = variable.numpy()
        variable.assign(value + rng.normal(0, 0.2 * (float(value.std()) or 0.01), value.shape).astype(value.dtype))
    tf.saved_model.save(loaded, str(target), signatures={SIGNATURE_NAME: loaded.signatures[SIGNATURE_NAME]})
    (target / CANARY_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(COMMITTED_VERSION / CANARY_FILE, target / CANARY_FILE)
    return target


def score_past_one(target: Path) -> Path:
    """The committed model with its digit score multiplied by 1 + 1e-4 and its canary: a version whose arithmetic
    leaves the score of a sure digit a little past 1, as a sum of rounded shares can."""
    import tensorflow as tf

    class PastOne(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.committed = tf.saved_model.load(str(COMMITTED_VERSION))

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.float32, name=INPUT_NAME)])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = dict(self.committed.signatures[SIGNATURE_NAME](**{INPUT_NAME: images}))
            outputs[DIGIT_SCORE_NAME] = outputs[DIGIT_SCORE_NAME] * (1 + 1e-4)
            return outputs

    module = PastOne()
    tf.saved_model.save(module, str(target), signatures={SIGNATURE_NAME: module.serve})
    (target / CANARY_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(COMMITTED_VERSION / CANARY_FILE, target / CANARY_FILE)
    return target


def other_signature(target: Path) -> Path:
    """A valid SavedModel with another contract: flat [N, 784] input, 'scores' output."""
    import tensorflow as tf

    class Flat(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="pixels")])
        def serve(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"scores": tf.nn.softmax(pixels[:, :10])}

    module = Flat()
    tf.saved_model.save(module, str(target), signatures={SIGNATURE_NAME: module.serve})
    return target


def damaged_canary(model_dir: Path, version: int, damage: str) -> Path:
    """A good version whose canary file is cut short ("truncated") or is a folder ("folder")."""
    target = install(COMMITTED_VERSION, model_dir, version)
    canary = target / CANARY_FILE
    data = canary.read_bytes()
    canary.unlink()
    if damage == "truncated":
        canary.write_bytes(data[: len(data) // 2])
    else:
        canary.mkdir()
    return target
