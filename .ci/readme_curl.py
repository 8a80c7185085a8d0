"""Run every curl example in README.md against a live local server and check each answer's status code.

The README's convention: lines starting with `curl ` inside ```bash fences, aimed at http://localhost:8000, run
from the project root. A line ending in `# expect NNN` must answer NNN; every other line must answer 2xx and exit 0.
The lines run verbatim through bash, except that the address is moved to the server's (this script's own server
gets 8000 when free) and `curl` is a wrapper that also reports the status code.

Usage: .venv/bin/python .ci/readme_curl.py [--url http://127.0.0.1:8000] [README.md]
  without --url it starts `mnist-serve` from .venv for the run; with it, it checks a server already running there
  (CI's compose stack).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_PORT = 8000
START_TIMEOUT_S = 180  # TensorFlow import + model load + warm-up on a busy 2-core machine
COMMAND_TIMEOUT_S = 60
EXPECT = re.compile(r"#\s*expect\s+(\d{3})\s*$")
STATUS = re.compile(r"^CURL_STATUS=(\d{3})$", re.MULTILINE)


def examples(readme: str) -> list[str]:
    """The curl lines of ```bash blocks, with backslash-continued lines joined."""
    found, in_bash, pending = [], False, ""
    for raw in readme.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            in_bash = not in_bash and line.strip() in ("```bash", "```sh", "```shell")
            pending = ""
            continue
        if not in_bash:
            continue
        line = pending + line.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("curl "):
            found.append(line)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", README_PORT))
            return README_PORT
        except OSError:  # another server (or CI job) holds 8000 on this shared machine: take any free port
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"readme-curl: the server exited with code {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"readme-curl: {url} not ready after {START_TIMEOUT_S} s")


def curl_wrapper(folder: Path) -> None:
    """A `curl` first on PATH that adds the status code to stderr, leaving stdout (and pipes) as written."""
    real = subprocess.run(["bash", "-c", "command -v curl"], capture_output=True, text=True, check=True).stdout
    script = folder / "curl"
    script.write_text(f'#!/bin/sh\nexec {real.strip()} --write-out "%{{stderr}}CURL_STATUS=%{{http_code}}\\n" "$@"\n')
    script.chmod(0o755)


def run_example(line: str, base_url: str, env: dict[str, str]) -> str | None:
    """None if the answer is as documented, else what went wrong."""
    expected = EXPECT.search(line)
    command = line.replace("http://localhost:8000", base_url)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    statuses = STATUS.findall(result.stderr)
    if not statuses:
        return f"no HTTP answer (exit {result.returncode}): {result.stderr.strip()[:300]}"
    status = int(statuses[-1])
    if expected:
        want = int(expected.group(1))
        return None if status == want else f"status {status}, the README says {want}: {result.stdout[:300]}"
    if not 200 <= status < 300:
        return f"status {status}: {result.stdout[:300]}"
    if result.returncode != 0:
        return f"exit code {result.returncode}: {result.stderr.strip()[:300]}"
    return None


def run_examples(lines: list[str], base_url: str) -> int:
    """Run every example against `base_url`; the number that did not answer as documented."""
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        curl_wrapper(Path(scratch))
        env = {**os.environ, "PATH": f"{scratch}{os.pathsep}{os.environ['PATH']}"}
        for line in lines:
            problem = run_example(line, base_url, env)
            failures += problem is not None
            print(f"{'FAIL' if problem else 'ok  '} {line}" + (f"\n     -> {problem}" if problem else ""))
    print(f"readme-curl: {len(lines) - failures} of {len(lines)} examples answered as documented ({base_url})")
    return failures


def run_with_own_server(lines: list[str]) -> int:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning"}
    server = subprocess.Popen([str(ROOT / ".venv/bin/mnist-serve")], cwd=ROOT, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        return run_examples(lines, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", nargs="?", type=Path, default=ROOT / "README.md")
    parser.add_argument("--url", help="check the server running here instead of starting one")
    args = parser.parse_args()
    lines = examples(args.readme.read_text(encoding="utf-8"))
    if not lines:
        print(f"readme-curl: no curl examples in ```bash blocks of {args.readme}", file=sys.stderr)
        return 1
    failures = run_examples(lines, args.url.rstrip("/")) if args.url else run_with_own_server(lines)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
