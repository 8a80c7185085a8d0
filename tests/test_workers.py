"""Server processes: `mnist-serve` with WORKERS=2 over real HTTP, and what a worker imports at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import COMMITTED_VERSION, MODELS, ROOT, free_port
from tests.model_versions import install
from tests.uploads import mnist_png
from training.data import Mnist

START_TIMEOUT_S = 240  # two workers import TensorFlow at once; generous for a loaded CI machine
STARTED = "Application startup complete."  # uvicorn logs it per worker, once lifespan has started the repository
SERVING = "model mnist version {} verified and serving"  # the repository logs it per worker


def worker_processes(pid: int) -> list[int]:
    """Children of `pid` started by multiprocessing's spawn (uvicorn's workers; not its resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


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

    def seen(self, needle: str, times: int, timeout: float) -> bool:
        with self.changed:
            return (
                self.changed.wait_for(
                    lambda: "".join(self.lines).count(needle) >= times or self.closed.is_set(), timeout
                )
                and "".join(self.lines).count(needle) >= times
            )


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc")
def test_two_workers_each_load_the_model_answer_and_take_a_new_version(mnist: Mnist, tmp_path: Path) -> None:
    port = free_port()
    install(COMMITTED_VERSION, tmp_path / "mnist", 1)
    env = {
        **os.environ,
        "WORKERS": "2",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_BASE_PATH": str(tmp_path),
        "MODEL_POLL_SECONDS": "0.2",
        "LOG_LEVEL": "info",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the cleanup below reaches the workers too
    )
    output = ServerOutput(server)
    try:
        started = output.seen(STARTED, times=2, timeout=START_TIMEOUT_S)
        assert started, f"two workers not started in {START_TIMEOUT_S} s (exit {server.poll()}):\n{output.text()}"
        assert output.seen(SERVING.format(1), times=2, timeout=START_TIMEOUT_S), output.text()
        assert len(worker_processes(server.pid)) == 2  # a supervisor and one process per worker

        digits = mnist.test_images[:64]

        def classify(index: int) -> tuple[int, int]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                response = client.post("/predict", files={"file": ("d.png", mnist_png(digits[index]))})
                assert response.status_code == 200, response.text
                return int(response.json()["predicted_class"]), int(response.json()["model_version"])

        def answers() -> list[tuple[int, int]]:
            with ThreadPoolExecutor(8) as pool:  # a connection per request: the kernel spreads them over the workers
                return list(pool.map(classify, range(len(digits))))

        first = answers()
        assert sum(a == int(label) for (a, _), label in zip(first, mnist.test_labels[:64], strict=True)) >= 62
        assert {version for _, version in first} == {1}

        # Each worker polls on its own; once both have logged version 2 serving, every answer comes from it.
        install(COMMITTED_VERSION, tmp_path / "mnist", 2)
        assert output.seen(SERVING.format(2), times=2, timeout=START_TIMEOUT_S), output.text()
        assert {version for _, version in answers()} == {2}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    output.closed.wait(timeout=60)
    assert server.returncode == 0, output.text()
    assert output.text().count("Finished server process") == 2  # both workers shut down cleanly


def test_a_worker_imports_tensorflow_without_keras() -> None:
    """Serving needs no Keras: TensorFlow's eager Keras import is skipped (faster start, less memory per worker),
    and Keras still imports normally afterwards in the same process."""
    script = (
        "import sys\n"
        "from app.model import DigitModel\n"
        "from app.tf_import import import_tensorflow\n"
        "from pathlib import Path\n"
        "import_tensorflow()\n"
        "model = DigitModel(Path(sys.argv[1]), 'mnist')\n"
        "print('keras loaded:', 'keras' in sys.modules)\n"
        "import keras\n"
        "print('keras importable:', hasattr(keras, 'Sequential'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(MODELS / "mnist")],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "keras loaded: False" in done.stdout and "keras importable: True" in done.stdout
