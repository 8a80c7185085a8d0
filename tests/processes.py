"""`mnist-serve` as a real process for tests: started with its environment, its output read line by line, stopped
with SIGTERM and cleaned up even when a test fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import MODELS, ROOT, free_port

START_TIMEOUT_S = 240  # two workers import TensorFlow at once; generous for a loaded CI machine
STARTED = "Application startup complete."  # uvicorn logs it per worker, once lifespan has started the repository
SERVING = "verified and serving"  # the repository logs it per worker once a version takes traffic


class ServerOutput:
    """The server's output, read line by line on a thread; `seen()` waits until a line has come often enough."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.closed = threading.Event()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with self.changed:
                self.lines.append(raw.decode(errors="replace"))
                self.changed.notify_all()
        with self.changed:
            self.closed.set()
            self.changed.notify_all()

    def text(self) -> str:
        with self.changed:
            return "".join(self.lines)

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (LOG_FORMAT=json): a line that is not one fails the test."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def seen(self, needle: str, times: int, timeout: float) -> bool:
        with self.changed:
            return (
                self.changed.wait_for(
                    lambda: "".join(self.lines).count(needle) >= times or self.closed.is_set(), timeout
                )
                and "".join(self.lines).count(needle) >= times
            )


class ServingProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = ServerOutput(process)

    def wait_started(self, workers: int) -> None:
        started = self.output.seen(STARTED, times=workers, timeout=START_TIMEOUT_S)
        assert started, f"{workers} worker(s) not started (exit {self.process.poll()}):\n{self.output.text()}"

    def wait_serving(self, workers: int) -> None:
        """Every worker serves a verified version (the server listens before that, while versions load)."""
        serving = self.output.seen(SERVING, times=workers, timeout=START_TIMEOUT_S)
        assert serving, f"{workers} worker(s) not serving (exit {self.process.poll()}):\n{self.output.text()}"


@contextmanager
def serving(**env: str) -> Iterator[ServingProcess]:
    """`python -m app.server` on a free port with `env` added; SIGTERM (then SIGKILL) to its group at the end."""
    port = free_port()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_BASE_PATH": str(MODELS),
        "LOG_LEVEL": "info",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the cleanup below reaches the workers too
    )
    live = ServingProcess(process, port)
    try:
        yield live
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        live.output.closed.wait(timeout=60)
