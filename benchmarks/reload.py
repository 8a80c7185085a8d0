"""`python -m benchmarks.reload`: new versions going live under load, on the pinned set-up.

The service (`mnist-serve`, pinned to core 0) watches a temporary copy of the newest committed version. wrk (core 1)
posts real MNIST digits at c=64: first a steady run, then one run per swap, during which a new version (a copy of
the same model) is copied in the way an export writes it (a hidden folder, then one rename). For each swap it
records the time from the copy to the first answer of GET /model naming the new default version, the server's own
load and verify times (its log line), the errors and the p99 latency of that run; after each swap, once the old
version is retired, the server's resident memory. Prints a table and the Markdown section of docs/benchmark.md
(`--write` replaces that section in the file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import Settings
from benchmarks.load import LoadResult, measure, mnist_dir, mnist_images, write_bodies
from benchmarks.processes import ROOT, Running, ServerSpec, get, rss_mb, running

SECTION = "## Live model reloads"
SECTION_END = "<!-- end of live model reloads -->"
LOG_LINE = re.compile(r"version (\d+) verified and serving \(load and warm-up ([\d.]+) s, verify ([\d.]+) s\)")


@dataclass
class Swap:
    version: int
    to_serving_s: float
    load_s: float
    verify_s: float
    errors: int
    p99_ms: float
    rss_mb: float

    @property
    def waiting_s(self) -> float:
        """Copy to load start: the poll interval and the check that the folder has stopped changing."""
        return max(0.0, self.to_serving_s - self.load_s - self.verify_s)


def newest_version() -> Path:
    versions = sorted((ROOT / "models" / "mnist").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    return versions[-1]


def copy_in(source: Path, model_dir: Path, version: int) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    shutil.copytree(source, staging, dirs_exist_ok=True)
    os.rename(staging, model_dir / str(version))


def described(port: int) -> dict[str, Any]:
    """GET /model; an empty answer if it fails or times out (the probe goes on until its deadline)."""
    try:
        status, body = get(port, "/model", timeout=10)
    except OSError:
        return {}
    return dict(json.loads(body)) if status == 200 else {}


def default_version(port: int) -> int | None:
    return described(port).get("version")


def loaded_versions(port: int) -> list[int]:
    return [v["version"] for v in described(port).get("versions", [])]


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def swap_under_load(server: Running, model_dir: Path, version: int, args: argparse.Namespace, bodies: Path) -> Swap:
    result: dict[str, LoadResult] = {}
    server_port, log = server.port, server.log_path

    def load_run() -> None:
        result["run"] = measure(server, "swap", args.concurrency, args.window, bodies, args.images, core=1)

    load = threading.Thread(target=load_run)
    load.start()
    time.sleep(args.window / 4)  # the load is steady before the copy
    copied = time.perf_counter()
    copy_in(newest_version(), model_dir, version)
    if not wait_for(lambda: default_version(server_port) == version, timeout=60):
        raise RuntimeError(f"version {version} not serving 60 s after the copy; see {log}")
    to_serving = time.perf_counter() - copied
    load.join()
    if not wait_for(lambda: loaded_versions(server_port) == [version], timeout=60):
        raise RuntimeError(f"version {version - 1} not retired; see {log}")
    matches = [m for m in LOG_LINE.finditer(log.read_text()) if int(m.group(1)) == version]
    load_s, verify_s = (float(matches[-1].group(2)), float(matches[-1].group(3))) if matches else (0.0, 0.0)
    run = result["run"]
    return Swap(version, to_serving, load_s, verify_s, run.errors, run.p99_ms, rss_mb(server.process.pid))


LIMITS = (
    "What limits: at c=64 the pinned core is saturated, so the CPU a swap takes (restoring the SavedModel's functions, "
    "mostly Python under the GIL, then warm-up and verification) is CPU the requests wait for. The load is paced "
    "(app.pacing, MODEL_LOAD_SHARE): it runs at most that share of the time, so it takes about 1/share times its CPU "
    "time while the requests lose at most that share of the core; a lower share trades a longer load for a smaller "
    "rise in latency. Two versions are in memory only for the moment of the swap; the retired one is freed by a "
    "collection of the objects loaded after start-up (TensorFlow's start-up objects stay frozen), and resident "
    "memory stays flat. The wait before loading is by design: a folder copied file by file must be seen unchanged on "
    "two polls before it is loaded."
)


def markdown(steady: LoadResult, swaps: list[Swap], first_rss: float, args: argparse.Namespace) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    p99s = [s.p99_ms for s in swaps]
    rows = [
        "| measure | median | worst | goal |",
        "| --- | ---: | ---: | --- |",
        f"| copy to serving (s) | {median([s.to_serving_s for s in swaps]):.2f} | "
        f"{max(s.to_serving_s for s in swaps):.2f} | <= 5 |",
        f"| of which poll and settle wait (s) | {median([s.waiting_s for s in swaps]):.2f} | "
        f"{max(s.waiting_s for s in swaps):.2f} | |",
        f"| of which load and warm-up (s) | {median([s.load_s for s in swaps]):.2f} | "
        f"{max(s.load_s for s in swaps):.2f} | |",
        f"| of which verify: contract and canary (s) | {median([s.verify_s for s in swaps]):.3f} | "
        f"{max(s.verify_s for s in swaps):.3f} | |",
        f"| failed requests per swap run | {median([s.errors for s in swaps]):.0f} | "
        f"{max(s.errors for s in swaps)} | 0 |",
        f"| p99 during a swap / steady p99 ({steady.p99_ms:.1f} ms) | {median(p99s) / steady.p99_ms:.2f} | "
        f"{max(p99s) / steady.p99_ms:.2f} | <= 2 |",
    ]
    last = swaps[-1].rss_mb
    return (
        f"{SECTION}\n\n"
        f"`python -m benchmarks.reload --swaps {args.swaps} --load-share {args.load_share}` (server pinned to core 0 "
        f"with MODEL_POLL_SECONDS={args.poll} and MODEL_LOAD_SHARE={args.load_share}, wrk on core 1 at "
        f"c={args.concurrency}; {args.window:.0f} s of load per swap, the copy a quarter of the way in). Each swap "
        "copies a new version in as an export writes it; the copy-to-serving time is measured from outside "
        "(GET /model naming the new default), the load and verify times are the server's own. A new folder waits "
        "one poll to be seen and one more to prove it has stopped changing, so the wait is between one and two poll "
        "intervals.\n\n"
        + "\n".join(rows)
        + f"\n\nResident memory after the first swap {first_rss:.0f} MB, after {len(swaps)} versions loaded and "
        f"retired {last:.0f} MB ({last - first_rss:+.0f} MB; goal <= +50 MB). Steady run: {steady.rps:.0f} "
        f"requests/s, p99 {steady.p99_ms:.1f} ms, {steady.errors} errors. Load average of the machine when the run "
        f"ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n{LIMITS}\n\n{SECTION_END}\n"
    )


def write_section(text: str, path: Path) -> None:
    current = path.read_text()
    if SECTION in current:
        before, _, rest = current.partition(SECTION)
        _, _, after = rest.partition(SECTION_END + "\n")
        path.write_text(before + text + after)
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reload", description=__doc__)
    parser.add_argument("--swaps", type=int, default=20, help="versions copied in after the first (default 20)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--window", type=float, default=8.0, help="seconds of load around each swap")
    parser.add_argument("--steady", type=float, default=15.0, help="seconds of the steady run")
    parser.add_argument("--poll", type=float, default=1.0, help="MODEL_POLL_SECONDS")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument(
        "--load-share",
        type=float,
        default=Settings.model_fields["model_load_share"].default,
        help="MODEL_LOAD_SHARE (default: the setting's default)",
    )
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmark.md")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="reload-bench-"))
    try:
        bodies = work / "bodies"
        bodies.mkdir()
        write_bodies(mnist_images(mnist_dir(), "test", args.images)[0], bodies)
        model_dir = work / "models" / "mnist"
        model_dir.mkdir(parents=True)
        copy_in(newest_version(), model_dir, 1)
        serve = shutil.which("mnist-serve", path=str(Path(sys.executable).parent)) or "mnist-serve"
        env = {"MODEL_BASE_PATH": str(work / "models"), "MODEL_POLL_SECONDS": str(args.poll), "LOG_LEVEL": "info"}
        env["MODEL_LOAD_SHARE"] = str(args.load_share)
        with running(ServerSpec("service", [serve], env, label="reload"), 0, work) as (server, _):
            steady = measure(server, "steady", args.concurrency, args.steady, bodies, args.images, core=1)
            swaps, first_rss = [], 0.0
            for version in range(2, args.swaps + 2):
                swap = swap_under_load(server, model_dir, version, args, bodies)
                first_rss = first_rss or swap.rss_mb
                swaps.append(swap)
                print(
                    f"version {version}: serving {swap.to_serving_s:.2f} s after the copy (load {swap.load_s:.2f} s, "
                    f"verify {swap.verify_s:.3f} s), {swap.errors} errors, p99 {swap.p99_ms:.1f} ms, "
                    f"RSS {swap.rss_mb:.0f} MB",
                    flush=True,
                )
                shutil.rmtree(model_dir / str(version - 1))  # as an operator would prune old versions
        text = markdown(steady, swaps, first_rss, args)
        print(text)
        if args.write:
            write_section(text, ROOT / "docs" / "benchmark.md")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
