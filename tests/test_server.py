"""`mnist-serve` as operators run it: without a model it listens, says why it is not ready in one log line and in
/readyz, and stops cleanly; what start-up leaves behind for the garbage collector."""

from __future__ import annotations

import gc
import signal
from pathlib import Path

import httpx

from app.gc_policy import GC_YOUNG_THRESHOLD, collector_paused
from tests.conftest import COMMITTED_VERSION
from tests.model_versions import install
from tests.processes import START_TIMEOUT_S, serving


def test_a_missing_model_is_said_in_one_line_and_readiness_not_a_crash(tmp_path: Path) -> None:
    reason = f"model mnist not ready: no complete version under {tmp_path}/mnist/"
    with serving(MODEL_BASE_PATH=str(tmp_path), DRAIN_SECONDS="0") as live:
        assert live.output.seen(reason, times=1, timeout=START_TIMEOUT_S), live.output.text()
        ready = httpx.get(f"{live.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert httpx.get(f"{live.url}/healthz", timeout=30).status_code == 200
    assert live.process.returncode == 0 and "Application shutdown complete" in live.output.text()
    assert live.output.text().count(reason) == 1  # said once, not at every poll
    assert "Traceback" not in live.output.text()


def test_sighup_looks_at_the_model_folder_at_once_and_the_server_goes_on(tmp_path: Path) -> None:
    """With polling off (MODEL_POLL_SECONDS=0) a version copied in later is seen only on SIGHUP, a service
    manager's reload; the signal's default action would end the process."""
    model_dir = tmp_path / "mnist"
    install(COMMITTED_VERSION, model_dir, 1)
    env = {"MODEL_BASE_PATH": str(tmp_path), "MODEL_POLL_SECONDS": "0", "DRAIN_SECONDS": "0"}
    with serving(**env) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        live.wait_serving(workers=1)
        install(COMMITTED_VERSION, model_dir, 2)
        assert http.get("/model").json()["version"] == 1
        live.process.send_signal(signal.SIGHUP)
        assert live.output.seen("model mnist version 2 verified and serving", times=1, timeout=START_TIMEOUT_S)
        assert http.get("/model").json()["version"] == 2 and live.process.poll() is None
    assert live.process.returncode == 0 and "Traceback" not in live.output.text()


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
