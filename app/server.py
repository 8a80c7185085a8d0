"""`mnist-serve` / `make serve`: run the app under uvicorn with HOST, PORT, WORKERS, LOG_LEVEL and LOG_FORMAT.

With WORKERS > 1 the metrics of all workers are shared through a fresh folder (prometheus_client's multiprocess
mode, see app.metrics), made here before the workers start and removed when they have stopped."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.logs import logging_config
from app.settings import Settings, get_settings

log = logging.getLogger("app.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Slack past the longest in-flight request for the lifespan shutdown (the engine's last batches) and the exit.
SHUTDOWN_SLACK_SECONDS = 5


def shutdown_timeout(settings: Settings) -> float:
    """How long uvicorn waits for requests in flight after it stops accepting: a queued request is answered by its
    deadline (REQUEST_TIMEOUT_SECONDS). The drain window comes before; k8s/ and docker-compose.yml grant both."""
    return settings.request_timeout_seconds


def grace_period(settings: Settings) -> float:
    """The least time between SIGTERM and SIGKILL that lets a drain finish."""
    return settings.drain_seconds + shutdown_timeout(settings) + SHUTDOWN_SLACK_SECONDS


class Supervisor(Multiprocess):
    """uvicorn's supervisor of WORKERS processes, which lets go of the listening socket on SIGTERM or SIGINT.

    The workers share one listening socket, and it accepts connections while any process holds it open, the
    supervisor included: held there, connections made after the workers' drain would wait in the backlog with nobody
    to serve them, instead of being refused so that the client tries another replica. The workers keep their own
    copies open through the drain window (app.drain)."""

    def handle_term(self) -> None:
        self.release_sockets()
        super().handle_term()

    def handle_int(self) -> None:
        self.release_sockets()
        super().handle_int()

    def release_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()


@contextmanager
def shared_metrics_dir() -> Iterator[None]:
    """A fresh, empty folder for the workers' metric files (none left from an earlier run adds to the counts)."""
    folder = tempfile.mkdtemp(prefix="mnist-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # spawned workers inherit it and choose multiprocess mode at import
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for operators
    # The app's imports too run without the cyclic collector (faster start); the lifespan turns it back on once
    # the model is loaded (app.service.collector_paused).
    gc.disable()
    settings = get_settings()
    config = logging_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(config)
    log.info(
        "starting on %s:%d with %d worker(s); drain %g s, request timeout %g s, grace period needed %g s",
        settings.host,
        settings.port,
        settings.workers,
        settings.drain_seconds,
        settings.request_timeout_seconds,
        grace_period(settings),
    )
    # uvicorn re-raises the SIGTERM it shut down for once it has restored the handler it found; this one makes
    # that a clean exit (status 0) instead of death by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server_config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        log_config=config,
        access_log=False,  # app.request_log writes one access line per request, with its request id
        timeout_graceful_shutdown=int(shutdown_timeout(settings)),
    )
    if settings.workers == 1:
        server = uvicorn.Server(server_config)
        server.run()
        if not server.started:
            sys.exit(1)  # as uvicorn.run: the app never started
        return
    with shared_metrics_dir():  # what uvicorn.run does for workers > 1, with the supervisor above
        Supervisor(server_config, sockets=[server_config.bind_socket()]).run()


if __name__ == "__main__":
    main()
