"""`make bench` / `python -m benchmarks.run`: the service against two reference servers, under the same load.

For each server (the service via `mnist-serve`, the floor, the direct baseline) it measures the cold start
(process start -> /readyz answering, repeated), then drives POST /predict with `wrk` at each concurrency, posting
real MNIST test images as multipart PNG uploads. The server is pinned to one core and wrk (and this script) to
another, so the load generator never competes with the server. Then all servers run at once for paired rounds at
c=64 (each round measures every server in turn; the throughput-ratio targets are judged on the medians of the
per-round ratios, which a drift of a shared machine moves far less than single figures). Then bulk tensor requests
against the model's own rate (benchmarks/bulk.py). Results: a table on stdout, docs/benchmark.md and two plots.
`--tune` adds a sweep of the batching settings. Every run stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
BOUNDARY = "mnistbenchboundary7d1e"
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
WRK_TIMEOUT = "10s"  # a request slower than this counts as an error


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    label: str = ""


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


@dataclass
class ServerResult:
    name: str
    label: str
    cold_starts_s: list[float]
    loads: list[LoadResult]
    peak_rss_mb: float
    load_average: tuple[float, float, float]
    settings: dict[str, str]

    @property
    def cold_start_s(self) -> float:
        return statistics.median(self.cold_starts_s)


# ---------------------------------------------------------------- inputs


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


# ---------------------------------------------------------------- processes


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


def post(port: int, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        connection.request("POST", "/predict", body=body, headers=headers)
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


# ---------------------------------------------------------------- load


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


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    concurrency: list[int]
    seconds: float
    long_seconds: float
    warmup_seconds: float
    cold_starts: int
    server_core: int
    client_core: int
    bodies: Path
    count: int
    labels: np.ndarray


def benchmark_server(
    spec: ServerSpec, plan: Plan, log_dir: Path, concurrency: Sequence[int] | None = None
) -> ServerResult:
    label = spec.label or spec.name
    cold_starts = []
    for _ in range(plan.cold_starts - 1):  # the extra starts measure cold start only; the last one is loaded
        with running(spec, plan.server_core, log_dir) as (_, cold):
            cold_starts.append(cold)
    loads: list[LoadResult] = []
    with running(spec, plan.server_core, log_dir) as (server, cold):
        cold_starts.append(cold)
        print(f"  {label}: ready in {cold:.2f} s (pid {server.process.pid}, port {server.port})", flush=True)
        check_answers(server.port, plan.bodies, plan.labels, has_model=spec.name != "floor")
        if plan.warmup_seconds > 0:
            run_wrk(server.port, 16, plan.warmup_seconds, plan.bodies, plan.count, plan.client_core)
        for level in concurrency or plan.concurrency:
            # The service's run at the highest concurrency is the long one: it is the no-errors check.
            is_long = spec.name == "service" and level == max(plan.concurrency) and concurrency is None
            seconds = plan.long_seconds if is_long else plan.seconds
            result = measure(server, label, level, seconds, plan.bodies, plan.count, plan.client_core)
            loads.append(result)
            print(
                f"  {label:>10} c={level:<4} {result.rps:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}  rss {result.rss_mb:.0f} MB  "
                f"({result.seconds:.0f} s)",
                flush=True,
            )
        peak = rss_mb(server.process.pid, "VmHWM")
    return ServerResult(
        name=spec.name,
        label=label,
        cold_starts_s=[round(c, 3) for c in cold_starts],
        loads=loads,
        peak_rss_mb=round(peak, 1),
        load_average=os.getloadavg(),
        settings=spec.env,
    )


def specs(service_env: dict[str, str]) -> dict[str, ServerSpec]:
    serve = shutil.which("mnist-serve", path=str(Path(sys.executable).parent)) or "mnist-serve"
    return {
        "service": ServerSpec("service", [serve], service_env),
        "floor": ServerSpec("floor", [sys.executable, "-m", "benchmarks.floor_app"]),
        "direct": ServerSpec("direct", [sys.executable, "-m", "benchmarks.direct_app"]),
    }


def cold_phases(plan: Plan, service_env: dict[str, str], *mode: str) -> dict[str, float]:
    """Median seconds per start-up phase over fresh `benchmarks.coldstart` processes on the server's core; the mode
    `plain` times TensorFlow's plain import instead of the service's trimmed one."""
    runs = []
    env = {**os.environ, **service_env, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for _ in range(plan.cold_starts):
        done = subprocess.run(
            ["taskset", "-c", str(plan.server_core), sys.executable, "-m", "benchmarks.coldstart", *mode],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT_S,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    phases = {name: round(statistics.median(run[name] for run in runs), 2) for name in runs[0]}
    print("  " + ", ".join(f"{name} {value:g}" for name, value in phases.items()), flush=True)
    return phases


# ---------------------------------------------------------------- paired rounds

PAIRED_CONCURRENCY = 64


@dataclass
class PairedRounds:
    """req/s at PAIRED_CONCURRENCY per round and server: all servers up at once, measured one after the other in
    each round, so a drift of the shared machine moves a round's figures together and their ratios stay fair."""

    seconds: float
    rounds: list[dict[str, float]]

    def ratios(self, numerator: str, denominator: str) -> list[float]:
        return [r[numerator] / r[denominator] for r in self.rounds if numerator in r and denominator in r]


def paired_rounds(chosen: Sequence[str], available: dict[str, ServerSpec], plan: Plan, log_dir: Path,
                  rounds: int, seconds: float) -> PairedRounds:  # fmt: skip
    measured: list[dict[str, float]] = []
    with ExitStack() as stack:
        servers = {name: stack.enter_context(running(available[name], plan.server_core, log_dir))[0] for name in chosen}
        for server in servers.values():  # idle servers cost the core nothing; each gets warm before it counts
            run_wrk(server.port, 16, plan.warmup_seconds, plan.bodies, plan.count, plan.client_core)
        for index in range(rounds):
            order = list(chosen[index % len(chosen) :]) + list(chosen[: index % len(chosen)])  # who goes first rotates
            row = {}
            for name in order:
                row[name] = measure(
                    servers[name], name, PAIRED_CONCURRENCY, seconds, plan.bodies, plan.count, plan.client_core
                ).rps
            measured.append(row)
            print(f"  round {index + 1}: " + ", ".join(f"{name} {row[name]:,.0f}" for name in chosen), flush=True)
    return PairedRounds(seconds, measured)


def paired_markdown(paired: PairedRounds) -> str:
    names = list(paired.rounds[0])
    pairs = [("service", other) for other in ("floor", "direct") if other in names and "service" in names]
    header = "| round | " + " | ".join(f"{n} req/s" for n in names) + " | " + " | ".join(f"{a} / {b}" for a, b in pairs)
    lines = [header + " |", "| ---: |" + " ---: |" * (len(names) + len(pairs))]
    columns = [paired.ratios(a, b) for a, b in pairs]
    for index, row in enumerate(paired.rounds):
        lines.append(
            f"| {index + 1} | " + " | ".join(f"{row[n]:,.0f}" for n in names) + " | "
            + " | ".join(f"{column[index]:.2f}" for column in columns) + " |"
        )  # fmt: skip
    medians = [statistics.median(column) for column in columns]
    lines.append(
        "| median | " + " | ".join(f"{statistics.median(r[n] for r in paired.rounds):,.0f}" for n in names) + " | "
        + " | ".join(f"**{m:.2f}**" for m in medians) + " |"
    )  # fmt: skip
    return (
        f"All servers up at once (each pinned to the server core), {len(paired.rounds)} rounds of "
        f"{paired.seconds:g} s at c={PAIRED_CONCURRENCY} each, the order rotating between rounds. The ratio targets "
        "are judged on the medians of the per-round ratios.\n\n" + "\n".join(lines)
    )


# ---------------------------------------------------------------- tuning


TUNE_SWEEPS: dict[str, list[float]] = {
    "BATCH_MAX_SIZE": [8, 16, 32, 64, 128],
    "BATCH_MAX_WAIT_MS": [2, 10, 50, 200],
    "BATCH_QUIET_MS": [0, 0.5, 1, 2, 5],
}


def tune(plan: Plan, log_dir: Path, base_env: dict[str, str], seconds: float) -> list[dict[str, object]]:
    """The service with its defaults, then with each batching setting of TUNE_SWEEPS varied alone."""
    from app.settings import Settings

    defaults = Settings()
    default_point = {name: float(getattr(defaults, name.lower())) for name in TUNE_SWEEPS}
    points = [default_point] + [
        {**default_point, name: value}
        for name, values in TUNE_SWEEPS.items()
        for value in values
        if value != default_point[name]
    ]
    short = replace(plan, seconds=seconds, cold_starts=1)
    rows: list[dict[str, object]] = []
    for point in points:
        env = {**base_env, **{name: f"{value:g}" for name, value in point.items()}}
        label = " ".join(f"{name}={value:g}" for name, value in point.items())
        spec = ServerSpec("service", specs(env)["service"].argv, env, label=label)
        result = benchmark_server(spec, short, log_dir, concurrency=[c for c in plan.concurrency if c <= 64])
        rows.append({"settings": point, "loads": result.loads})
    return rows


# ---------------------------------------------------------------- report


def machine_facts() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()[:1]
    from importlib.metadata import version

    packages = ", ".join(
        f"{name} {version(name)}"
        for name in (
            "tensorflow-cpu",
            "fastapi",
            "uvicorn",
            "uvloop",
            "httptools",
            "python-multipart",
            "pillow",
            "numpy",
        )
        if _installed(name)
    )
    return {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "packages": packages,
        "load generator": wrk[0].split(" Copyright")[0] if wrk else "wrk",
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        + (" (with uncommitted changes)" if _dirty() else ""),
    }


def _installed(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


def _dirty() -> bool:
    status = subprocess.run(
        ["git", "status", "--porcelain", "app", "benchmarks"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return bool(status.stdout.strip())


def table(results: list[ServerResult]) -> str:
    lines = [
        "| server | concurrency | requests/s | p50 ms | p99 ms | errors | RSS MB | cold start s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for load in result.loads:
            errors = f"{load.errors}" + (f" ({load.non_2xx} non-2xx)" if load.non_2xx else "")
            lines.append(
                f"| {result.label} | {load.concurrency} | {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | "
                f"{errors} | {load.rss_mb:.0f} | {result.cold_start_s:.2f} |"
            )
    return "\n".join(lines)


def at(result: ServerResult, concurrency: int) -> LoadResult | None:
    return next((load for load in result.loads if load.concurrency == concurrency), None)


def ratio_row(
    target: str, service: LoadResult, other: LoadResult, paired: PairedRounds | None, needed: float, percent: bool
) -> tuple[str, str, bool]:
    """A throughput-ratio target: judged on the paired rounds' median ratio when there are rounds, else on the main
    table's figures."""

    def shown(ratio: float) -> str:
        return f"{ratio:.0%}" if percent else f"{ratio:.2f}x"

    single = service.rps / other.rps
    text = f"{shown(single)} ({service.rps:,.0f} / {other.rps:,.0f} req/s)"
    ratios = paired.ratios("service", other.server) if paired else []
    if not ratios:
        return target, text, single >= needed
    judged = statistics.median(ratios)
    spread = f"{shown(min(ratios))}-{shown(max(ratios))}"
    return (
        target,
        f"{shown(judged)}: median of {len(ratios)} paired rounds ({spread}); main table {text}",
        judged >= needed,
    )


def targets(results: list[ServerResult], paired: PairedRounds | None = None) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of the issue's targets that this run measured."""
    by_name = {result.name: result for result in results}
    service, floor, direct = by_name.get("service"), by_name.get("floor"), by_name.get("direct")
    rows: list[tuple[str, str, bool]] = []
    if service is None:
        return rows
    s64 = at(service, 64)
    if s64 and floor and (f64 := at(floor, 64)):
        rows.append(ratio_row("throughput at c=64 >= 50% of the floor's", s64, f64, paired, 0.5, percent=True))
    if s64 and direct and (d64 := at(direct, 64)):
        rows.append(ratio_row("throughput at c=64 >= 2.5x the direct baseline's", s64, d64, paired, 2.5, percent=False))
    if s64:
        ratio = s64.p99_ms / s64.p50_ms
        rows.append(("p99 <= 3x p50 at c=64", f"{ratio:.2f}x ({s64.p99_ms:.2f} / {s64.p50_ms:.2f} ms)", ratio <= 3))
    top = max(service.loads, key=lambda load: (load.concurrency, load.seconds), default=None)
    if top:
        rows.append(
            (
                f"no errors at c={top.concurrency} over {top.seconds:.0f} s",
                f"{top.errors} errors in {top.requests:,} requests",
                top.errors == 0 and top.concurrency >= 256 and top.seconds >= 59,
            )
        )
    rows.append(
        (
            "cold start <= 4 s",
            f"{service.cold_start_s:.2f} s (median of {', '.join(f'{c:.2f}' for c in service.cold_starts_s)})",
            service.cold_start_s <= 4,
        )
    )
    highest = max((load.rss_mb for load in service.loads), default=0.0)
    rows.append(
        (
            "RSS of one worker <= 600 MB",
            f"{highest:.0f} MB (highest sampled; peak VmHWM {service.peak_rss_mb:.0f} MB)",
            highest <= 600,
        )
    )
    return rows


def plot(results: list[ServerResult], docs: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for metric, ylabel, filename, log_y in (
        ("rps", "requests/s", "benchmark-throughput.png", False),
        ("p99_ms", "p99 latency (ms)", "benchmark-p99.png", True),
    ):
        figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        for result in results:
            levels = [load.concurrency for load in result.loads]
            axes.plot(levels, [getattr(load, metric) for load in result.loads], marker="o", label=result.label)
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({load.concurrency for r in results for load in r.loads}))
        axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        if log_y:
            axes.set_yscale("log")
        axes.set_xlabel("concurrent connections (wrk)")
        axes.set_ylabel(ylabel)
        axes.set_title(f"POST /predict, {ylabel.split(' (')[0]}: server on 1 core, wrk on another")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path = docs / filename
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written


def tuning_markdown(rows: list[dict[str, object]], seconds: float) -> str:
    levels = sorted({load.concurrency for row in rows for load in row["loads"]})  # type: ignore[attr-defined]
    header = "| " + " | ".join(TUNE_SWEEPS) + " | " + " | ".join(f"c={c} req/s, p50/p99 ms" for c in levels) + " |"
    lines = [header, "|" + " ---: |" * (len(TUNE_SWEEPS) + len(levels))]
    for row in rows:
        cells = [f"{value:g}" for value in row["settings"].values()]  # type: ignore[attr-defined]
        for level in levels:
            load = next((x for x in row["loads"] if x.concurrency == level), None)  # type: ignore[attr-defined]
            cells.append(f"{load.rps:,.0f}, {load.p50_ms:.1f}/{load.p99_ms:.1f}" if load else "")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        f"Each row: a fresh service, {seconds:g} s per concurrency; the first row has the defaults, each other "
        "row changes one setting.\n\n" + "\n".join(lines)
    )


NOTES_MARKER = "<!-- Notes below this line are kept when benchmarks/run.py rewrites this file. -->"


def kept_notes(path: Path) -> str:
    """The hand-written part of an existing report (after NOTES_MARKER), so a re-run does not erase it."""
    if not path.is_file():
        return ""
    _, marker, notes = path.read_text().partition(NOTES_MARKER)
    return notes.strip() if marker else ""


def breakdown_markdown(phases: dict[str, float], plain: dict[str, float], runs: int) -> str:
    lines = ["| phase | seconds (service) | seconds (plain `import tensorflow`) |", "| --- | ---: | ---: |"]
    lines += [
        f"| {name} | {value:.2f} | {plain.get(name, 0):.2f} |" for name, value in phases.items() if name != "rss_mb"
    ]
    return (
        f"`python -m benchmarks.coldstart` (pinned like the server, median of {runs} fresh processes each way) "
        "times what a worker does before it can answer; the service's cold start above adds the interpreter's "
        "start and uvicorn's. The service imports TensorFlow through app/tf_import.py, which skips the API "
        "namespaces and Keras modules that loading and calling a SavedModel never use; `python -m "
        "benchmarks.coldstart plain` does the same start-up with the plain import, for comparison. Resident memory "
        f"after warm-up: {phases.get('rss_mb', 0):.0f} MB (plain: {plain.get('rss_mb', 0):.0f} MB).\n\n"
        + "\n".join(lines)
    )


@dataclass(frozen=True)
class Report:
    results: list[ServerResult]
    command: str
    split: str
    facts: dict[str, str]
    started_load: tuple[float, float, float]
    breakdown: str | None = None
    tuning: str | None = None
    paired: PairedRounds | None = None
    bulk: str | None = None
    bulk_targets: list[tuple[str, str, bool]] = field(default_factory=list)


def markdown(report: Report, notes: str) -> str:
    from app.settings import Settings

    defaults = Settings()
    results = report.results
    service_env = next((r.settings for r in results if r.name == "service"), {})
    parts = [
        "# Benchmark: POST /predict",
        "",
        "Written by `make bench` (`python -m benchmarks.run`); run it to measure your own machine.",
        "",
        f"Command: `{report.command}`",
        "",
        "Three servers, one after the other, each pinned to core 0 with `taskset` while `wrk` (and the script) run "
        "on core 1:",
        "",
        "- **service**: `mnist-serve` with its defaults "
        f"(BATCH_MAX_SIZE={defaults.batch_max_size}, BATCH_MAX_WAIT_MS={defaults.batch_max_wait_ms:g}, "
        f"BATCH_QUIET_MS={defaults.batch_quiet_ms:g}" + "".join(f", {k}={v}" for k, v in service_env.items()) + ").",
        "- **floor**: `benchmarks/floor_app.py`, the same stack (uvicorn[standard] + FastAPI) reading the upload "
        "as the service does (`app.uploads.read_form_files`) and answering a constant JSON: no decoding, no model.",
        "- **direct**: `benchmarks/direct_app.py`, plain FastAPI calling the same SavedModel once per request in "
        "the thread pool, with the same preprocessing (`app.imaging.preprocess`): no batching.",
        "",
        f"Load: `wrk -t1 -cN` with `benchmarks/post.lua`, rotating through multipart PNG uploads of real MNIST "
        f"{report.split} images; a request slower than 10 s would count as an error. Errors = non-2xx answers + "
        "socket errors (connect, read, write, timeout). RSS: highest resident memory of the server's processes "
        "sampled during the run (/proc/PID/status VmRSS). Cold start: median over fresh starts, from process start "
        "to `GET /readyz` answering 200.",
        "",
        "## Results",
        "",
        table(results),
        "",
        "![throughput](benchmark-throughput.png)",
        "![p99 latency](benchmark-p99.png)",
        "",
    ]
    if report.paired:
        parts += [f"## Paired rounds at c={PAIRED_CONCURRENCY}", "", paired_markdown(report.paired), ""]
    if target_rows := targets(results, report.paired) + report.bulk_targets:
        parts += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
        parts += [f"| {name} | {measured} | {'yes' if met else '**no**'} |" for name, measured, met in target_rows]
        parts.append("")
    if report.bulk:
        parts += ["## Bulk tensor requests", "", report.bulk, ""]
    if report.breakdown:
        parts += ["## Cold start, phase by phase", "", report.breakdown, ""]
    if report.tuning:
        parts += ["## Tuning the batching settings", "", report.tuning, ""]
    parts += ["## Machine", "", "| | |", "| --- | --- |"]
    parts += [f"| {key} | {value} |" for key, value in report.facts.items()]
    parts.append(
        f"| load average (1, 5, 15 min) | at start {', '.join(f'{x:.2f}' for x in report.started_load)}; "
        "after each server: "
        + "; ".join(f"{r.label} {', '.join(f'{x:.2f}' for x in r.load_average)}" for r in results)
        + " |"
    )
    parts += ["", NOTES_MARKER, ""]
    if notes:
        parts += [notes, ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- main


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing the Debian package", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, timeout=600)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], check=False, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, timeout=600)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: install it (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated connection counts")
    parser.add_argument("--duration", type=float, default=15, help="seconds per concurrency level")
    parser.add_argument(
        "--long-duration",
        type=float,
        default=60,
        help="seconds of the service's run at the highest concurrency (the no-errors check)",
    )
    parser.add_argument("--warmup", type=float, default=3, help="seconds of unrecorded load before measuring")
    parser.add_argument("--cold-starts", type=int, default=3, help="starts per server for the cold-start median")
    parser.add_argument("--servers", default="service,floor,direct", help="which of service, floor, direct to run")
    parser.add_argument("--images", type=int, default=1000, help="distinct MNIST images to rotate through")
    parser.add_argument("--split", choices=["test", "train"], default="test", help="which MNIST images to send")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for the service (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds at c=64 with all servers up (0: none)")
    parser.add_argument("--round-duration", type=float, default=10, help="seconds per server and paired round")
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk tensor requests (benchmarks/bulk.py)")
    parser.add_argument("--tune", action="store_true", help="also sweep the batching settings (TUNE_SWEEPS)")
    parser.add_argument("--tune-duration", type=float, default=10, help="seconds per point of the sweep")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s per level, 1 cold start")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where benchmark.md and the plots go")
    parser.add_argument("--no-docs", action="store_true", help="print the table only")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.long_duration, args.warmup, args.cold_starts, args.tune_duration = 3, 5, 1, 1, 3
        args.rounds, args.round_duration = min(args.rounds, 2), 3
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ensure_wrk()
    cores = os.sched_getaffinity(0)
    if {args.server_core, args.client_core} - cores or args.server_core == args.client_core:
        sys.exit(f"need two distinct cores out of {sorted(cores)}: pass --server-core and --client-core")
    os.sched_setaffinity(0, {args.client_core})  # this script's own work stays off the server's core
    images, labels = mnist_images(mnist_dir(), args.split, args.images)
    service_env = {"WORKERS": "1", **dict(item.split("=", 1) for item in args.env)}
    chosen = [name.strip() for name in args.servers.split(",") if name.strip()]
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    started_load = os.getloadavg()
    print(f"load average at start: {started_load[0]:.2f}, {started_load[1]:.2f}, {started_load[2]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as scratch:
        bodies, log_dir = Path(scratch) / "bodies", Path(scratch) / "logs"
        bodies.mkdir()
        log_dir.mkdir()
        write_bodies(images, bodies)
        plan = Plan(
            concurrency=[int(c) for c in args.concurrency.split(",")],
            seconds=args.duration,
            long_seconds=max(args.long_duration, args.duration),
            warmup_seconds=args.warmup,
            cold_starts=max(1, args.cold_starts),
            server_core=args.server_core,
            client_core=args.client_core,
            bodies=bodies,
            count=len(images),
            labels=labels,
        )
        available = specs(service_env)
        results = []
        for name in chosen:
            print(f"{name}:", flush=True)
            results.append(benchmark_server(available[name], plan, log_dir))
        paired = None
        if "service" in chosen and len(chosen) > 1 and args.rounds > 0:
            print(f"paired rounds at c={PAIRED_CONCURRENCY}:", flush=True)
            paired = paired_rounds(chosen, available, plan, log_dir, args.rounds, args.round_duration)
        breakdown = None
        if "service" in chosen:
            print("cold start phases:", flush=True)
            breakdown = breakdown_markdown(
                cold_phases(plan, service_env), cold_phases(plan, service_env, "plain"), plan.cold_starts
            )
        bulk, bulk_rows = None, []
        if "service" in chosen and not args.no_bulk:
            from benchmarks import bulk as bulk_requests  # it builds on this module's process control

            print("bulk tensor requests:", flush=True)
            scored = bulk_requests.run_bulk(
                args.server_core, 2 if args.quick else 5, 3 if args.quick else 10, service_env
            )
            bulk, bulk_rows = bulk_requests.bulk_markdown(scored, command), bulk_requests.bulk_targets(scored)
        tuning = None
        if args.tune:
            print("tuning:", flush=True)
            tuning = tuning_markdown(tune(plan, log_dir, service_env, args.tune_duration), args.tune_duration)
    print()
    print(table(results))
    if paired:
        print(paired_markdown(paired))
    for name, measured, met in targets(results, paired) + bulk_rows:
        print(f"{'met ' if met else 'MISS'}  {name}: {measured}")
    for extra in (bulk, breakdown, tuning):
        if extra:
            print(extra)
    if args.json:
        args.json.write_text(
            json.dumps({"servers": [asdict(r) for r in results], "paired": paired and asdict(paired)}, indent=1)
        )
    if not args.no_docs:
        args.docs.mkdir(parents=True, exist_ok=True)
        target = args.docs / "benchmark.md"
        report = Report(
            results, command, args.split, machine_facts(), started_load, breakdown, tuning, paired, bulk, bulk_rows
        )
        target.write_text(markdown(report, kept_notes(target)))
        for path in plot(results, args.docs):
            print(f"wrote {path}")
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
