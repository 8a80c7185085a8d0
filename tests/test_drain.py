"""Drain on SIGTERM, as an orchestrator sees it: a real `mnist-serve` under load from concurrent HTTP clients gets
SIGTERM; every request is counted.

Readiness turns 503 'draining' at once while requests go on being answered for DRAIN_SECONDS; then new connections
are refused, every request the server accepted is answered (the long bulk requests in flight included), and the
process exits 0 well within the grace period. The JSON log shows the drain and holds no API key."""

from __future__ import annotations

import math
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from app.server import grace_period
from app.settings import Settings
from tests.processes import serving
from tests.test_bulk import V2_INFER, v2_binary
from tests.uploads import mnist_png
from training.data import Mnist

DRAIN_SECONDS = 5.0
KEY = "drain-test-key"
CLIENTS = 4  # threads sending single-image requests, a new connection each
# "At once", as the server's log times it: the supervisor of WORKERS>1 looks for signals twice a second.
DRAINING_WITHIN_S = 1.5


@dataclass
class Outcome:
    request_id: str
    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer
    error: str = ""


class Load:
    """Clients sending requests until the server refuses their connections, every one recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.refused = threading.Event()  # a connection was refused: the server stopped accepting
        self.threads: list[threading.Thread] = []

    def start(self, kind: str, send: Callable[[httpx.Client, dict[str, str]], httpx.Response]) -> None:
        thread = threading.Thread(target=self.run, args=(kind, send), daemon=True)
        thread.start()
        self.threads.append(thread)

    def run(self, kind: str, send: Callable[[httpx.Client, dict[str, str]], httpx.Response]) -> None:
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request, as separate clients make
        with httpx.Client(base_url=self.url, timeout=120, limits=fresh) as http:
            while not self.refused.is_set():
                request_id = uuid.uuid4().hex
                started = time.time()
                headers = {"X-Request-ID": request_id, "Authorization": f"Bearer {KEY}"}
                try:
                    status: int | None = send(http, headers).status_code
                    error = ""
                except httpx.ConnectError as refused:
                    status, error = None, f"refused: {refused}"
                    self.refused.set()
                except httpx.TransportError as failed:
                    status, error = None, f"{type(failed).__name__}: {failed}"
                with self.lock:
                    self.outcomes.append(Outcome(request_id, kind, started, time.time(), status, error))

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=180)
            assert not thread.is_alive()


def wait_for_draining(url: str, deadline: float) -> float:
    """The moment /readyz first answers 503 'draining' (bounded by `deadline`)."""
    while time.time() < deadline:
        response = httpx.get(url + "/readyz", timeout=10)
        if response.status_code == 503 and response.json()["status"] == "draining":
            return time.time()
    raise AssertionError("/readyz never said 'draining'")


def logged_at(line: dict[str, str]) -> float:
    return datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_without_failing_an_accepted_request(mnist: Mnist, workers: int) -> None:
    single = {"file": ("d.png", mnist_png(mnist.test_images[0]))}
    bulk_body, bulk_headers = v2_binary(mnist.test_images[:2000])  # a request that is in flight for a while
    env = {"WORKERS": str(workers), "DRAIN_SECONDS": str(DRAIN_SECONDS), "LOG_FORMAT": "json", "API_KEYS": KEY}
    settings = Settings(drain_seconds=DRAIN_SECONDS)
    with serving(**env) as live:
        live.wait_serving(workers)
        load = Load(live.url)
        for _ in range(CLIENTS):
            load.start("single", lambda http, headers: http.post("/predict", files=single, headers=headers))
        load.start("bulk", lambda http, headers: http.post(V2_INFER, content=bulk_body, headers=headers | bulk_headers))
        flowing = time.time() + 120
        while len(load.outcomes) < 20:  # load is flowing before the signal
            assert time.time() < flowing and not load.refused.is_set(), load.outcomes[:3]
            time.sleep(0.05)

        signalled = time.time()
        live.process.send_signal(signal.SIGTERM)
        draining = wait_for_draining(live.url, signalled + DRAIN_SECONDS)
        assert httpx.get(live.url + "/healthz", timeout=10).status_code == 200  # alive, only not ready

        load.join()  # the clients stop once a connection is refused
        exit_code = live.process.wait(timeout=grace_period(settings))
        exited = time.time()
        with pytest.raises(httpx.ConnectError):
            httpx.get(live.url + "/healthz", timeout=10)

    assert exit_code == 0, live.output.text()
    assert exited - signalled < grace_period(settings)
    lines = live.output.json_lines()  # every line is JSON
    handled = {line["request_id"]: line for line in lines if line.get("logger") == "app.access"}
    window_end = signalled + DRAIN_SECONDS

    answered = [o for o in load.outcomes if o.status is not None]
    assert all(o.status == 200 for o in answered), [o for o in answered if o.status != 200][:5]
    assert all(handled[o.request_id]["status"] == 200 for o in answered)
    in_window = [o for o in answered if draining < o.started < window_end - 0.5]
    assert len(in_window) >= 5, "the server should keep answering new requests while readiness says draining"
    spanning = [o for o in answered if o.started < window_end < o.ended]
    assert spanning, "some requests were in flight when the server stopped accepting"

    unanswered = [o for o in load.outcomes if o.status is None]
    assert unanswered, "after the drain window new connections should be refused"
    for outcome in unanswered:  # never reached the app, and failed only once the drain window was over
        assert outcome.request_id not in handled, outcome
        assert outcome.ended > window_end, outcome

    messages = [line["message"] for line in lines]
    drain_starts = [logged_at(line) for line in lines if "SIGTERM: draining" in line["message"]]
    assert len(drain_starts) == workers
    logged_signal = math.floor(signalled * 1000) / 1000  # log lines carry their time to the millisecond
    assert all(0 <= start - logged_signal < DRAINING_WITHIN_S for start in drain_starts), (signalled, drain_starts)
    assert sum("drain window over" in m for m in messages) == workers
    assert KEY not in live.output.text()
