"""Dynamic micro-batching: concurrent requests share one model call. Nothing about images or HTTP.

Callers on the event loop `await engine.predict(images)`; a single worker thread takes whatever is queued (up to
`max_batch` images, waiting at most `max_wait` for more once the first arrives), runs the model once, and hands
each caller its own rows. The queue is bounded in images: when full, `QueueFullError` is raised at once instead of
building a backlog that would only time out later.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]


class QueueFullError(RuntimeError):
    """The engine has `max_queue` images waiting; the client should retry shortly."""


class EngineStoppedError(RuntimeError):
    """The engine is shutting down and takes no new work."""


class InferenceError(RuntimeError):
    """The model call for this request's batch failed."""


@dataclass
class Job:
    images: np.ndarray  # float32 [k, 28, 28]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchReport:
    """One model call, as observers (e.g. /metrics) see it."""

    size: int
    seconds: float
    queue_waits: list[float]  # one per request in the batch
    probabilities: np.ndarray | None  # None when the call failed


@dataclass
class BatchStats:
    """Counters that only ever grow, and the observers told of every batch (on the worker thread, before the
    results are handed back, so a client that reads /metrics after its answer sees its request counted)."""

    batches: int = 0
    images: int = 0
    failures: int = 0
    observers: list[Callable[[BatchReport], None]] = field(default_factory=list)


_STOP = object()


class BatchingEngine:
    def __init__(self, predict: Predict, max_batch: int, max_wait_s: float, max_queue: int) -> None:
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._pending = 0  # images queued or running; guarded by _lock
        self._lock = threading.Lock()
        self._accepting = True
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name="batching-engine", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [k, 10] for `images` [k, 28, 28], computed in a shared batch."""
        count = len(images)
        with self._lock:
            if not self._accepting:
                raise EngineStoppedError("the service is shutting down")
            if self._pending + count > self.max_queue:
                raise QueueFullError(f"{self._pending} images are already waiting (limit {self.max_queue})")
            self._pending += count
        loop = asyncio.get_running_loop()
        job = Job(images, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _collect(self, first: Job) -> list[Job]:
        """`first` plus whatever arrives within max_wait, up to max_batch images (a job is never split)."""
        jobs, size = [first], len(first.images)
        deadline = time.perf_counter() + self.max_wait_s
        while size < self.max_batch:
            timeout = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # seen again by _run once this batch is done
                break
            assert isinstance(item, Job)
            if size + len(item.images) > self.max_batch:
                self._run_batch([item])  # too big to join: it runs on its own rather than waiting
                continue
            jobs.append(item)
            size += len(item.images)
        return jobs

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Job)
            self._run_batch(self._collect(item))

    def _run_batch(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        batch = np.concatenate([job.images for job in jobs]) if len(jobs) > 1 else jobs[0].images
        probabilities: np.ndarray | None = None
        try:
            probabilities = self._predict(batch)
            outcome: list[np.ndarray | BaseException] = []
            offset = 0
            for job in jobs:
                outcome.append(probabilities[offset : offset + len(job.images)])
                offset += len(job.images)
        except Exception as error:  # the model failed: fail this batch's requests only, keep serving
            log.exception("model call failed for a batch of %d images", len(batch))
            self.stats.failures += 1
            failure = InferenceError(f"inference failed: {type(error).__name__}")
            outcome = [failure for _ in jobs]
        finished = time.perf_counter()
        with self._lock:
            self._pending -= len(batch)
        self.stats.batches += 1
        self.stats.images += len(batch)
        report = BatchReport(len(batch), finished - started, [started - job.enqueued for job in jobs], probabilities)
        for observe in self.stats.observers:
            observe(report)
        for job, result in zip(jobs, outcome, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result)

    async def close(self) -> None:
        """Stop taking work, finish everything already queued, then stop the worker thread."""
        with self._lock:
            self._accepting = False
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)


def _settle(future: asyncio.Future[np.ndarray], result: np.ndarray | BaseException) -> None:
    if future.cancelled():  # the client went away; nothing to deliver
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
