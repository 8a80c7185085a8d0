"""The batching engine's behaviour with the real model: own answers, bounded batches, back-pressure, failure
isolation, and a shutdown that finishes queued work."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from functools import partial

import httpx
import numpy as np
import pytest

import app.batching
from app.batching import (
    LONELY_BATCHES,
    BatchingEngine,
    EngineStoppedError,
    InferenceError,
    JobTooLargeError,
    QueueFullError,
)
from app.imaging import UndecodableImageError
from app.model import DigitModel
from tests.conftest import MODELS, LiveServer
from tests.uploads import mnist_png
from training.data import Mnist


@pytest.fixture(scope="module")
def model() -> DigitModel:
    return DigitModel(MODELS / "mnist", "mnist")


class Recorder:
    """Wraps the real model's predict: records batch sizes, can hold calls at a gate, can fail on request."""

    def __init__(self, model: DigitModel) -> None:
        self.model = model
        self.sizes: list[int] = []
        self.batches: list[np.ndarray] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.sizes.append(len(images))
        self.batches.append(images.copy())
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("simulated model failure")
        return self.model.predict(images)


def digits(records: np.ndarray) -> np.ndarray:
    """The most probable digit of each of the model's answer records."""
    return np.asarray(records["probabilities"]).argmax(axis=1)


def assert_same_answers(got: np.ndarray, wanted: np.ndarray) -> None:
    """The engine handed back the model's own records: both outputs, every row in place."""
    assert got.dtype == wanted.dtype and got.shape == wanted.shape
    for field in ("probabilities", "digit_score"):
        np.testing.assert_allclose(got[field], wanted[field], atol=1e-5)


def test_concurrent_requests_get_their_own_answers_in_bounded_batches(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    images = mnist.test_images[:300].astype(np.float32)
    alone = model.predict(images)

    async def scenario() -> list[np.ndarray]:
        engine = BatchingEngine(recorder, max_batch=16, max_wait_s=0.005, quiet_s=0.005, max_queue=1000)
        try:
            return await asyncio.gather(*(engine.predict(images[i : i + 1]) for i in range(len(images))))
        finally:
            await engine.close()

    results = np.concatenate(asyncio.run(scenario()))
    assert_same_answers(results, alone)
    assert max(recorder.sizes) <= 16 and sum(recorder.sizes) == 300
    assert len(recorder.sizes) < 300  # requests really were coalesced


def test_prepared_jobs_run_on_the_engine_thread_and_a_failing_one_fails_alone(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    images = mnist.test_images[:8].astype(np.float32)
    threads: set[str] = set()

    def prepare(index: int) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return images[index : index + 1]

    def undecodable() -> np.ndarray:
        raise UndecodableImageError("cannot decode the PNG data")

    async def scenario() -> list[np.ndarray | BaseException]:
        engine = BatchingEngine(recorder, max_batch=16, max_wait_s=0.05, quiet_s=0.05, max_queue=100)
        try:
            calls = [engine.predict_prepared(partial(prepare, i), 1) for i in range(4)]
            calls += [engine.predict_prepared(undecodable, 1), engine.predict(images[4:8])]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await engine.close()

    *prepared, failed, plain = asyncio.run(scenario())
    assert isinstance(failed, UndecodableImageError)
    assert [int(digits(r)[0]) for r in prepared] == list(mnist.test_labels[:4])
    assert list(digits(plain)) == list(mnist.test_labels[4:8])
    assert threads == {"batching-engine"}
    assert recorder.sizes == [8]  # one model call for all, without the failed job


def test_a_batch_waits_out_a_burst_and_no_longer(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    images = mnist.test_images[:6].astype(np.float32)

    async def scenario() -> tuple[float, list[np.ndarray]]:
        engine = BatchingEngine(recorder, max_batch=64, max_wait_s=30.0, quiet_s=0.5, max_queue=100)
        started = time.perf_counter()
        calls = []
        for i in range(5):  # a burst: each request comes well within `quiet` of the one before
            calls.append(asyncio.ensure_future(engine.predict(images[i : i + 1])))
            await asyncio.sleep(0.05)
        answers = list(await asyncio.gather(*calls))
        burst_seconds = time.perf_counter() - started
        answers.append(await engine.predict(images[5:6]))  # after the burst: a batch of its own
        await engine.close()
        return burst_seconds, answers

    burst_seconds, answers = asyncio.run(scenario())
    assert recorder.sizes == [5, 1]
    assert 0.6 <= burst_seconds < 5  # sent `quiet` after the last arrival, long before max_wait
    assert [int(digits(a)[0]) for a in answers] == list(mnist.test_labels[:6])


def test_a_lone_client_stops_waiting_for_company(model: DigitModel, mnist: Mnist) -> None:
    one = mnist.test_images[:1].astype(np.float32)

    async def scenario() -> list[float]:
        engine = BatchingEngine(model.predict, max_batch=16, max_wait_s=1.0, quiet_s=1.0, max_queue=100)
        seconds = []
        for _ in range(LONELY_BATCHES + 1):
            started = time.perf_counter()
            assert int(digits(await engine.predict(one))[0]) == int(mnist.test_labels[0])
            seconds.append(time.perf_counter() - started)
        await engine.close()
        return seconds

    *waited, alone = asyncio.run(scenario())
    assert min(waited) >= 0.9  # each waited max_wait for company that never came
    assert alone < 0.5  # then the engine stopped waiting


def test_full_queue_refuses_at_once(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    recorder.gate.clear()
    one = mnist.test_images[:1].astype(np.float32)

    async def scenario() -> None:
        engine = BatchingEngine(recorder, max_batch=4, max_wait_s=0, quiet_s=0, max_queue=3)
        waiting = [asyncio.ensure_future(engine.predict(one)) for _ in range(3)]
        await asyncio.sleep(0)  # one turn of the loop: each request reaches the engine and waits for its answer
        assert engine.pending == 3
        with pytest.raises(QueueFullError):
            await engine.predict(one)
        recorder.gate.set()
        assert len(await asyncio.gather(*waiting)) == 3
        assert (await engine.predict(one)).shape == (1,)  # room again once the queue drained
        await engine.close()

    asyncio.run(scenario())


def test_a_failing_model_call_fails_only_its_batch(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    recorder.fail_next = True
    images = mnist.test_images[:2].astype(np.float32)

    async def scenario() -> None:
        engine = BatchingEngine(recorder, max_batch=8, max_wait_s=0, quiet_s=0, max_queue=100)
        with pytest.raises(InferenceError):
            await engine.predict(images[:1])
        after = await engine.predict(images)
        assert list(digits(after)) == list(mnist.test_labels[:2])
        await engine.close()

    asyncio.run(scenario())


def test_shutdown_finishes_queued_requests(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    recorder.gate.clear()
    images = mnist.test_images[:20].astype(np.float32)

    async def scenario() -> None:
        engine = BatchingEngine(recorder, max_batch=4, max_wait_s=0, quiet_s=0, max_queue=100)
        queued = [asyncio.ensure_future(engine.predict(images[i : i + 1])) for i in range(20)]
        await asyncio.sleep(0)  # one turn of the loop: every request is queued
        assert engine.pending == 20
        closing = asyncio.ensure_future(engine.close())
        await asyncio.sleep(0)  # close() stops accepting before it waits for the queue to drain
        with pytest.raises(EngineStoppedError):
            await engine.predict(images[:1])
        recorder.gate.set()
        await closing
        answers = [int(digits(r)[0]) for r in await asyncio.gather(*queued)]
        assert answers == list(mnist.test_labels[:20])

    asyncio.run(scenario())


def test_a_bulk_request_is_cut_into_batches_and_answered_in_order(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    pixels = mnist.test_images[:300]  # uint8, as a V2 UINT8 tensor arrives
    alone = model.predict(pixels.astype(np.float32))

    async def scenario() -> np.ndarray:
        engine = BatchingEngine(recorder, max_batch=64, max_wait_s=1.0, quiet_s=1.0, max_queue=1000)
        try:
            return await engine.predict(pixels)
        finally:
            await engine.close()

    answers = asyncio.run(scenario())
    assert_same_answers(answers, alone)
    assert recorder.sizes == [64, 64, 64, 64, 44]  # alone on the engine: full batches, no waiting for company
    assert all(batch.dtype == np.float32 for batch in recorder.batches)


def origin(batch: np.ndarray, sources: dict[str, np.ndarray]) -> str:
    """Which source's rows a model call held (the sources' images are distinct)."""
    found = {name for name, rows in sources.items() for row in batch if (rows == row).all(axis=(1, 2)).any()}
    return "+".join(sorted(found))


def test_bulk_chunks_take_turns_with_small_requests_and_each_other(
    model: DigitModel, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.batching, "SHARED_WINDOW_S", 60.0)  # small requests count as present for the whole test
    recorder = Recorder(model)
    recorder.gate.clear()
    images = mnist.test_images[:100].astype(np.float32)
    sources = {"a": images[:48], "b": images[48:88], "small": images[88:91]}
    shared_chunk = 32 // app.batching.SHARED_CHUNK_DIVISOR

    async def scenario() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        engine = BatchingEngine(recorder, max_batch=32, max_wait_s=30.0, quiet_s=30.0, max_queue=1000)
        first = asyncio.ensure_future(engine.predict(sources["a"]))
        await asyncio.to_thread(recorder.entered.wait, 10)  # a's first chunk is at the gate
        second = asyncio.ensure_future(engine.predict(sources["b"]))
        small = [asyncio.ensure_future(engine.predict(sources["small"][i : i + 1])) for i in range(3)]
        await asyncio.sleep(0)  # let every request reach the engine
        recorder.gate.set()
        results = await asyncio.gather(first, second, *small)
        await engine.close()
        return results[0], results[1], list(results[2:])

    a, b, small = asyncio.run(scenario())
    order = [origin(batch, sources) for batch in recorder.batches]
    # a's first chunk went alone at full size; then the waiting small requests had their turn, and the bulk jobs
    # took turns, in shorter chunks while small requests share the engine.
    a_turns, b_turns = 16 // shared_chunk, 40 // shared_chunk
    assert order == ["a", "small", *["a", "b"] * a_turns, *["b"] * (b_turns - a_turns)]
    assert recorder.sizes == [32, 3, *[shared_chunk] * (a_turns + b_turns)]
    assert_same_answers(a, model.predict(sources["a"]))
    assert_same_answers(b, model.predict(sources["b"]))
    assert [int(digits(s)[0]) for s in small] == list(mnist.test_labels[88:91])


def test_a_failed_or_abandoned_bulk_request_sends_no_more_rows(model: DigitModel, mnist: Mnist) -> None:
    recorder = Recorder(model)
    recorder.gate.clear()
    images = mnist.test_images[:200].astype(np.float32)

    async def scenario() -> BatchingEngine:
        engine = BatchingEngine(recorder, max_batch=16, max_wait_s=0, quiet_s=0, max_queue=1000)
        failing = asyncio.ensure_future(engine.predict(images[:100]))
        await asyncio.to_thread(recorder.entered.wait, 10)
        recorder.fail_next = True  # the chunk at the gate fails
        abandoned = asyncio.ensure_future(engine.predict(images[100:200]))
        await asyncio.sleep(0)
        abandoned.cancel()  # its client went away before any of its rows ran
        recorder.gate.set()
        with pytest.raises(InferenceError):
            await failing
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        assert engine.pending == 0
        after = await engine.predict(images[:20])  # still serving, chunked as before
        assert list(digits(after)) == list(mnist.test_labels[:20])
        await engine.close()
        return engine

    asyncio.run(scenario())
    assert recorder.sizes == [16, 16, 4]  # the failed chunk (not counted by the recorder) then the new request


def test_a_request_larger_than_the_queue_is_refused_as_too_large(model: DigitModel, mnist: Mnist) -> None:
    images = mnist.test_images[:50]

    async def scenario() -> None:
        engine = BatchingEngine(model.predict, max_batch=16, max_wait_s=0, quiet_s=0, max_queue=40)
        with pytest.raises(JobTooLargeError, match="50 images in one request; the queue holds at most 40"):
            await engine.predict(images)
        assert (await engine.predict(images[:40])).shape == (40,)
        await engine.close()

    asyncio.run(scenario())


@pytest.fixture()
def gated_server(model: DigitModel) -> Iterator[tuple[LiveServer, Recorder]]:
    with LiveServer(queue_max_images=2, batch_max_size=1, batch_max_wait_ms=0) as live:
        engine = live.app.state.service.engine
        recorder = Recorder(live.server.config.app.state.service.model)
        engine._predict = recorder  # the real model behind a gate, so the queue can be filled on purpose
        yield live, recorder
        recorder.gate.set()


def test_http_full_queue_is_503_with_retry_after_and_failure_is_500(gated_server, mnist: Mnist) -> None:
    live, recorder = gated_server
    recorder.gate.clear()
    upload = {"file": ("d.png", mnist_png(mnist.test_images[0]))}
    results: list[httpx.Response] = []

    def post() -> None:
        # A client of its own per thread: threads sharing one client's connections can close each other's socket.
        with httpx.Client(base_url=live.url, timeout=30) as own:
            results.append(own.post("/predict", files=upload))

    with httpx.Client(base_url=live.url, timeout=30) as client:
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        engine = live.app.state.service.engine
        assert recorder.entered.wait(30)  # one request is in the model, held at the gate
        deadline = time.monotonic() + 30
        while engine.pending < 2 and time.monotonic() < deadline:  # one at the gate, one queued: the queue is full
            time.sleep(0.01)
        assert engine.pending == 2
        full = client.post("/predict", files=upload)
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "waiting" in full.json()["detail"]
        recorder.gate.set()
        for thread in threads:
            thread.join(30)
        assert [r.status_code for r in results] == [200, 200]

        recorder.fail_next = True
        failed = client.post("/predict", files=upload)
        assert failed.status_code == 500 and failed.json()["detail"].startswith("inference failed")
        assert client.post("/predict", files=upload).json()["predicted_class"] == 7


def test_a_small_request_past_its_deadline_or_cancelled_leaves_the_queue(model: DigitModel, mnist: Mnist) -> None:
    """The real model held at a gate: one batch runs while two more requests wait; one passes its deadline, the
    other's caller is cancelled. Neither reaches the model, and the engine goes on."""
    recorder = Recorder(model)
    images = mnist.test_images[:3].astype(np.float32)

    async def scenario() -> tuple[BaseException | None, BaseException | None, int]:
        engine = BatchingEngine(recorder, max_batch=1, max_wait_s=0, quiet_s=0, max_queue=10, timeout_s=0.3)
        recorder.gate.clear()
        running = asyncio.ensure_future(engine.predict(images[:1]))
        await asyncio.to_thread(recorder.entered.wait, 30)  # the first batch is in the model, held at the gate
        late = asyncio.ensure_future(engine.predict(images[1:2]))
        left = asyncio.ensure_future(engine.predict(images[2:3]))
        await asyncio.sleep(0)  # both are queued
        left.cancel()
        late_error = None
        try:
            await late
        except app.batching.RequestTimeoutError as error:
            late_error = error
        recorder.gate.set()
        await asyncio.gather(running, return_exceptions=True)  # held past its deadline too, though its batch ran
        dropped = engine.stats.dropped
        await engine.close()
        return late_error, None if not left.cancelled() else asyncio.CancelledError(), dropped

    late_error, left_error, dropped = asyncio.run(scenario())
    assert isinstance(late_error, app.batching.RequestTimeoutError)
    assert isinstance(left_error, asyncio.CancelledError)
    assert dropped == 2 and recorder.sizes == [1]  # only the first request's image was scored
