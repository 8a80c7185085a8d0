"""Server processes: `mnist-serve` with WORKERS=2 over real HTTP (one /metrics for both), and what a worker
imports at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import COMMITTED_VERSION, MODELS, ROOT
from tests.model_versions import install
from tests.processes import START_TIMEOUT_S, serving
from tests.test_metrics import scrape, value
from tests.uploads import mnist_png
from training.data import Mnist

SERVING = "model mnist version {} verified and serving"  # the repository logs it per worker


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
def test_two_workers_answer_share_one_metrics_and_take_a_new_version(mnist: Mnist, tmp_path: Path) -> None:
    install(COMMITTED_VERSION, tmp_path / "mnist", 1)
    with serving(WORKERS="2", LOG_FORMAT="json", MODEL_BASE_PATH=str(tmp_path), MODEL_POLL_SECONDS="0.2") as live:
        live.wait_started(workers=2)
        assert live.output.seen(SERVING.format(1), times=2, timeout=START_TIMEOUT_S), live.output.text()
        workers = worker_processes(live.process.pid)
        assert len(workers) == 2  # a supervisor and one process per worker

        digits = mnist.test_images[:64]

        def classify(index: int) -> tuple[int, int]:
            with httpx.Client(base_url=live.url, timeout=60) as client:
                response = client.post("/predict", files={"file": ("d.png", mnist_png(digits[index]))})
                assert response.status_code == 200, response.text
                return int(response.json()["predicted_class"]), int(response.json()["model_version"])

        def answers() -> list[tuple[int, int]]:
            with ThreadPoolExecutor(8) as pool:  # a connection per request: the kernel spreads them over the workers
                return list(pool.map(classify, range(len(digits))))

        first = answers()
        assert sum(a == int(label) for (a, _), label in zip(first, mnist.test_labels[:64], strict=True)) >= 62
        assert {version for _, version in first} == {1}
        answered_by = {line["pid"] for line in live.output.json_lines() if line.get("route") == "/predict"}
        assert answered_by == set(workers), "both workers should have answered some of the requests"

        with httpx.Client(base_url=live.url, timeout=60) as client:  # one scrape, whichever worker answers it
            samples = scrape(client)
        assert value(samples, "http_requests_total", method="POST", route="/predict", status="200") == len(digits)
        assert sum(value(samples, "predictions_total", predicted_class=str(d)) for d in range(10)) == len(digits)
        assert value(samples, "batch_size_images_sum") == len(digits)
        assert value(samples, "model_version", model="mnist") == 1
        assert value(samples, "batch_queue_images") == 0

        # Each worker polls on its own; once both have logged version 2 serving, every answer comes from it.
        install(COMMITTED_VERSION, tmp_path / "mnist", 2)
        assert live.output.seen(SERVING.format(2), times=2, timeout=START_TIMEOUT_S), live.output.text()
        assert {version for _, version in answers()} == {2}
    assert live.process.returncode == 0, live.output.text()
    assert live.output.text().count("Finished server process") == 2  # both workers shut down cleanly


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
