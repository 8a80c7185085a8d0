"""`mnist-serve` as operators run it: a missing model stops the process at start with one line and exit code 3;
what start-up leaves behind for the garbage collector."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from app.gc_policy import GC_YOUNG_THRESHOLD, collector_paused
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


def test_start_up_objects_are_frozen_and_the_collector_runs_less_often_after() -> None:
    before = gc.get_threshold()
    try:
        with collector_paused():
            assert not gc.isenabled()
            frozen_before = gc.get_freeze_count()
            start_up = [[index] for index in range(5000)]  # stands for the model's long-lived objects
        assert gc.isenabled() and gc.get_freeze_count() >= frozen_before + len(start_up)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # still a working collector: an unreachable cycle is found
    finally:
        gc.set_threshold(*before)
