"""k8s/ and docker-compose.yml give the server the time its drain takes (app.server.grace_period) before SIGKILL."""

from __future__ import annotations

import re

from app.server import grace_period
from app.settings import Settings
from tests.conftest import ROOT


def env_value(manifest: str, name: str) -> str:
    found = re.search(rf"- name: {name}\n\s+value: \"?([^\"\n]+)\"?", manifest)
    assert found, f"k8s/deployment.yaml sets no {name}"
    return found.group(1)


def test_kubernetes_grace_period_covers_the_drain() -> None:
    manifest = (ROOT / "k8s" / "deployment.yaml").read_text()
    settings = Settings(
        drain_seconds=float(env_value(manifest, "DRAIN_SECONDS")),
        request_timeout_seconds=float(env_value(manifest, "REQUEST_TIMEOUT_SECONDS")),
    )
    granted = int(re.search(r"terminationGracePeriodSeconds: (\d+)", manifest).group(1))  # type: ignore[union-attr]
    assert granted >= grace_period(settings)
    readiness = manifest[manifest.index("readinessProbe:") : manifest.index("livenessProbe:")]
    period = int(re.search(r"periodSeconds: (\d+)", readiness).group(1))  # type: ignore[union-attr]
    failures = int(re.search(r"failureThreshold: (\d+)", readiness).group(1))  # type: ignore[union-attr]
    assert settings.drain_seconds >= period * failures, "the probe must see 'draining' before the server stops"
    assert "preStop:" not in manifest  # the app drains itself; a preStop sleep would only eat the grace period


def test_compose_stop_grace_period_covers_the_drain() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    granted = int(re.search(r"stop_grace_period: (\d+)s", compose).group(1))  # type: ignore[union-attr]
    assert granted >= grace_period(Settings())
