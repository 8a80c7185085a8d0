"""`make bench` / `python -m benchmarks.run`: the service against two reference servers, under the same load.

For each server (the service via `mnist-serve`, the floor, the direct baseline) it measures the cold start
(process start -> /readyz answering, repeated), then drives POST /predict with `wrk` at each concurrency, posting
real MNIST test images as multipart PNG uploads. The server is pinned to one core and wrk (and this script) to
another, so the load generator never competes with the server. Then all servers run at once for paired rounds at
c=64 (each round measures every server in turn; the throughput-ratio targets are judged on the medians of the
per-round ratios, which a drift of a shared machine moves far less than single figures). Then bulk tensor requests
against the model's own rate (benchmarks/bulk.py), and new versions going live under load (benchmarks/reload.py).
Results: a table on stdout, docs/benchmark.md and two plots. `--tune` adds a sweep of the batching settings. Every
run stops by itself.

This module is the plan and its steps; the server processes are benchmarks/processes.py, the load and what it
measures benchmarks/load.py, the tables, targets, plots and Markdown benchmarks/report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.load import LoadResult, check_answers, measure, mnist_dir, mnist_images, run_wrk, write_bodies
from benchmarks.processes import READY_TIMEOUT_S, ROOT, ServerSpec, rss_mb, running
from benchmarks.report import (
    PAIRED_CONCURRENCY,
    TUNE_SWEEPS,
    PairedRounds,
    Report,
    ServerResult,
    breakdown_markdown,
    kept_notes,
    machine_facts,
    markdown,
    paired_markdown,
    plot,
    table,
    targets,
    tuning_markdown,
)

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


# ---------------------------------------------------------------- tuning


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
    parser.add_argument(
        "--no-reload", action="store_true", help="skip new versions going live under load (benchmarks/reload.py)"
    )
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
        if "service" in chosen and not args.no_reload:
            from benchmarks import reload  # its section of docs/benchmark.md is among the notes kept below

            print("live model reloads:", flush=True)
            reload.main(["--swaps", "3" if args.quick else "20", *([] if args.no_docs else ["--write"])])
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
