"""Dynamic micro-batching: concurrent requests share one model call. Nothing about images or HTTP.

Callers on the event loop `await engine.predict(images)`. Requests wait on the event loop; a batch of them (up to
`max_batch` images) is handed to one worker thread, which runs the model once and hands every caller its own rows.
`predict_prepared(prepare, count)` sends a function instead of the images: the worker calls it just before the
batch runs, which spares the caller a round trip through another thread for cheap work such as decoding a small
image.

A batch is sent once the worker is free and either `max_batch` images are waiting, or the requests have stopped
coming (none new for `quiet`), or the oldest request has waited `max_wait` (time spent behind the previous batch
counts). Waiting out a burst matters on a busy single core: a model call costs less per image on a full batch than
on a small one (benchmarks/model_cost.py), and while the model waits the event loop gets the core to read the rest
of the burst. The thread hand-offs cost one wake-up per batch, not one per request. Waiting only pays when company
comes: after LONELY_BATCHES batches in a row of one request each, a request is sent at once until a batch holds
several again (a single client gets the model's latency, not the model's plus `quiet`).

A bulk request (more than `max_batch` images) is cut into chunks that take turns with the other requests: the
small requests' batch, then a chunk of one bulk request, then the small requests again, and bulk requests among
themselves in rotation. A chunk is `max_batch` images while the bulk work has the engine to itself, and an eighth
of that while other requests share it, so that a small request never waits behind more than a short model call.
Bulk work never waits for company: the model is never idle while it has rows to score.

The queue is bounded in images: when full, `QueueFullError` is raised at once rather than a backlog built that
would only time out later; one request larger than the whole queue gets `JobTooLargeError`. A request that has waited
`timeout` gets `RequestTimeoutError`, and a request whose caller is cancelled (its client went away) is no longer
waited for: either way its images not yet sent leave the queue, so the model does no work for nobody."""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial

import numpy as np

from app.batch_parts import BatchReport, BatchStats, Job, Part, Prepare, rows_of

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
Answer = np.ndarray | BaseException
LONELY_BATCHES = 3
# A bulk chunk is max_batch // SHARED_CHUNK_DIVISOR images while other requests use the engine: a small request then
# waits behind an eighth of a full model call at most. The bulk request pays for it in a higher cost per image while
# it shares the engine; alone, it runs at full batches again.
SHARED_CHUNK_DIVISOR = 8
# Other requests count as sharing the engine while one waits, or one arrived within this many seconds: a client
# sending one request after another is between requests most of the time, yet it is there.
SHARED_WINDOW_S = 0.1


class QueueFullError(RuntimeError):
    """The engine has `max_queue` images waiting; the client should retry shortly."""


class JobTooLargeError(ValueError):
    """One request holds more images than the whole queue (`max_queue`); retrying cannot help."""


class RequestTimeoutError(RuntimeError):
    """The request waited longer than the engine's timeout; its images left the queue."""


class EngineStoppedError(RuntimeError):
    """The engine is shutting down and takes no new work."""


class InferenceError(RuntimeError):
    """The model call for this request's batch failed."""


class BatchingEngine:
    """Bound to the event loop of its first caller; everything but the model call runs on that loop."""

    def __init__(
        self,
        predict: Predict,
        max_batch: int,
        max_wait_s: float,
        quiet_s: float,
        max_queue: int,
        timeout_s: float | None = None,
    ) -> None:
        self._predict = predict
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.quiet_s = quiet_s
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: deque[Job] = deque()  # small jobs, sent whole, oldest first
        self._waiting_images = 0
        self._bulk: deque[Job] = deque()  # bulk jobs with rows not yet sent, in their turn order
        self._bulk_turn = False  # the next batch is a bulk chunk when both kinds wait
        self._last_small = -SHARED_WINDOW_S  # arrival time of the latest small job
        self._pending = 0  # images waiting or running
        self._worker_busy = False
        self._lonely = 0  # small batches in a row that held a single request
        self._timer: asyncio.TimerHandle | None = None
        self._accepting = True
        self._idle = asyncio.Event()  # set whenever nothing is waiting or running (close() waits for it)
        self._inbox: queue.SimpleQueue[list[Part] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="batching-engine", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 [k, 10] for `images` [k, 28, 28] (float32, or uint8 kept so until its batch runs:
        a bulk request waits in a quarter of the memory)."""
        return await self._submit(images, len(images))

    async def predict_prepared(self, prepare: Prepare, count: int) -> np.ndarray:
        """Probabilities [count, 10] for the images `prepare()` returns; it runs on the worker thread, so it must be
        quick (it delays the batch). If it raises, this request fails with that error and the batch goes on. The
        images go into one model call whatever their count."""
        return await self._submit(prepare, count)

    async def _submit(self, inputs: np.ndarray | Prepare, count: int) -> np.ndarray:
        loop = self._bind_loop()
        if not self._accepting:
            raise EngineStoppedError("the service is shutting down")
        if count > self.max_queue:
            raise JobTooLargeError(
                f"{count} images in one request; the queue holds at most {self.max_queue} (QUEUE_MAX_IMAGES)"
            )
        if self._pending + count > self.max_queue:
            raise QueueFullError(f"{self._pending} images are already waiting (limit {self.max_queue})")
        bulk = count > self.max_batch and not callable(inputs)
        job = Job(inputs, count, loop.create_future(), bulk)
        job.future.add_done_callback(partial(self._forget_if_cancelled, job))
        for observe in self.stats.submitted:
            observe(count)
        self._pending += count
        self._idle.clear()
        if bulk:
            self._bulk.append(job)
        else:
            self._waiting.append(job)
            self._waiting_images += count
            self._last_small = job.enqueued
        if not self._worker_busy:
            self._schedule()
        try:
            # wait_for cancels the future on timeout, as a cancelled caller does: _forget_if_cancelled then drops it.
            return await asyncio.wait_for(job.future, self.timeout_s)
        except TimeoutError:
            raise RequestTimeoutError(
                f"the request waited over {self.timeout_s:g} s for the model (REQUEST_TIMEOUT_SECONDS)"
            ) from None

    def _forget_if_cancelled(self, job: Job, future: asyncio.Future[np.ndarray]) -> None:
        """Nobody waits for a cancelled job: its rows not yet handed to the worker leave the queue."""
        if not future.cancelled():
            return
        if job in self._waiting:
            self._waiting.remove(job)
            self._waiting_images -= job.count
            unsent = job.count
        elif job in self._bulk:
            self._bulk.remove(job)
            unsent = job.count - job.sent
        else:  # already with the worker whole: its answer is dropped on delivery
            return
        self._pending -= unsent
        self.stats.dropped += unsent
        for observe in self.stats.drop_observers:
            observe(unsent)
        if self._pending == 0:
            self._idle.set()

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a BatchingEngine serves the event loop it was first used on")
        return loop

    def _schedule(self) -> None:
        """The worker is idle: send a batch now if bulk rows wait, the batch is full, the requests have stopped
        coming or the oldest has waited max_wait; else look again when the earlier of the last two is due (a new
        arrival moves it)."""
        if self._bulk or not self._waiting:
            self._dispatch()
            return
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
        """Hand the worker its next batch: the small jobs' or a bulk chunk, taking turns when both wait."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._worker_busy:
            return
        self._drop_failed_bulk()
        if self._bulk and (self._bulk_turn or not self._waiting):
            batch = self._bulk_chunk()
        elif self._waiting:
            batch = self._small_batch()
        else:
            return
        self._bulk_turn = not batch[0].job.bulk
        self._worker_busy = True
        self._inbox.put(batch)

    def _small_batch(self) -> list[Part]:
        """The oldest waiting small jobs, whole, up to max_batch images."""
        first = self._waiting.popleft()
        batch, size = [Part(first, 0, first.count)], first.count
        while self._waiting and size + self._waiting[0].count <= self.max_batch:
            job = self._waiting.popleft()
            batch.append(Part(job, 0, job.count))
            size += job.count
        self._waiting_images -= size
        return batch

    def _bulk_chunk(self) -> list[Part]:
        """The next rows of the bulk job whose turn it is; it goes to the back of the rotation if rows are left."""
        job = self._bulk.popleft()
        shared = bool(self._waiting) or time.perf_counter() - self._last_small < SHARED_WINDOW_S
        size = max(1, self.max_batch // SHARED_CHUNK_DIVISOR) if shared else self.max_batch
        part = Part(job, job.sent, min(job.count, job.sent + size))
        job.sent = part.stop
        if job.sent < job.count:
            self._bulk.append(job)
        return [part]

    def _drop_failed_bulk(self) -> None:
        """Bulk jobs already answered (a chunk failed) send no more rows."""
        for job in [job for job in self._bulk if job.future.done()]:
            self._bulk.remove(job)
            self._pending -= job.count - job.sent

    def _finished(self, batch: list[Part], answers: list[Answer]) -> None:
        """On the loop: the worker is done with `batch`. Answer its callers, then see to the next batch."""
        self._worker_busy = False
        if not batch[0].job.bulk:
            self._lonely = self._lonely + 1 if len(batch) == 1 else 0
        for part, answer in zip(batch, answers, strict=True):
            self._pending -= part.size
            self._deliver(part, answer)
        if self._waiting or self._bulk:
            self._schedule()
        if self._pending == 0:
            self._idle.set()

    @staticmethod
    def _deliver(part: Part, answer: Answer) -> None:
        job = part.job
        if job.future.done():  # the client went away, or an earlier chunk failed: nothing to deliver
            return
        if isinstance(answer, BaseException):
            job.future.set_exception(answer)
        elif not job.bulk:
            job.future.set_result(answer)
        else:
            if job.output is None:
                job.output = np.empty((job.count, *answer.shape[1:]), dtype=answer.dtype)
            job.output[part.start : part.stop] = answer
            job.answered += part.size
            if job.answered == job.count:
                job.future.set_result(job.output)

    # ---------------------------------------------------------------- worker thread

    def _work(self) -> None:
        while (batch := self._inbox.get()) is not None:
            answers = self._run_batch(batch)
            assert self._loop is not None  # a batch exists only after a caller bound the loop
            self._loop.call_soon_threadsafe(self._finished, batch, answers)

    def _run_batch(self, batch: list[Part]) -> list[Answer]:
        failures = [self._prepare(part.job) for part in batch]
        ready = [part for part, failure in zip(batch, failures, strict=True) if failure is None]
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

    def _run_model(self, parts: list[Part]) -> list[Answer]:
        started = time.perf_counter()
        arrays = [rows_of(part) for part in parts]
        batch = (
            np.concatenate(arrays, dtype=np.float32) if len(arrays) > 1 else arrays[0].astype(np.float32, copy=False)
        )
        records: np.ndarray | None = None
        answers: list[Answer]
        try:
            records = self._predict(batch)
            offsets = np.cumsum([0] + [part.size for part in parts])
            answers = [records[start:end] for start, end in itertools.pairwise(offsets)]
        except Exception as error:  # the model failed: fail this batch's requests only, keep serving
            log.exception("model call failed for a batch of %d images", len(batch))
            self.stats.failures += 1
            answers = [InferenceError(f"inference failed: {type(error).__name__}") for _ in parts]
        finished = time.perf_counter()
        self.stats.batches += 1
        self.stats.images += len(batch)
        waits = [started - part.job.enqueued for part in parts if part.start == 0]
        report = BatchReport(len(batch), finished - started, waits, records)
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
