"""Server processes: `mnist-serve` with WORKERS=2 over real HTTP, and what a worker imports at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODELS, ROOT, free_port
from tests.uploads import mnist_png
from training.data import Mnist

START_TIMEOUT_S = 240  # two workers import TensorFlow at once; generous for a loaded CI machine
STARTED = "Application startup complete."  # uvicorn logs it per worker, once lifespan has loaded the model


def worker_processes(pid: int) -> list[int]:
    """Children of `pid` started by multiprocessing's spawn (uvicorn's workers; not its resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc")
def test_two_workers_each_load_the_model_and_answer(mnist: Mnist, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WORKERS": "2",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_BASE_PATH": str(MODELS),
        "LOG_LEVEL": "info",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.server"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the cleanup below reaches the workers too
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while log.read_text().count(STARTED) < 2:
            assert server.poll() is None, f"mnist-serve exited with {server.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"two workers not started in {START_TIMEOUT_S} s:\n{log.read_text()}"
            time.sleep(0.2)
        assert len(worker_processes(server.pid)) == 2  # a supervisor and one process per worker

        digits = mnist.test_images[:64]

        def classify(index: int) -> int:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                response = client.post("/predict", files={"file": ("d.png", mnist_png(digits[index]))})
                assert response.status_code == 200, response.text
                return int(response.json()["predicted_class"])

        with ThreadPoolExecutor(8) as pool:  # a connection per request: the kernel spreads them over the workers
            answers = list(pool.map(classify, range(len(digits))))
        assert sum(a == int(label) for a, label in zip(answers, mnist.test_labels[:64], strict=True)) >= 62
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.returncode == 0, log.read_text()
    assert log.read_text().count("Finished server process") == 2  # both workers shut down cleanly


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
