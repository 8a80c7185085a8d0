"""The benchmark's load: real MNIST test digits as multipart PNG uploads, posted by wrk, and what it measured."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.processes import ROOT, RssSampler, Running

BENCH = Path(__file__).resolve().parent
BOUNDARY = "mnistbenchboundary7d1e"
WRK_TIMEOUT = "10s"  # a request slower than this counts as an error


@dataclass
class LoadResult:
    server: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    socket_errors: int
    rss_mb: float


def mnist_dir() -> Path:
    """MNIST_DATA_DIR, else the shared data folder beside the project."""
    return Path(os.environ.get("MNIST_DATA_DIR", ROOT.parent / "shared" / "data" / "mnist"))


def mnist_images(data_dir: Path, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` images and labels of MNIST's test (or train) split, read with the training job's reader."""
    from training.data import FILE_STEMS, IMAGES_MAGIC, LABELS_MAGIC, DataError, find_file, read_idx

    try:
        images = read_idx(find_file(data_dir, FILE_STEMS[f"{split}_images"]), IMAGES_MAGIC)
        labels = read_idx(find_file(data_dir, FILE_STEMS[f"{split}_labels"]), LABELS_MAGIC)
    except DataError as error:
        sys.exit(f"cannot read MNIST ({error}): set MNIST_DATA_DIR to the folder with the IDX files")
    return images[:count], labels[:count]


def multipart_body(png: bytes, name: str) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def write_bodies(images: np.ndarray, folder: Path) -> None:
    """One file per request body, as the Lua script reads them: each a real MNIST test digit as a PNG upload."""
    for index, digit in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(digit.astype(np.uint8), mode="L").save(buffer, format="PNG")
        (folder / f"{index:05d}.bin").write_bytes(multipart_body(buffer.getvalue(), f"{index}.png"))


def post(port: int, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def run_wrk(port: int, concurrency: int, seconds: float, bodies: Path, count: int, core: int) -> dict[str, float]:
    command = [
        "taskset", "-c", str(core), "wrk",
        "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", f"--timeout={WRK_TIMEOUT}",
        "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/predict",
        "--", str(bodies), str(count), BOUNDARY,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")


def measure(
    server: Running, name: str, concurrency: int, seconds: float, bodies: Path, count: int, core: int
) -> LoadResult:
    with RssSampler(server.process.pid) as sampler:
        raw = run_wrk(server.port, concurrency, seconds, bodies, count, core)
    duration = raw["duration_us"] / 1e6
    socket_errors = int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"])
    return LoadResult(
        server=name,
        concurrency=concurrency,
        seconds=round(duration, 1),
        requests=int(raw["requests"]),
        rps=round(raw["requests"] / duration, 1),
        p50_ms=round(raw["p50_us"] / 1000, 2),
        p90_ms=round(raw["p90_us"] / 1000, 2),
        p99_ms=round(raw["p99_us"] / 1000, 2),
        errors=int(raw["status"]) + socket_errors,
        non_2xx=int(raw["status"]),
        socket_errors=socket_errors,
        rss_mb=round(sampler.highest, 1),
    )


def check_answers(port: int, bodies: Path, labels: np.ndarray, has_model: bool) -> None:
    """A few real requests before the load: status 200, and the right digit from servers that run the model."""
    hits = 0
    for index in range(min(50, len(labels))):
        status, payload = post(port, (bodies / f"{index:05d}.bin").read_bytes())
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}: {payload[:300]!r}")
        hits += json.loads(payload)["predicted_class"] == int(labels[index])
    if has_model and hits < 0.9 * min(50, len(labels)):
        raise RuntimeError(f"only {hits} of 50 answers are right: the benchmark would not measure real work")
