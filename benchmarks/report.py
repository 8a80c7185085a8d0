"""The benchmark's report: the results, the targets they are judged against, the tables, plots and docs/benchmark.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.load import LoadResult

ROOT = Path(__file__).resolve().parents[1]
PAIRED_CONCURRENCY = 64
TUNE_SWEEPS: dict[str, list[float]] = {
    "BATCH_MAX_SIZE": [8, 16, 32, 64, 128],
    "BATCH_MAX_WAIT_MS": [2, 10, 50, 200],
    "BATCH_QUIET_MS": [0, 0.5, 1, 2, 5],
}


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


@dataclass
class PairedRounds:
    """req/s at PAIRED_CONCURRENCY per round and server: all servers up at once, measured one after the other in
    each round, so a drift of the shared machine moves a round's figures together and their ratios stay fair."""

    seconds: float
    rounds: list[dict[str, float]]

    def ratios(self, numerator: str, denominator: str) -> list[float]:
        return [r[numerator] / r[denominator] for r in self.rounds if numerator in r and denominator in r]


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
