"""`mnist-serve` as operators run it: a missing model stops the process at start with one line and exit code 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port


def test_missing_model_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_BASE_PATH": str(tmp_path), "PORT": str(free_port()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "app.server"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3
    reasons = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(reasons) == 1 and f"no model version under {tmp_path}/mnist/" in reasons[0], result.stderr
    assert "Traceback" not in result.stderr
