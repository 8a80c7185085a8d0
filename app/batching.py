"""Dynamic micro-batching: concurrent requests share one model call. Nothing about images or HTTP.

Callers on the event loop `await engine.predict(images)`. Requests wait on the event loop; a batch of them (up to
`max_batch` images) is handed to one worker thread, which runs the model once and hands every caller its own rows.
`predict_prepared(prepare, count)` sends a function instead of the images: the worker calls it just before the
batch runs, which spares the caller a round trip through another thread for cheap work such as decoding a small
image.

A batch is sent once the worker is free and either `max_batch` images are waiting, or the requests have stopped
coming (none new for `quiet`), or the oldest request has waited `max_wait` (time spent behind the previous batch
counts). Waiting out a burst matters on a busy single core: a model call costs 8-29 % less per image on 64
images than on 16-22 (benchmarks/model_cost.py), and while the model waits the event loop gets the core to read the
rest of the burst. The thread hand-offs cost one wake-up per batch, not one per request. Waiting only pays when
company comes: after LONELY_BATCHES batches in a row of one request each, a request is sent at once until a batch
holds several again (a single client gets the model's latency, not the model's plus `quiet`).

The queue is bounded in images: when full, `QueueFullError` is raised at once instead of building a backlog that
would only time out later.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
Prepare = Callable[[], np.ndarray]
Answer = np.ndarray | BaseException
LONELY_BATCHES = 3


class QueueFullError(RuntimeError):
    """The engine has `max_queue` images waiting; the client should retry shortly."""


class EngineStoppedError(RuntimeError):
    """The engine is shutting down and takes no new work."""


class InferenceError(RuntimeError):
    """The model call for this request's batch failed."""


@dataclass
class Job:
    inputs: np.ndarray | Prepare  # float32 [count, 28, 28], or a function returning them (run on the worker)
    count: int
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


class BatchingEngine:
    """Bound to the event loop of its first caller; everything but the model call runs on that loop."""

    def __init__(self, predict: Predict, max_batch: int, max_wait_s: float, quiet_s: float, max_queue: int) -> None:
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.quiet_s = quiet_s
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: deque[Job] = deque()
        self._waiting_images = 0
        self._pending = 0  # images waiting or running
        self._worker_busy = False
        self._lonely = 0  # batches in a row that held a single request
        self._timer: asyncio.TimerHandle | None = None
        self._accepting = True
        self._idle = asyncio.Event()  # set whenever nothing is waiting or running (close() waits for it)
        self._inbox: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="batching-engine", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [k, 10] for `images` [k, 28, 28], computed in a shared batch."""
        return await self._submit(images, len(images))

    async def predict_prepared(self, prepare: Prepare, count: int) -> np.ndarray:
        """Probabilities [count, 10] for the images `prepare()` returns; it runs on the worker thread, so it must be
        quick (it delays the batch). If it raises, this request fails with that error and the batch goes on."""
        return await self._submit(prepare, count)

    async def _submit(self, inputs: np.ndarray | Prepare, count: int) -> np.ndarray:
        loop = self._bind_loop()
        if not self._accepting:
            raise EngineStoppedError("the service is shutting down")
        if self._pending + count > self.max_queue:
            raise QueueFullError(f"{self._pending} images are already waiting (limit {self.max_queue})")
        job = Job(inputs, count, loop.create_future())
        self._pending += count
        self._idle.clear()
        self._waiting.append(job)
        self._waiting_images += count
        if not self._worker_busy:
            self._schedule()
        return await job.future

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a BatchingEngine serves the event loop it was first used on")
        return loop

    def _schedule(self) -> None:
        """The worker is idle: send a batch now if it is full, the requests have stopped coming or the oldest has
        waited max_wait; else look again when the earlier of the last two is due (a new arrival moves it)."""
        oldest, newest = self._waiting[0], self._waiting[-1]  # requests join at the end: newest = last arrival
        due = min(oldest.enqueued + self.max_wait_s, newest.enqueued + self.quiet_s)
        alone = self._lonely >= LONELY_BATCHES and len(self._waiting) == 1
        now = time.perf_counter()
        if alone or self._waiting_images >= self.max_batch or now >= due:
            self._dispatch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(due - now, self._look_again)

    def _look_again(self) -> None:
        self._timer = None
        if self._waiting and not self._worker_busy:
            self._schedule()

    def _dispatch(self) -> None:
        """Hand the worker the oldest waiting jobs, up to max_batch images (a job is never split; one larger than
        max_batch goes alone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._worker_busy or not self._waiting:
            return
        first = self._waiting.popleft()
        batch, size = [first], first.count
        while self._waiting and size + self._waiting[0].count <= self.max_batch:
            job = self._waiting.popleft()
            batch.append(job)
            size += job.count
        self._waiting_images -= size
        self._worker_busy = True
        self._inbox.put(batch)

    def _finished(self, batch: list[Job], answers: list[Answer]) -> None:
        """On the loop: the worker is done with `batch`. Answer its callers, then see to the next batch."""
        self._worker_busy = False
        self._lonely = self._lonely + 1 if len(batch) == 1 else 0
        self._pending -= sum(job.count for job in batch)
        for job, answer in zip(batch, answers, strict=True):
            if job.future.cancelled():  # the client went away; nothing to deliver
                continue
            if isinstance(answer, BaseException):
                job.future.set_exception(answer)
            else:
                job.future.set_result(answer)
        if self._waiting:
            self._schedule()
        elif self._pending == 0:
            self._idle.set()

    # ---------------------------------------------------------------- worker thread

    def _work(self) -> None:
        while (batch := self._inbox.get()) is not None:
            answers = self._run_batch(batch)
            assert self._loop is not None  # a batch exists only after a caller bound the loop
            self._loop.call_soon_threadsafe(self._finished, batch, answers)

    def _run_batch(self, batch: list[Job]) -> list[Answer]:
        failures = [self._prepare(job) for job in batch]
        ready = [job for job, failure in zip(batch, failures, strict=True) if failure is None]
        results = iter(self._run_model(ready) if ready else [])
        return [failure if failure is not None else next(results) for failure in failures]

    @staticmethod
    def _prepare(job: Job) -> BaseException | None:
        """Run a job's prepare function; a failure (e.g. an undecodable image) is that request's answer alone."""
        if callable(job.inputs):
            try:
                job.inputs = job.inputs()
                if len(job.inputs) != job.count:
                    raise ValueError(f"prepare returned {len(job.inputs)} images for a job of {job.count}")
            except Exception as error:
                return error
        return None

    def _run_model(self, jobs: list[Job]) -> list[Answer]:
        started = time.perf_counter()
        arrays = [job.inputs for job in jobs if isinstance(job.inputs, np.ndarray)]
        batch = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        probabilities: np.ndarray | None = None
        answers: list[Answer]
        try:
            probabilities = self._predict(batch)
            offsets = np.cumsum([0] + [job.count for job in jobs])
            answers = [probabilities[start:end] for start, end in itertools.pairwise(offsets)]
        except Exception as error:  # the model failed: fail this batch's requests only, keep serving
            log.exception("model call failed for a batch of %d images", len(batch))
            self.stats.failures += 1
            answers = [InferenceError(f"inference failed: {type(error).__name__}") for _ in jobs]
        finished = time.perf_counter()
        self.stats.batches += 1
        self.stats.images += len(batch)
        report = BatchReport(len(batch), finished - started, [started - job.enqueued for job in jobs], probabilities)
        for observe in self.stats.observers:
            observe(report)
        return answers

    async def close(self) -> None:
        """Stop taking work, finish everything already waiting or running, then stop the worker thread."""
        self._accepting = False
        if self._pending:
            if not self._worker_busy:
                self._dispatch()
            await self._idle.wait()
        self._inbox.put(None)
        await asyncio.to_thread(self._thread.join)
