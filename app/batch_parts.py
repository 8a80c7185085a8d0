"""What the batching engine queues and runs: a request's job, the rows of it one model call takes, and the report
of each call that observers such as /metrics read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Prepare = Callable[[], np.ndarray]


@dataclass(eq=False)
class Job:
    inputs: np.ndarray | Prepare  # [count, 28, 28] pixels (uint8 or float32), or a function returning them
    count: int
    future: asyncio.Future[np.ndarray]
    bulk: bool  # cut into chunks (more than max_batch images)
    enqueued: float = field(default_factory=time.perf_counter)
    sent: int = 0  # rows handed to the worker so far
    answered: int = 0  # rows whose answers are in `output`
    output: np.ndarray | None = None  # a bulk job's answer, filled chunk by chunk


@dataclass(frozen=True)
class Part:
    """Rows start:stop of one job, as one model call takes them."""

    job: Job
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class BatchReport:
    """One model call, as observers (e.g. /metrics) see it."""

    size: int
    seconds: float
    queue_waits: list[float]  # one per request whose first rows are in the batch
    records: np.ndarray | None  # the model's answer, a record per image (DigitModel.predict); None if it failed


@dataclass
class BatchStats:
    """Counters that only ever grow, and the observers told of every batch (on the worker thread, before the
    results are handed back, so a client that reads /metrics after its answer sees its request counted)."""

    batches: int = 0
    images: int = 0
    failures: int = 0
    dropped: int = 0  # images that left the queue unscored: their request timed out or its client went away
    observers: list[Callable[[BatchReport], None]] = field(default_factory=list)
    # Told each request's image count as it is queued, in the caller's context (e.g. its access log line).
    submitted: list[Callable[[int], None]] = field(default_factory=list)
    drop_observers: list[Callable[[int], None]] = field(default_factory=list)  # told each drop's image count


def rows_of(part: Part) -> np.ndarray:
    inputs = part.job.inputs
    assert isinstance(inputs, np.ndarray)  # prepared on the worker before the model runs
    return inputs if part.size == len(inputs) else inputs[part.start : part.stop]
