"""What production needs besides answers, over real HTTP against a live server: API keys, CORS headers, request ids
in responses and log lines, the request deadline and dropping the images of a client that went away."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from app.logs import CURRENT, JsonFormatter, RequestContext, RequestIdFilter
from tests.conftest import LiveServer
from tests.test_bulk import V2_INFER, v2_binary
from tests.test_metrics import scrape, value
from tests.uploads import mnist_png
from training.data import Mnist

KEYS = ("first-key", "second-key")
FILE_KEY = "key-from-a-mounted-secret"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    secret = tmp_path_factory.mktemp("secret") / "keys"
    secret.write_text(f"\n{FILE_KEY}\n\n")
    with LiveServer(api_keys=",".join(KEYS), api_keys_file=secret, cors_origins="http://allowed.example") as live:
        yield live


def png(mnist: Mnist, index: int = 0) -> dict[str, tuple[str, bytes]]:
    return {"file": ("d.png", mnist_png(mnist.test_images[index]))}


# ---- API keys ---------------------------------------------------------------------------------------------------
def test_probes_and_the_page_need_no_key(keyed: LiveServer) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60) as http:
        for path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/", "/static/app.js"):
            assert http.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", "/predict", "detail"),
        ("POST", "/predict/batch", "detail"),
        ("GET", "/model", "detail"),
        ("GET", "/metrics", "detail"),
        ("GET", "/openapi.json", "detail"),
        ("GET", "/v1/models/mnist", "error"),
        ("POST", "/v2/models/mnist/infer", "error"),
    ],
)
def test_every_other_route_answers_401_without_a_valid_key(keyed: LiveServer, method: str, path: str, key: str) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60) as http:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": KEYS[0]}):
            response = http.request(method, path, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "API key" in response.json()[key]


def test_each_key_works_in_either_header_and_none_is_logged(
    keyed: LiveServer, mnist: Mnist, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=keyed.url, timeout=60) as http:
        for headers in (
            {"Authorization": f"Bearer {KEYS[0]}"},
            {"authorization": f"bearer {KEYS[1]}"},
            {"X-API-Key": FILE_KEY},
        ):
            response = http.post("/predict", files=png(mnist), headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["predicted_class"] == int(mnist.test_labels[0])
        assert http.get("/metrics", headers={"X-API-Key": KEYS[0]}).status_code == 200
    assert any(record.name == "app.access" for record in caplog.records)
    for secret in (*KEYS, FILE_KEY):
        assert secret not in caplog.text


def test_the_openapi_document_says_which_operations_need_a_key(keyed: LiveServer) -> None:
    document = httpx.get(keyed.url + "/openapi.json", headers={"X-API-Key": KEYS[0]}).json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    predict = document["paths"]["/predict"]["post"]
    assert "401" in predict["responses"] and predict["security"]
    health = document["paths"]["/healthz"]["get"]
    assert "401" not in health["responses"] and "security" not in health


def test_metrics_can_be_public_while_keys_are_required() -> None:
    with LiveServer(api_keys=KEYS[0], metrics_public=True) as live, httpx.Client(base_url=live.url) as http:
        assert http.get("/metrics").status_code == 200
        assert http.get("/model").status_code == 401


# ---- CORS -------------------------------------------------------------------------------------------------------
def test_preflight_from_an_allowed_origin_succeeds_and_others_get_no_allow_header(keyed: LiveServer) -> None:
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with httpx.Client(base_url=keyed.url, timeout=60) as http:
        allowed = http.options("/predict", headers={"Origin": "http://allowed.example", **asks})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://allowed.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = http.options("/predict", headers={"Origin": "http://evil.example", **asks})
        assert "access-control-allow-origin" not in other.headers
        refused = http.get("/model", headers={"Origin": "http://allowed.example"})  # no key: 401, readable by the page
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "http://allowed.example"


def test_no_cors_headers_by_default(client: httpx.Client) -> None:
    response = client.get("/healthz", headers={"Origin": "http://allowed.example"})
    assert not [name for name in response.headers if name.startswith("access-control-")]


# ---- request ids ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "kept"),
    [("trace-42/abc:def", True), ("x" * 128, True), ("x" * 129, False), ("tab\tinside", False), ("", False)],
)
def test_a_sensible_request_id_is_kept_and_any_other_replaced(client: httpx.Client, sent: str, kept: bool) -> None:
    answered = client.get("/healthz", headers={"X-Request-ID": sent}).headers["x-request-id"]
    if kept:
        assert answered == sent
    else:
        assert answered != sent and len(answered) == 32 and answered.isalnum()


def test_each_request_gets_its_own_id(client: httpx.Client) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


# ---- the deadline, and clients that leave ----------------------------------------------------------------------
@pytest.fixture()
def request_lines(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captured log records stamped with their request id, as the server's log configuration stamps them."""
    stamp = RequestIdFilter()
    caplog.handler.addFilter(stamp)
    caplog.set_level(logging.INFO)
    try:
        yield caplog
    finally:
        caplog.handler.removeFilter(stamp)


def test_a_request_over_the_deadline_gets_503_and_its_images_leave_the_queue(
    mnist: Mnist, request_lines: pytest.LogCaptureFixture
) -> None:
    body, headers = v2_binary(mnist.test_images)  # 10,000 images: far more than the model scores in the deadline
    with LiveServer(request_timeout_seconds=0.2) as live, httpx.Client(base_url=live.url, timeout=120) as http:
        engine = live.app.state.service.engine
        response = http.post(V2_INFER, content=body, headers={**headers, "X-Request-ID": "late-one"})
        assert response.status_code == 503, response.text[:300]
        assert "REQUEST_TIMEOUT_SECONDS" in response.json()["error"]
        assert response.headers["retry-after"]
        scored = engine.stats.images
        assert engine.stats.dropped > 0 and scored < 10_000
        assert http.post("/predict", files=png(mnist)).status_code == 200  # the engine goes on serving
        assert engine.stats.images <= scored + 1 + live.app.state.service.settings.batch_max_size
        assert engine.pending == 0
        samples = scrape(http)
        assert value(samples, "batch_dropped_images_total") == engine.stats.dropped
    lines = [record for record in request_lines.records if getattr(record, "request_id", "") == "late-one"]
    assert any(record.levelno == logging.WARNING and "503" in record.getMessage() for record in lines)
    (access,) = [record for record in lines if record.name == "app.access"]
    assert access.status == 503 and access.images == 10_000 and access.route == "/v2/models/{model_name}/infer"  # type: ignore[attr-defined]


def raw_post(port: int, path: str, body: bytes, headers: dict[str, str], declared: int | None = None) -> socket.socket:
    """Sends a request on a raw socket and returns it unread, so the test can hang up while it is queued (or, with
    a `declared` length over the body's, while the server waits for the rest of the body)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    length = len(body) if declared is None else declared
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n{head}\r\n".encode() + body)
    return connection


def test_images_of_a_client_that_hangs_up_are_not_scored(server: LiveServer, mnist: Mnist) -> None:
    engine = server.app.state.service.engine
    body, headers = v2_binary(mnist.test_images)
    submitted = threading.Semaphore(0)  # released once per request the engine queues
    engine.stats.submitted.append(lambda _: submitted.release())
    before_images, before_dropped = engine.stats.images, engine.stats.dropped
    answers: list[httpx.Response] = []

    def send_first() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            answers.append(http.post(V2_INFER, content=body, headers=headers))

    first = threading.Thread(target=send_first)
    try:
        first.start()
        assert submitted.acquire(timeout=120), "the first bulk request never reached the engine"
        leaver = raw_post(server.port, V2_INFER, body, headers)  # queued behind (and beside) the first
        assert submitted.acquire(timeout=120), "the second bulk request never reached the engine"
        leaver.close()
        first.join(timeout=300)
    finally:
        engine.stats.submitted.pop()
    assert answers and answers[0].status_code == 200
    dropped = engine.stats.dropped - before_dropped
    scored = engine.stats.images - before_images
    assert dropped >= 5_000, "most of the second request's images should never reach the model"
    assert scored + dropped == 20_000
    assert engine.pending == 0


@pytest.mark.parametrize("path", ["/v1/models/mnist:predict", V2_INFER, "/predict"])
def test_a_client_that_leaves_mid_body_is_logged_without_an_error(
    server: LiveServer, request_lines: pytest.LogCaptureFixture, path: str
) -> None:
    """The body cut off by the client's leaving is the client's doing: an access line, no error and no traceback."""
    request_id = f"left-mid-body{path.replace('/', '-')}"
    headers = {"X-Request-ID": request_id, "Content-Type": "multipart/form-data; boundary=b"}
    raw_post(server.port, path, b"--b\r\n", headers, declared=5000).close()

    def ours() -> list[logging.LogRecord]:
        return [record for record in request_lines.records if getattr(record, "request_id", "") == request_id]

    assert server.until(lambda _: any(record.name == "app.access" for record in ours()), timeout=60)
    assert not [record for record in ours() if record.levelno >= logging.ERROR or record.exc_info]
    (access,) = [record for record in ours() if record.name == "app.access"]
    assert access.status in (400, 499)  # type: ignore[attr-defined]


def test_json_log_lines_carry_the_request_fields() -> None:
    record = logging.LogRecord("app.access", logging.INFO, __file__, 1, "POST %s %d", ("/predict", 200), None)
    record.route, record.status, record.images = "/predict", 200, 1
    token = CURRENT.set(RequestContext("id-1"))
    try:
        RequestIdFilter().filter(record)
    finally:
        CURRENT.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "POST /predict 200" and line["request_id"] == "id-1"
    assert line["route"] == "/predict" and line["status"] == 200 and line["images"] == 1
    assert line["time"].endswith("Z") and line["level"] == "info"
