"""app.tf_import: the serving import skips what serving never uses, nothing is lost by it, and any surprise falls
back to the plain import."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from app.tf_import import native_output_logged
from tests.conftest import MODELS, ROOT

# Run in a fresh interpreter: the test session itself has long imported TensorFlow the ordinary way.
SCRIPT = f"""
import json, logging, sys
import numpy as np
from pathlib import Path
import app.tf_import
from app.model import DigitModel
from app.tf_import import LAZY_NAMESPACES, api_module, import_tensorflow

warnings = []
logging.getLogger("app.tf_import").addHandler(logging.Handler())
logging.getLogger("app.tf_import").handlers[0].emit = lambda record: warnings.append(record.getMessage())
if sys.argv[1] == "surprise":
    # A release whose core needs a module the trimmed import skips.
    app.tf_import.SKIPPED_IMPORTS = ("tensorflow.python.framework.ops",)
tf = import_tensorflow()
model = DigitModel(Path({str(MODELS / "mnist")!r}), "mnist")
seven = np.zeros((1, 28, 28), np.float32)
seven[0, 6:8, 6:22] = 255
seven[0, 8:22, 18:20] = 255
skipped = [name for name in LAZY_NAMESPACES if api_module(name) not in sys.modules]
optimizers_skipped = "keras.src.optimizers" not in sys.modules
probabilities = model.answer(seven).probabilities[0]
# Later users of the namespaces get the real modules.
total = int(tf.data.Dataset.range(4).reduce(np.int64(0), lambda a, b: a + b).numpy())
v1 = tf.compat.v1.__name__
half = float(tf.nn.softmax(tf.constant([0.0, 0.0])).numpy()[0])
import keras
dense = keras.layers.Dense(2)
print(json.dumps({{
    "skipped": skipped, "optimizers_skipped": optimizers_skipped, "sum": float(probabilities.sum()),
    "total": total, "v1": v1, "half": half, "data_type": type(tf.data).__name__, "keras": keras.__version__,
    "warnings": warnings,
}}))
"""


def run_fresh(case: str, script: str = SCRIPT) -> dict[str, Any]:
    """Run `script` in a fresh interpreter with `case` as its argument; its last line of output, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, case],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def assert_tensorflow_whole(report: dict[str, Any]) -> None:
    assert abs(report["sum"] - 1.0) < 1e-4  # the committed model loaded and answered
    assert report["total"] == 6 and report["v1"] == "tensorflow._api.v2.compat.v1" and report["half"] == 0.5
    assert report["data_type"] == "module"  # tf.data is the real module
    assert report["keras"]


def test_serving_import_skips_unused_namespaces_and_keeps_them_usable() -> None:
    report = run_fresh("trimmed")
    assert {"compat", "__internal__", "nn"} <= set(report["skipped"])  # not imported to serve
    assert report["optimizers_skipped"]
    assert report["warnings"] == []
    assert_tensorflow_whole(report)


def test_a_failing_trimmed_import_falls_back_to_the_plain_one_and_says_so() -> None:
    report = run_fresh("surprise")
    assert len(report["warnings"]) == 1 and "importing it whole" in report["warnings"][0]
    assert report["skipped"] == []  # the plain import loaded every namespace
    assert_tensorflow_whole(report)


# The serving image leaves out what serving never imports (the Dockerfile's serve-build stage); here they are made
# unimportable, as if not installed: found by no finder, so `importlib.util.find_spec` gives no origin and an import
# raises ModuleNotFoundError.
NOT_IN_THE_SERVING_IMAGE = ("keras", "h5py", "grpc", "rich", "pygments", "markdown_it", "mdurl", "namex", "setuptools")
WITHOUT = f"""
import importlib.abc, importlib.machinery, json, sys
from pathlib import Path

GONE = {NOT_IN_THE_SERVING_IMAGE!r}


class Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)

    def exec_module(self, module):
        pass


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in GONE:
            return importlib.machinery.ModuleSpec(name, Missing(), origin=None)
        return None


sys.meta_path.insert(0, NotInstalled())
import app.server, app.main
from app.imaging import preprocess
from app.model import DigitModel

model = DigitModel(Path({str(MODELS / "mnist")!r}), "mnist")
image = preprocess(Path("docs/examples/photo-four.jpg").read_bytes())
probabilities = model.answer(image[None]).probabilities[0]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in GONE)
print(json.dumps({{"digit": int(probabilities.argmax()), "loaded": loaded}}))
"""


def test_serving_needs_none_of_the_packages_the_serving_image_leaves_out() -> None:
    report = run_fresh("without", WITHOUT)
    assert report == {"digit": 4, "loaded": []}


def test_what_tensorflow_writes_to_the_error_descriptor_on_import_is_logged(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorFlow's C++ start-up messages bypass Python's logging and TF_CPP_MIN_LOG_LEVEL: they become log records
    (so a JSON log stream stays JSON). A log line written meanwhile (the import runs while requests are served) goes
    to stderr as it is, and descriptor 2 is the same file again afterwards."""
    # As in the service: sys.stderr writes to descriptor 2 (pytest's capture gives it a file of its own).
    monkeypatch.setattr(sys, "stderr", open(2, "w", buffering=1, closefd=False))  # noqa: SIM115
    access = logging.getLogger("test.access")
    handler = logging.StreamHandler(sys.stderr)
    access.addHandler(handler)
    before = os.fstat(2)
    try:
        with caplog.at_level(logging.INFO, logger="app.tf_import"), native_output_logged():
            os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\n\n")
            access.warning("GET /healthz 200")
    finally:
        access.removeHandler(handler)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    native = [r.getMessage() for r in caplog.records if r.name == "app.tf_import"]
    assert native == ["TensorFlow: I0000 port.cc:153] oneDNN custom operations are on."]
    assert capfd.readouterr().err.splitlines() == ["GET /healthz 200"]
