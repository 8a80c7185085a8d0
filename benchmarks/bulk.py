"""`python -m benchmarks.bulk`: bulk tensor requests against the model's own compute rate, on one core.

The model's rate is the served signature (`app.model.DigitModel.predict`) called on the MNIST test images in batches
of BATCH_MAX_SIZE, in a helper process pinned to the server's core. The service runs pinned to that same core, and
each round measures the model first and then every request kind, so a drift of the shared machine touches both
alike; the targets are judged on the median of the per-round ratios. Every answer is checked against the model's own
classes. Then the p99 of single `/predict` calls at c=1, quiet and while bulk requests run back to back, and the peak
memory of the largest binary and JSON tensors MAX_TENSOR_BYTES accepts, each on a fresh server. `make bench` runs
this after the /predict benchmark and writes the figures into docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.load import BOUNDARY, mnist_dir, mnist_images, multipart_body
from benchmarks.processes import ROOT, Running, rss_mb, running
from benchmarks.run import specs

V2_INFER = "/v2/models/mnist/infer"
TFS_PREDICT = "/v1/models/mnist:predict"
JSON_IMAGES = 2_000
REQUEST_TIMEOUT_S = 300
HEADER_ROOM = 4096  # bytes left under MAX_TENSOR_BYTES for a binary request's JSON header
DTYPES = {"FP32": np.float32, "INT64": np.int64}
BINARY_TARGET, JSON_TARGET, P99_TARGET = 0.8, 0.4, 3.0


@dataclass(frozen=True)
class Case:
    """One kind of bulk request: its body, how to read the classes out of the answer, and the target if any."""

    label: str
    path: str
    body: bytes
    headers: dict[str, str]
    count: int
    classes: Callable[[http.client.HTTPResponse, bytes], np.ndarray]
    target: float | None = None


@dataclass
class CaseResult:
    label: str
    count: int
    body_mb: float
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    mismatches: int = 0
    target: float | None = None

    @property
    def rate(self) -> float:
        return self.count / statistics.median(self.seconds)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


@dataclass
class BulkResult:
    model_rates: list[float]
    cases: list[CaseResult]
    quiet_p99_ms: float = 0.0
    busy_p99_ms: float = 0.0
    quiet_p50_ms: float = 0.0
    busy_p50_ms: float = 0.0
    busy_calls: int = 0
    shared_bulk_rate: float = 0.0  # images/s of the bulk requests while the single calls ran beside them
    memory: list[tuple[str, float, float]] = field(default_factory=list)  # (request, idle MB, peak MB)
    batch_max_size: int = 0
    max_tensor_bytes: int = 0


# ---------------------------------------------------------------- requests


def v2_binary(images: np.ndarray, outputs: Sequence[str] = ("probabilities", "class")) -> tuple[bytes, dict[str, str]]:
    """A V2 request with `images` as one binary UINT8 tensor, asking for binary outputs, as tritonclient sends it."""
    tensor = {"name": "images", "shape": list(images.shape), "datatype": "UINT8"}
    header = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": images.size}}],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return head + images.astype(np.uint8).tobytes(), headers


def v2_json(images: np.ndarray, datatype: str, nested: bool) -> bytes:
    values = images.astype(np.float32 if datatype == "FP32" else np.uint8)
    data = values.tolist() if nested else values.ravel().tolist()
    return json.dumps(
        {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": datatype, "data": data}]}
    ).encode()


def v2_classes(response: http.client.HTTPResponse, body: bytes) -> np.ndarray:
    """The `class` output of a V2 answer, JSON or binary."""
    length = int(response.getheader("Inference-Header-Content-Length") or len(body))
    offset = length
    for output in json.loads(body[:length])["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values = np.asarray(output["data"])
        else:
            values = np.frombuffer(body[offset : offset + size], dtype=DTYPES[output["datatype"]])
            offset += size
        if output["name"] == "class":
            return values.reshape(-1)
    raise ValueError("no class output in the answer")


def tfserving_classes(key: str) -> Callable[[http.client.HTTPResponse, bytes], np.ndarray]:
    """The digits in a :predict answer: its `key` holds the probabilities as bare lists (a signature of one
    output) or by output name (several: an object per row, or one object of columns)."""

    def classes(_: http.client.HTTPResponse, body: bytes) -> np.ndarray:
        answer = json.loads(body)[key]
        if isinstance(answer, dict):
            answer = answer["probabilities"]
        rows = [row["probabilities"] if isinstance(row, dict) else row for row in answer]
        return np.asarray(rows).argmax(axis=1)

    return classes


def cases(images: np.ndarray) -> list[Case]:
    json_type = {"Content-Type": "application/json"}
    few = images[:JSON_IMAGES]
    binary, binary_headers = v2_binary(images)
    n = len(few)
    return [
        Case(f"V2 binary UINT8, {len(images):,} images", V2_INFER, binary, binary_headers, len(images), v2_classes,
             BINARY_TARGET),
        Case(f"V2 JSON FP32 flat data, {n:,} images", V2_INFER, v2_json(few, "FP32", nested=False), json_type, n,
             v2_classes, JSON_TARGET),
        Case(f"V2 JSON FP32 nested data, {n:,} images", V2_INFER, v2_json(few, "FP32", nested=True), json_type, n,
             v2_classes),
        Case(f"TF Serving columnar (inputs), {n:,} images", TFS_PREDICT, json.dumps({"inputs": few.tolist()}).encode(),
             json_type, n, tfserving_classes("outputs")),
        Case(f"TF Serving rows (instances), {n:,} images", TFS_PREDICT,
             json.dumps({"instances": few.tolist()}).encode(), json_type, n, tfserving_classes("predictions")),
    ]  # fmt: skip


def send(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[float, http.client.HTTPResponse, bytes]:
    """(seconds from sending the request to holding the whole answer, the response, its body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        started = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {payload[:300]!r}")
    return elapsed, response, payload


# ---------------------------------------------------------------- the model's own rate


class ModelRate:
    """A helper process on the server's core that times the served signature on batches of BATCH_MAX_SIZE."""

    def __init__(self, core: int, batch: int, classes_path: Path) -> None:
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-m", "benchmarks.bulk", "--model-worker", str(batch),
             str(classes_path)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
        self.ask("ready")

    def ask(self, command: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            raise RuntimeError(f"the model-rate helper exited with {self.process.wait()}")
        return answer

    def images_per_second(self) -> float:
        return float(self.ask("measure"))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(60)


def model_worker(batch: int, classes_path: Path) -> None:
    """The helper's side: load as the service does, save the model's classes, then time a pass per request."""
    from app.model import DigitModel, configure_threads
    from app.settings import Settings

    settings = Settings()
    configure_threads(settings.intra_op_threads(), settings.inter_op_threads())
    model = DigitModel(settings.model_dir, settings.model_name, settings.model_version)
    images = mnist_images(mnist_dir(), "test", 10_000)[0].astype(np.float32)
    batches = [images[start : start + batch] for start in range(0, len(images), batch)]
    np.save(classes_path, np.concatenate([model.answer(b).probabilities for b in batches]).argmax(axis=1))
    for command in sys.stdin:
        if command.strip() == "measure":
            started = time.perf_counter()
            for chunk in batches:
                model.predict(chunk)
            print(len(images) / (time.perf_counter() - started), flush=True)
        else:
            print("ok", flush=True)


# ---------------------------------------------------------------- single calls beside bulk ones


def predict_bodies(images: np.ndarray) -> list[bytes]:
    bodies = []
    for index, digit in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(digit.astype(np.uint8), mode="L").save(buffer, format="PNG")
        bodies.append(multipart_body(buffer.getvalue(), f"{index}.png"))
    return bodies


def single_latencies(
    port: int, bodies: list[bytes], seconds: float, keep: Callable[[float, float], bool]
) -> list[float]:
    """Milliseconds of sequential POST /predict calls on one connection for `seconds`, those `keep(start, end)`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    kept, index = [], 0
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("POST", "/predict", body=bodies[index % len(bodies)], headers=headers)
            response = connection.getresponse()
            response.read()
            ended = time.perf_counter()
            if response.status != 200:
                raise RuntimeError(f"POST /predict answered {response.status}")
            if keep(started, ended):
                kept.append((ended - started) * 1000)
            index += 1
    finally:
        connection.close()
    return kept


class BulkLoad:
    """Bulk requests back to back in a thread; `covers(start)` says whether one was in flight at `start`."""

    def __init__(self, port: int, body: bytes, headers: dict[str, str]) -> None:
        self.port, self.body, self.headers = port, body, headers
        self.current: float | None = None
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.current = time.perf_counter()
            self.seconds.append(send(self.port, V2_INFER, self.body, self.headers)[0])
            self.current = None

    def covers(self, start: float, _: float) -> bool:
        current = self.current
        return current is not None and start >= current

    def __enter__(self) -> BulkLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT_S)


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


# ---------------------------------------------------------------- memory


def largest_binary(images: np.ndarray, limit: int) -> tuple[bytes, dict[str, str], int]:
    count = (limit - HEADER_ROOM) // images[0].size
    tiled = np.resize(images, (count, *images.shape[1:]))
    body, headers = v2_binary(tiled, outputs=("class",))
    return body, headers, count


def largest_json(images: np.ndarray, limit: int) -> tuple[bytes, int]:
    """Flat UINT8 JSON, the encoding with the most values per byte, with as many images as fit under `limit`."""
    per_image = len(v2_json(images[:100], "UINT8", nested=False)) / 100
    count = int(limit / per_image * 0.98)
    while True:
        body = v2_json(np.resize(images, (count, *images.shape[1:])), "UINT8", nested=False)
        if len(body) <= limit:
            return body, count
        count = int(count * 0.98)


def peak_memory(server: Running, body: bytes, headers: dict[str, str]) -> tuple[float, float]:
    idle = rss_mb(server.process.pid)
    send(server.port, V2_INFER, body, headers)
    return idle, rss_mb(server.process.pid, "VmHWM")


# ---------------------------------------------------------------- the run


@contextmanager
def model_rate(core: int, batch: int, scratch: Path) -> Iterator[tuple[ModelRate, np.ndarray]]:
    helper = ModelRate(core, batch, scratch / "classes.npy")
    try:
        yield helper, np.load(scratch / "classes.npy")
    finally:
        helper.close()


def run_bulk(server_core: int, rounds: int, fairness_seconds: float, service_env: dict[str, str]) -> BulkResult:
    from app.settings import Settings

    settings = Settings()
    images, _ = mnist_images(mnist_dir(), "test", 10_000)
    spec = specs(service_env)["service"]
    result = BulkResult([], [], batch_max_size=settings.batch_max_size, max_tensor_bytes=settings.max_tensor_bytes)
    with tempfile.TemporaryDirectory(prefix="mnist-bulk-") as scratch:
        log_dir = Path(scratch)
        with (
            model_rate(server_core, settings.batch_max_size, log_dir) as (helper, expected),
            running(spec, server_core, log_dir) as (server, _),
        ):
            kinds = cases(images)
            result.cases = [CaseResult(c.label, c.count, len(c.body) / 1e6, target=c.target) for c in kinds]
            for case in kinds:  # warm-up, and the check that every answer is the model's own
                _, response, payload = send(server.port, case.path, case.body, case.headers)
                found = case.classes(response, payload)
                next(r for r in result.cases if r.label == case.label).mismatches = int(
                    (found != expected[: case.count]).sum()
                )
            for number in range(rounds):
                rate = helper.images_per_second()
                result.model_rates.append(rate)
                line = [f"  round {number + 1}: model {rate:,.0f} img/s"]
                for case, measured in zip(kinds, result.cases, strict=True):
                    seconds, _, _ = send(server.port, case.path, case.body, case.headers)
                    measured.seconds.append(seconds)
                    measured.ratios.append(case.count / seconds / rate)
                    line.append(f"{measured.ratios[-1]:.2f}")
                print(" ".join(line), flush=True)
            singles = predict_bodies(images[:200])
            quiet = single_latencies(server.port, singles, fairness_seconds, lambda *_: True)
            bulk_body, bulk_headers = v2_binary(images)
            with BulkLoad(server.port, bulk_body, bulk_headers) as load:
                busy = single_latencies(server.port, singles, fairness_seconds, load.covers)
            result.quiet_p50_ms, result.quiet_p99_ms = percentile(quiet, 0.5), percentile(quiet, 0.99)
            result.busy_p50_ms, result.busy_p99_ms = percentile(busy, 0.5), percentile(busy, 0.99)
            result.busy_calls = len(busy)
            result.shared_bulk_rate = len(images) / statistics.median(load.seconds)
            print(f"  /predict c=1 p99: quiet {result.quiet_p99_ms:.2f} ms, during bulk {result.busy_p99_ms:.2f} ms "
                  f"({len(busy)} calls)", flush=True)  # fmt: skip
        body, headers, count = largest_binary(images, settings.max_tensor_bytes)
        json_body, json_count = largest_json(images, settings.max_tensor_bytes)
        for label, request, request_headers in (
            (f"V2 binary UINT8, {count:,} images ({len(body) / 2**20:.1f} MiB)", body, headers),
            (f"V2 JSON UINT8 flat, {json_count:,} images ({len(json_body) / 2**20:.1f} MiB)", json_body,
             {"Content-Type": "application/json"}),
        ):  # fmt: skip
            with running(spec, server_core, log_dir) as (server, _):
                send(server.port, "/predict", *warm_up_body(images))
                idle, peak = peak_memory(server, request, request_headers)
            result.memory.append((label, idle, peak))
            print(f"  memory, {label}: {idle:.0f} MB idle, peak {peak:.0f} MB", flush=True)
    return result


def warm_up_body(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
    return predict_bodies(images[:1])[0], {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


# ---------------------------------------------------------------- report


def bulk_targets(result: BulkResult) -> list[tuple[str, str, bool]]:
    rows = []
    for case in result.cases:
        if case.target is not None:
            rows.append(
                (
                    f"{case.label} >= {case.target}x the model's own rate",
                    f"{case.ratio:.2f}x ({case.rate:,.0f} img/s; {case.mismatches} answers differ from the model's)",
                    case.ratio >= case.target and case.mismatches == 0,
                )
            )
    ratio = result.busy_p99_ms / result.quiet_p99_ms
    rows.append(
        (
            f"/predict p99 during a bulk request <= {P99_TARGET:g}x its quiet p99",
            f"{ratio:.2f}x ({result.busy_p99_ms:.2f} / {result.quiet_p99_ms:.2f} ms, {result.busy_calls} calls)",
            ratio <= P99_TARGET,
        )
    )
    return rows


def bulk_markdown(result: BulkResult, command: str) -> str:
    model = statistics.median(result.model_rates)
    lines = [
        f"Command: `{command}`. Server and model pinned to the same core; {len(result.model_rates)} rounds, each "
        f"timing the model's own rate (the served signature on the 10,000 test images in batches of "
        f"BATCH_MAX_SIZE={result.batch_max_size}: median {model:,.0f} images/s, rounds "
        + ", ".join(f"{r:,.0f}" for r in result.model_rates)
        + ") and then each request once. Time: from sending the request to holding the whole answer; every "
        "answer's classes are compared with the model's own.",
        "",
        "| request | body | median time | images/s | × model (median of rounds) | answers ≠ model's |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in result.cases:
        lines.append(
            f"| {case.label} | {case.body_mb:.1f} MB | {statistics.median(case.seconds) * 1000:,.0f} ms | "
            f"{case.rate:,.0f} | {case.ratio:.2f} | {case.mismatches} |"
        )
    lines += [
        "",
        "Single `POST /predict` calls at c=1 (one connection, MNIST PNG uploads), "
        f"quiet and while 10,000-image V2 binary requests run back to back (calls counted only while one is in "
        f"flight): p50 {result.quiet_p50_ms:.2f} → {result.busy_p50_ms:.2f} ms, p99 {result.quiet_p99_ms:.2f} → "
        f"{result.busy_p99_ms:.2f} ms ({result.busy_calls} calls during bulk). Meanwhile the bulk requests ran at "
        f"{result.shared_bulk_rate:,.0f} images/s: while others share the engine, bulk rows go in chunks of "
        f"BATCH_MAX_SIZE / 8, which cost more per image than full batches (app/batching.py).",
        "",
        f"Memory of the largest requests MAX_TENSOR_BYTES={result.max_tensor_bytes:,} accepts, each on a fresh "
        "server (resident memory idle after one warm-up call, then the process's peak, VmHWM):",
        "",
        "| request | idle | peak | held by the request |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {label} | {idle:.0f} MB | {peak:.0f} MB | {peak - idle:.0f} MB |" for label, idle, peak in result.memory
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fairness-seconds", type=float, default=10)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--model-worker", nargs=2, metavar=("BATCH", "CLASSES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model_worker:
        model_worker(int(args.model_worker[0]), Path(args.model_worker[1]))
        return
    os.sched_setaffinity(0, {args.client_core})
    result = run_bulk(args.server_core, args.rounds, args.fairness_seconds, {"WORKERS": "1"})
    print(bulk_markdown(result, "python -m benchmarks.bulk " + " ".join(argv or sys.argv[1:])))
    for name, measured, met in bulk_targets(result):
        print(f"{'met ' if met else 'MISS'}  {name}: {measured}")


if __name__ == "__main__":
    main()
