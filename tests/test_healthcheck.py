"""The container's HEALTHCHECK script (app/healthcheck.py), run as the image runs it: a separate Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, LiveServer, free_port

SCRIPT = ROOT / "app" / "healthcheck.py"


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    # -I: isolated, as in the image, where the script must work with nothing but the standard library
    env = {**os.environ, "PORT": str(port)}
    return subprocess.run([sys.executable, "-I", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def test_healthy_when_the_server_answers(server: LiveServer) -> None:
    result = run_healthcheck(server.port)
    assert result.returncode == 0, result.stderr
    assert f"healthy: http://127.0.0.1:{server.port}/healthz" in result.stdout


def test_unhealthy_when_nothing_listens() -> None:
    result = run_healthcheck(free_port())
    assert result.returncode == 1
    assert "unhealthy" in result.stderr


def test_script_is_standalone() -> None:
    """Only the standard library: the check must not pay TensorFlow's import every 30 seconds."""
    source = Path(SCRIPT).read_text()
    assert "import app" not in source and "from app" not in source
