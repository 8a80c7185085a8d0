"""Shared fixtures: the real MNIST files, the committed model, and one live server over real HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from app.model import available_versions
from training.data import Mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SERVED_VERSION = max(available_versions(MODELS / "mnist"))  # the newest committed version, which the service loads
COMMITTED_VERSION = MODELS / "mnist" / str(SERVED_VERSION)


def mnist_dir() -> Path:
    path = Path(os.environ.get("MNIST_DATA_DIR") or ROOT.parent / "shared" / "data" / "mnist")
    if not (path / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found at {path}: set MNIST_DATA_DIR to the folder with the four IDX files")
    return path


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    return mnist_dir()


@pytest.fixture(scope="session")
def mnist(mnist_path: Path):
    from training.data import load_from_dir

    return load_from_dir(mnist_path)


@pytest.fixture(scope="session")
def offline_probabilities(mnist: Mnist) -> np.ndarray:
    """The committed model's answer for all 10,000 test images, through the SavedModel signature directly."""
    from training.evaluation import predict_saved_model

    return predict_saved_model(COMMITTED_VERSION, mnist.test_images)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SignallingServer(uvicorn.Server):
    """uvicorn's server, setting `settled` once it is listening (its startup done)."""

    def __init__(self, config: uvicorn.Config, settled: threading.Event) -> None:
        super().__init__(config)
        self.settled = settled

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.settled.set()


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread, stopped (gracefully) at the end. Entering it
    waits until a model version serves (its /readyz says ready), unless `wait_ready=False`."""

    def __init__(self, wait_ready: bool = True, **settings: object) -> None:
        from app.main import create_app
        from app.settings import Settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_ready = wait_ready
        settings.setdefault("model_base_path", MODELS)
        self.app = create_app(Settings(port=self.port, **settings))  # type: ignore[arg-type]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.settled = threading.Event()  # set when the server listens, or when it has given up
        self.server = SignallingServer(config, self.settled)
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        try:
            self.server.run()
        finally:
            self.settled.set()

    def __enter__(self) -> LiveServer:
        self.thread.start()
        if not self.settled.wait(timeout=120) or not self.server.started:
            raise RuntimeError("test server did not start")
        if self.wait_ready and not self.until(lambda http: http.get("/readyz").status_code == 200, timeout=120):
            raise RuntimeError("test server did not become ready")
        return self

    def until(self, check: Callable[[httpx.Client], bool], timeout: float = 60, every: float = 0.05) -> bool:
        """Poll `check(client)` until it holds (True) or `timeout` seconds pass (False): a bounded wait on real
        state, such as a version appearing in /model."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while time.monotonic() < deadline:
                if check(http):
                    return True
                time.sleep(every)
        return False

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http
