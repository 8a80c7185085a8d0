"""`python -m app.classify`: the service's preprocessing and model on real image files, from the command line."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import COMMITTED_VERSION, MODELS, ROOT

EXAMPLES = ROOT / "docs" / "examples"


def classify(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "app.classify", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_classify_reads_image_files_as_the_service_does() -> None:
    result = classify(str(COMMITTED_VERSION), str(EXAMPLES / "seven.png"), str(EXAMPLES / "photo-four.jpg"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "seven.png: class 7" in lines[0] and "photo-four.jpg: class 4" in lines[1]
    assert lines[0].count(":0.") + lines[0].count(":1.") == 10  # all ten probabilities are printed
    assert ", a digit (score 0." in lines[0] or ", a digit (score 1.000)" in lines[0]
    newest = classify(str(MODELS / "mnist"), str(EXAMPLES / "two.png"))  # a model's folder: its newest version
    assert newest.returncode == 0 and "two.png: class 2" in newest.stdout, newest.stderr


def test_classify_refuses_what_the_service_refuses_in_one_line() -> None:
    broken = classify(str(COMMITTED_VERSION), str(ROOT / "README.md"))
    assert broken.returncode == 2 and "unsupported file type" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    missing = classify(str(MODELS / "mnist" / "99"), str(EXAMPLES / "seven.png"))
    assert missing.returncode == 2 and "99" in missing.stderr
