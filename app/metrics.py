"""Prometheus metrics: HTTP requests, the batching engine, predictions and the loaded model.

Each app gets its own registry (tests build several apps in one process, and the default global registry refuses
a second metric of the same name). With WORKERS > 1, app.server points PROMETHEUS_MULTIPROC_DIR at a fresh folder
before the workers start: prometheus_client then keeps every worker's values in files there, and a scrape, whichever
worker answers it, adds them up (prometheus_client's multiprocess mode). A metric is declared once, in
`Metrics.__init__`; a gauge says there how the workers' values combine (`multiprocess_mode`).
"""

from __future__ import annotations

import os
import time
from functools import partial

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.batch_parts import BatchReport
from app.model import Predictions
from app.service import Service
from app.versions import AVAILABLE, END, LoadedVersion, VersionState

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
disable_created_metrics()  # the *_created series double every counter's output for no use in dashboards
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ  # as prometheus_client decides it, once per process
UNMATCHED = "unmatched"  # requests no route took: their raw paths would make one series per URL scanned


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "batch_size_images",
            "Images per model call made by the batching engine.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "batch_queue_wait_seconds",
            "Time a request waited in the queue before its batch ran.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "inference_duration_seconds",
            "Time of one model call (one batch).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "predictions", "Images classified, by predicted digit.", ["predicted_class"], registry=r
        )
        self.not_a_digit = Counter(
            "not_a_digit", "Images answered with is_digit false (counted in predictions_total too).", registry=r
        )
        self.dropped = Counter(
            "batch_dropped_images",
            "Images that left the queue unscored: their request timed out or its client went away.",
            registry=r,
        )
        self.model_version = Gauge(
            "model_version",
            "Version of the model being served (1 series, labelled with the model name).",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.queued = Gauge(
            "batch_queue_images",
            "Images queued or running in the batching engines (all workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.version_requests = Counter(
            "model_requests", "Inference requests answered, by model version.", ["model", "version"], registry=r
        )
        self.version_predictions = Counter(
            "model_predictions", "Images classified, by model version.", ["model", "version"], registry=r
        )
        self.version_state = Gauge(
            "model_version_state",
            "1 for each version's current state, 0 for the states it left (TensorFlow Serving's names: START = "
            "waiting for its folder, LOADING, AVAILABLE, UNLOADING, END = refused).",
            ["model", "version", "state"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.load_failures = Counter(
            "model_load_failures",
            "Versions refused, by reason: load (unreadable SavedModel), contract, canary.",
            ["model", "version", "reason"],
            registry=r,
        )
        self._states: dict[int, str] = {}
        self.service: Service | None = None
        for digit in range(10):  # every class shows from the start, so rate() works before the first hit
            self.predictions.labels(predicted_class=str(digit))

    def observe_batch(self, batch: BatchReport) -> None:
        """The engine's per-batch hook (called on its worker thread; prometheus_client is thread-safe). Every
        protocol's inference goes through the engine, so this sees every prediction, counted once per batch."""
        self.batch_size.observe(batch.size)
        self.inference.observe(batch.seconds)
        for wait in batch.queue_waits:
            self.queue_wait.observe(wait)
        if batch.records is not None:
            self.count_predictions(Predictions.from_records(batch.records, has_digit_score=False))

    def count_predictions(self, predictions: Predictions) -> None:
        classes, counts = np.unique(predictions.probabilities.argmax(axis=1), return_counts=True)
        for digit, count in zip(classes, counts, strict=True):
            self.predictions.labels(predicted_class=str(int(digit))).inc(int(count))
        self.not_a_digit.inc(int((~predictions.is_digit).sum()))

    def observe_version_batch(self, model: str, version: int, batch: BatchReport) -> None:
        self.observe_batch(batch)
        self.version_requests.labels(model=model, version=str(version)).inc(len(batch.queue_waits))
        self.version_predictions.labels(model=model, version=str(version)).inc(batch.size)

    def attach(self, service: Service) -> None:
        """Follow a started service: its default version, its versions' states, queues and batches."""
        self.service = service
        repository = service.repository
        name = repository.name
        if not MULTIPROCESS:  # read at scrape time; across processes refresh() writes them instead
            self.model_version.labels(model=name).set_function(self.default_version)
            self.queued.set_function(lambda: repository.pending)

        def follow(state: VersionState, loaded: LoadedVersion | None) -> None:
            version = state.version
            previous = self._states.pop(version, None)
            if previous is not None:  # set to 0, not removed: a worker's removal would not reach the other workers
                self.version_state.labels(model=name, version=str(version), state=previous).set(0)
            if state.state != END or state.error_code != "OK":  # END without an error: gone from memory and disk
                self.version_state.labels(model=name, version=str(version), state=state.state).set(1)
                self._states[version] = state.state
            if state.error_code != "OK":
                self.load_failures.labels(model=name, version=str(version), reason=state.reason).inc()
            if loaded is not None and state.state == AVAILABLE:
                loaded.engine.stats.observers.append(partial(self.observe_version_batch, name, version))
                loaded.engine.stats.drop_observers.append(self.dropped.inc)

        repository.listeners.append(follow)

    def default_version(self) -> int:
        """The version requests go to when they name none; 0 while none serves."""
        default = self.service.repository.routes.default if self.service is not None else None
        return default.version if default is not None else 0

    def refresh(self) -> None:
        """Multiprocess mode: a scrape cannot call into the other workers, so each writes its gauges down after
        every request it answers."""
        if MULTIPROCESS and self.service is not None:
            self.queued.set(self.service.repository.pending)
            self.model_version.labels(model=self.service.repository.name).set(self.default_version())

    def render(self) -> bytes:
        """The exposition text: this app's registry, or every worker's values in multiprocess mode."""
        if not MULTIPROCESS:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """This worker is stopping: its live gauges leave the sums."""
        if MULTIPROCESS:
            prometheus_multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (e.g. /v2/models/{model_name}/infer)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # labels() takes a lock and builds a key on every call; the few (method, route, status) series are kept.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            count, latency = self._series_for(scope.get("method", ""), template, status)
            count.inc()
            latency.observe(time.perf_counter() - started)
            self.metrics.refresh()

    def _series_for(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.metrics.requests.labels(method=method, route=route, status=str(status)),
                self.metrics.latency.labels(method=method, route=route),
            )
            self._series[key] = series
        return series
