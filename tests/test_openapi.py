"""The OpenAPI document is true: schemathesis, with every default check, fuzzes the live server against it and finds
nothing. The few exceptions, each for named operations only, are in tests/schemathesis.toml and docs/protocols.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SERVED_VERSION, LiveServer

CONFIG = ROOT / "tests" / "schemathesis.toml"
RUN_TIMEOUT_S = 600  # about a minute on a quiet 2-core machine (25 examples per operation and phase)


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is missing: pip install -e '.[dev]'")
    return found


@pytest.mark.slow
def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    command = [
        schemathesis_cli(),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--seed",
        "1",  # the same cases every run: a failure here is a finding, not noise
        "--report-dir",
        str(tmp_path),
    ]
    env = {**os.environ, "SERVED_VERSION": str(SERVED_VERSION)}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    document = httpx.get(f"{server.url}/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in done.stdout, done.stdout[-5_000:]  # every operation, none skipped


def test_options_on_a_post_route_names_post_in_allow(client: httpx.Client) -> None:
    for path in ("/v1/models/mnist:predict", f"/v1/models/mnist/versions/{SERVED_VERSION}:predict", "/predict"):
        response = client.options(path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == "POST", path
