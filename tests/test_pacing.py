"""app.pacing: a paced thread runs Python at most its share of the time, and leaves the profiler as it was."""

from __future__ import annotations

import sys
import threading
import time
from types import FrameType
from typing import Any

import pytest

from app.pacing import paced


def fibonacci(n: int) -> int:
    """Python work made of many calls, as loading a SavedModel is."""
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def busy_for(cpu_seconds: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < cpu_seconds:
        fibonacci(12)


def cpu_share_of(share: float, cpu_seconds: float) -> float:
    """The share of wall time a thread doing `cpu_seconds` of Python work under `paced(share)` spent on the CPU."""
    measured: dict[str, float] = {}

    def work() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        with paced(share):
            busy_for(cpu_seconds)
        measured["share"] = (time.thread_time() - cpu) / (time.perf_counter() - wall)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    return measured["share"]


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_a_paced_thread_runs_at_most_its_share(share: float) -> None:
    # The only slack is the last slice, which ends without a rest.
    assert cpu_share_of(share, 0.15) <= share + 0.03


def test_share_1_leaves_the_thread_unpaced() -> None:
    with paced(1.0):
        assert sys.getprofile() is None


def test_only_the_calling_thread_is_paced_and_its_profiler_is_put_back() -> None:
    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        return None

    seen_elsewhere: list[object] = []
    sys.setprofile(profiler)
    try:
        with paced(0.25):
            assert sys.getprofile() not in (None, profiler)
            other = threading.Thread(target=lambda: seen_elsewhere.append(sys.getprofile()))
            other.start()
            other.join()
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert seen_elsewhere == [None]


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"), paced(share):
        pass
