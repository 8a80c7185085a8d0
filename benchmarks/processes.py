"""The benchmark's server processes: start one pinned to a core, wait until it is ready, read its memory, stop it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    label: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn with WORKERS > 1 forks one process per worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with suppress(OSError):  # the process may have just exited
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return found


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of the process tree, from /proc (kB -> MiB); VmHWM gives each process's peak."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Running:
    """A server process pinned to `core`, its output in a log file; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, spec: ServerSpec, core: int, port: int, log_dir: Path) -> None:
        self.spec, self.port = spec, port
        env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", **spec.env}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.log_path = log_dir / f"{spec.label or spec.name}-{port}.log"
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), *spec.argv],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals the whole server, nothing else
        )

    def wait_ready(self) -> float:
        """Seconds from process start until GET /readyz answers 200."""
        deadline = self.started + READY_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if get(self.port, "/readyz", timeout=1.0)[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.spec.name} not ready after {READY_TIMEOUT_S} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@contextmanager
def running(spec: ServerSpec, core: int, log_dir: Path) -> Iterator[tuple[Running, float]]:
    server = Running(spec, core, free_port(), log_dir)
    try:
        cold = server.wait_ready()
        yield server, cold
    finally:
        server.stop()


class RssSampler:
    """Highest resident memory of the server seen while a load run goes on (sampled every 0.25 s)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.highest = pid, rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.highest = max(self.highest, rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.highest = max(self.highest, rss_mb(self.pid))
