"""Running Python work on a background thread at a bounded share of the interpreter.

Loading a SavedModel is mostly Python that holds the GIL. On a busy server, a load on the loader thread takes the
GIL in turns with the event loop, about half of the time, so every request in flight waits on it. `paced(share)`
makes the calling thread rest after each short slice of running, long enough that it runs at most `share` of the
time: a load then takes longer, and the requests served meanwhile wait on it much less.

It uses the interpreter's profiling hook (`sys.setprofile`), which is per thread: only the calling thread is slowed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# How long the paced thread may run before it rests: short enough that a request waits at most this long for the GIL
# on its account.
SLICE_SECONDS = 0.002


class Pacer:
    """The profiling hook: after each slice of wall time, rest in proportion to the CPU time this thread used in it
    (CPU time, so that time spent waiting for the GIL does not count as running)."""

    def __init__(self, share: float) -> None:
        self.rest_per_cpu_second = (1.0 - share) / share
        self.slice_started = time.perf_counter()
        self.cpu_at_rest = time.thread_time()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if time.perf_counter() - self.slice_started < SLICE_SECONDS:
            return
        time.sleep((time.thread_time() - self.cpu_at_rest) * self.rest_per_cpu_second)  # releases the GIL
        self.slice_started = time.perf_counter()
        self.cpu_at_rest = time.thread_time()


@contextmanager
def paced(share: float) -> Iterator[None]:
    """Within the block, the calling thread runs Python at most `share` (0 < share <= 1) of the wall time; 1 leaves
    it unpaced. A profiler already set on the thread is put back afterwards."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], not {share}")
    if share == 1.0:
        yield
        return
    previous = sys.getprofile()
    sys.setprofile(Pacer(share))
    try:
        yield
    finally:
        sys.setprofile(previous)
