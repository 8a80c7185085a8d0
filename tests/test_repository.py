"""The live model repository over real HTTP: versions copied in go live without a restart, bad ones never serve,
policy and labels from the config file, the last good version kept, and no request lost in a swap.

Every server here watches its own copy of the committed model in tmp_path, polled every 0.1 s; tests wait on the
server's real state (its /model, /readyz or poll count) with a deadline, never a fixed sleep."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.model_config import ConfigError, ModelConfig, VersionPolicy, parse_labels, parse_policy, read_config_file
from tests.conftest import COMMITTED_VERSION, LiveServer
from tests.model_versions import (
    damaged_canary,
    disturbed_weights,
    half_copy,
    install,
    other_signature,
    score_past_one,
    truncated,
)
from tests.test_metrics import scrape, value
from tests.test_tfserving import tfserving_probabilities
from tests.uploads import mnist_png
from training.data import Mnist

POLL = 0.1
DEADLINE = 90  # seconds for a version to load on a busy machine


@pytest.fixture(scope="session")
def disturbed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return disturbed_weights(tmp_path_factory.mktemp("disturbed") / "model")


@pytest.fixture(scope="session")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return other_signature(tmp_path_factory.mktemp("foreign") / "model")


def live(models: Path, **settings: object) -> LiveServer:
    return LiveServer(model_base_path=models, model_poll_seconds=POLL, **settings)


def described(http: httpx.Client) -> dict:
    response = http.get("/model")
    assert response.status_code == 200, response.text
    return dict(response.json())


def state(http: httpx.Client, version: int) -> dict | None:
    return next((v for v in described(http)["versions"] if v["version"] == version), None)


def in_state(version: int, wanted: str):
    return lambda http: (found := state(http, version)) is not None and found["state"] == wanted


def default_is(version: int):
    return lambda http: described(http)["version"] == version


def classify(http: httpx.Client, image: np.ndarray, query: str = "") -> httpx.Response:
    return http.post(f"/predict{query}", files={"file": ("digit.png", mnist_png(image))})


def polls_pass(server: LiveServer, count: int) -> bool:
    """Wait until the repository has polled `count` more times (its real poll counter)."""
    repository = server.app.state.service.repository
    target = repository.polls + count
    return server.until(lambda _: repository.polls >= target, timeout=DEADLINE)


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


def test_versions_go_live_without_restart_and_bad_ones_never_serve(
    models: Path, mnist: Mnist, disturbed: Path, foreign: Path
) -> None:
    model_dir = models / "mnist"
    install(COMMITTED_VERSION, model_dir, 1)
    image, label = mnist.test_images[0], int(mnist.test_labels[0])
    with live(models) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert classify(http, image).json()["model_version"] == 1

        # A half-copied folder waits; once complete and settled, it loads, is verified and takes the traffic.
        half_copy(model_dir, 2)
        assert server.until(in_state(2, "START"), timeout=DEADLINE)
        assert classify(http, image).json()["model_version"] == 1
        shutil.copytree(COMMITTED_VERSION, model_dir / "2", dirs_exist_ok=True)
        assert server.until(default_is(2), timeout=DEADLINE)
        answer = classify(http, image).json()
        assert answer["model_version"] == 2 and answer["predicted_class"] == label
        assert server.until(lambda h: state(h, 1) is None, timeout=DEADLINE)  # latest: version 1 retired

        # Each bad version is refused with its reason, shown in every status, and version 2 goes on serving.
        (model_dir / "backup").mkdir()
        truncated(model_dir, 3)
        assert server.until(in_state(3, "END"), timeout=DEADLINE)
        install(disturbed, model_dir, 4)
        assert server.until(in_state(4, "END"), timeout=DEADLINE)
        install(foreign, model_dir, 5)
        assert server.until(in_state(5, "END"), timeout=DEADLINE)

        info = described(http)
        assert info["version"] == 2 and classify(http, image).json()["model_version"] == 2
        errors = {v["version"]: v["error"] for v in info["versions"]}
        assert "cannot load" in errors[3]
        assert "canary" in errors[4]
        assert "signature serving_default" in errors[5] and "784" in errors[5]
        assert any("'backup'" in problem for problem in info["problems"])

        status = http.get("/v1/models/mnist").json()["model_version_status"]
        by_version = {s["version"]: s for s in status}
        assert by_version["2"]["state"] == "AVAILABLE"
        assert by_version["4"]["state"] == "END" and by_version["4"]["status"]["error_code"] == "FAILED_PRECONDITION"
        assert by_version["5"]["status"]["error_code"] == "INVALID_ARGUMENT"
        assert (
            "canary"
            in http.get("/v1/models/mnist/versions/4").json()["model_version_status"][0]["status"]["error_message"]
        )
        ready = http.get("/v2/models/mnist/versions/4/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False and "canary" in ready.json()["reason"]
        assert http.get("/v2/models/mnist/versions/2/ready").json() == {"name": "mnist", "ready": True, "reason": None}
        assert http.get("/v2/models/mnist/ready").status_code == 200

        # Refused versions are not retried while their folders stay as they are: one failure each in /metrics.
        assert polls_pass(server, 5)
        metrics = scrape(http)
        for version, reason in ((3, "load"), (4, "canary"), (5, "contract")):
            labels = {"model": "mnist", "version": str(version), "reason": reason}
            assert value(metrics, "model_load_failures_total", **labels) == 1
        assert value(metrics, "model_version_state", model="mnist", version="2", state="AVAILABLE") == 1
        assert value(metrics, "model_version", model="mnist") == 2
        assert value(metrics, "model_requests_total", model="mnist", version="2") == 2

        # A refused folder that changes is tried again: version 3 repaired goes live.
        shutil.copy(COMMITTED_VERSION / "saved_model.pb", model_dir / "3" / "saved_model.pb")
        assert server.until(default_is(3), timeout=DEADLINE)
        assert classify(http, image).json()["model_version"] == 3


CONFIG = """
version_policy = "all"
[labels]
stable = 1
canary = 2
"""


def test_config_file_routes_versions_and_labels_and_rolls_back(models: Path, tmp_path: Path, mnist: Mnist) -> None:
    for version in (1, 2):
        install(COMMITTED_VERSION, models / "mnist", version)
    config = tmp_path / "models.toml"
    config.write_text(CONFIG)
    images = mnist.test_images[:3]
    instances = {"instances": images.tolist()}
    with live(models, model_config_file=config) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert server.until(lambda h: described(h)["labels"] == {"stable": 1, "canary": 2}, timeout=DEADLINE)
        info = described(http)
        assert info["version"] == 2 and info["version_policy"] == "all"
        assert [(v["version"], v["state"], v["default"], v["labels"]) for v in info["versions"]] == [
            (1, "AVAILABLE", False, ["stable"]),
            (2, "AVAILABLE", True, ["canary"]),
        ]

        # Each protocol's own way of naming a version or a label, and every answer names its version.
        assert classify(http, images[0], "?label=stable").json()["model_version"] == 1
        assert classify(http, images[0], "?version=1").json()["model_version"] == 1
        assert classify(http, images[0]).json()["model_version"] == 2
        batch = http.post("/predict/batch?label=stable", files=[("files", ("a.png", mnist_png(images[0])))])
        assert batch.json()["model_version"] == 1
        labelled = http.post("/v1/models/mnist/labels/stable:predict", json=instances)
        assert labelled.status_code == 200 and labelled.headers["Model-Version"] == "1"
        assert tfserving_probabilities(labelled.json()).argmax(axis=1).tolist() == mnist.test_labels[:3].tolist()
        assert http.post("/v1/models/mnist/versions/1:predict", json=instances).headers["Model-Version"] == "1"
        assert http.get("/v1/models/mnist/labels/canary/metadata").json()["model_spec"]["version"] == "2"
        assert http.get("/v1/models/mnist/labels/stable").json()["model_version_status"][0]["version"] == "1"
        infer = {
            "inputs": [{"name": "images", "shape": [3, 28, 28], "datatype": "UINT8", "data": images.ravel().tolist()}]
        }
        assert http.post("/v2/models/mnist/versions/1/infer", json=infer).json()["model_version"] == "1"
        assert http.get("/v2/models/mnist").json()["versions"] == ["2", "1"]

        # Unknown versions and labels: each protocol's 404 with a JSON body.
        for response, key in (
            (classify(http, images[0], "?version=9"), "detail"),
            (classify(http, images[0], "?label=nightly"), "detail"),
            (http.post("/v1/models/mnist/labels/nightly:predict", json=instances), "error"),
            (http.post("/v1/models/mnist/versions/9:predict", json=instances), "error"),
            (http.post("/v2/models/mnist/versions/9/infer", json=infer), "error"),
            (http.get("/v2/models/mnist/versions/9/ready"), "error"),
        ):
            assert response.status_code == 404 and key in response.json(), response.text
        both = classify(http, images[0], "?version=1&label=stable")
        assert both.status_code == 422 and "not both" in both.json()["detail"]

        # A label at a version that is not loaded is refused, the others keep serving.
        config.write_text(CONFIG + "missing = 7\n")
        assert server.until(lambda h: any("version 7" in p for p in described(h)["problems"]), timeout=DEADLINE)
        assert classify(http, images[0], "?label=missing").status_code == 404
        assert classify(http, images[0], "?label=stable").json()["model_version"] == 1

        # A syntax error keeps the previous config in force and says so.
        config.write_text('version_policy = "specific [1]"\n[labels\n')
        assert server.until(lambda h: any("not valid TOML" in p for p in described(h)["problems"]), timeout=DEADLINE)
        assert described(http)["version"] == 2 and described(http)["version_policy"] == "all"

        # A rollback is a one-line change: version 1 becomes the default and version 2 is retired.
        config.write_text('version_policy = "specific [1]"\n')
        assert server.until(lambda h: [v["version"] for v in described(h)["versions"]] == [1], timeout=DEADLINE)
        assert described(http)["problems"] == [] and classify(http, images[0]).json()["model_version"] == 1


def test_the_last_good_version_serves_when_every_folder_is_removed(models: Path, mnist: Mnist) -> None:
    install(COMMITTED_VERSION, models / "mnist", 1)
    with live(models) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        shutil.rmtree(models / "mnist")
        assert polls_pass(server, 3)
        assert http.get("/readyz").json() == {"status": "ready", "model_version": 1}
        answer = classify(http, mnist.test_images[0])
        assert answer.status_code == 200 and answer.json()["model_version"] == 1
        assert described(http)["available_versions"] == []


def test_a_version_that_fails_in_any_way_is_refused_and_the_start_goes_on(models: Path, mnist: Mnist) -> None:
    """A canary cut short or turned into a folder fails with an error no loader step names: the version is refused
    (END, with why) and not retried, also when it is there at start-up beside a good one, which then serves. A folder
    named with leading zeros is not a version (it would name a version found under another folder)."""
    model_dir = models / "mnist"
    install(COMMITTED_VERSION, model_dir, 1)
    damaged_canary(model_dir, 2, "truncated")
    image = mnist.test_images[0]
    with live(models) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/readyz").json()["status"] == "ready"
        assert classify(http, image).json()["model_version"] == 1
        assert server.until(in_state(2, "END"), timeout=DEADLINE)
        damaged_canary(model_dir, 3, "folder")
        install(COMMITTED_VERSION, model_dir / "0004", 0)  # a good SavedModel in mnist/0004/0: not a version either
        assert server.until(in_state(3, "END"), timeout=DEADLINE)
        assert polls_pass(server, 5)
        info = described(http)
        errors = {v["version"]: v["error"] for v in info["versions"]}
        assert "unreadable canary" in errors[2] and "BadZipFile" in errors[2]
        assert "unreadable canary" in errors[3]
        assert info["version"] == 1 and 4 not in info["available_versions"]
        assert any("'0004'" in problem for problem in info["problems"])
        metrics = scrape(http)
        for version in (2, 3):
            labels = {"model": "mnist", "version": str(version), "reason": "canary"}
            assert value(metrics, "model_load_failures_total", **labels) == 1
        assert classify(http, image).json()["model_version"] == 1


def test_a_served_version_whose_folder_changes_goes_on_serving(models: Path, mnist: Mnist) -> None:
    """A file written into the served version's folder, poll after poll, does not hand the traffic to an older
    version on disk: the version serves what it loaded."""
    model_dir = models / "mnist"
    install(COMMITTED_VERSION, model_dir, 1)
    install(COMMITTED_VERSION, model_dir, 2)
    image = mnist.test_images[0]
    with live(models) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert server.until(default_is(2), timeout=DEADLINE)
        notes = model_dir / "2" / "notes.txt"
        answered_by = set()
        for line in range(8):
            with notes.open("a") as file:
                file.write(f"note {line}\n")
            assert polls_pass(server, 1)
            answered_by.add(classify(http, image).json()["model_version"])
        assert answered_by == {2} and described(http)["version"] == 2


def test_a_score_rounded_past_1_is_answered_within_the_contract(models: Path, mnist: Mnist, tmp_path: Path) -> None:
    """A version whose digit score comes out a little over 1 for sure digits loads, and every protocol answers 200
    with the score held at 1, not a 500 from the answer's [0, 1] bounds."""
    from app.model import DigitModel

    install(score_past_one(tmp_path / "past-one"), models / "mnist", 1)
    images = mnist.test_images[:8]
    raw = DigitModel(models / "mnist", "mnist", 1).outputs(images.astype(np.float32))["digit_score"]
    assert raw.max() > 1
    with live(models) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        answers = [classify(http, image) for image in images]
        assert [a.status_code for a in answers] == [200] * len(images)
        scores = [a.json()["digit_score"] for a in answers]
        assert max(scores) == 1.0 and min(scores) > 0.5
        rows = http.post("/v1/models/mnist:predict", json={"instances": images.tolist()})
        assert rows.status_code == 200 and max(p["digit_score"] for p in rows.json()["predictions"]) == 1.0


def test_start_without_a_version_listens_says_why_and_serves_once_one_comes(models: Path, mnist: Mnist) -> None:
    (models / "mnist").mkdir(parents=True)
    with live(models, wait_ready=False) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert server.until(lambda h: h.get("/readyz").json()["status"] == "unavailable", timeout=DEADLINE)
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "no complete version" in ready.json()["detail"]
        status = http.get("/v1/models/mnist")
        assert status.status_code == 503 and "unavailable" in status.json()["error"]
        assert http.get("/v2/models/mnist/ready").status_code == 503
        refused = classify(http, mnist.test_images[0])
        assert refused.status_code == 503 and "no version" in refused.json()["detail"]

        install(COMMITTED_VERSION, models / "mnist", 1)
        assert server.until(lambda h: h.get("/readyz").status_code == 200, timeout=DEADLINE)
        assert classify(http, mnist.test_images[0]).json()["model_version"] == 1


def test_requests_in_flight_during_swaps_all_succeed(models: Path, mnist: Mnist) -> None:
    install(COMMITTED_VERSION, models / "mnist", 1)
    uploads = [mnist_png(image) for image in mnist.test_images[:32]]
    labels = mnist.test_labels[:32]
    stop = threading.Event()

    def client_loop(server: LiveServer, seed: int) -> list[tuple[int, int, bool]]:
        answers = []
        with httpx.Client(base_url=server.url, timeout=60) as http:
            index = seed
            while not stop.is_set():
                response = http.post("/predict", files={"file": ("d.png", uploads[index % 32])})
                body = response.json()
                answers.append(
                    (
                        response.status_code,
                        body.get("model_version", 0),
                        body.get("predicted_class") == labels[index % 32],
                    )
                )
                index += 1
        return answers

    with live(models) as server, ThreadPoolExecutor(8) as pool:
        running = [pool.submit(client_loop, server, seed) for seed in range(8)]
        try:
            for version in (2, 3):  # two swaps under load, each retiring the version before
                install(COMMITTED_VERSION, models / "mnist", version)
                assert server.until(default_is(version), timeout=DEADLINE)
            assert server.until(lambda h: [v["version"] for v in described(h)["versions"]] == [3], timeout=DEADLINE)
        finally:
            stop.set()
        answers = [answer for future in running for answer in future.result()]
    assert {status for status, _, _ in answers} == {200}
    versions = {version for _, version, _ in answers}
    assert versions <= {1, 2, 3} and 3 in versions
    assert sum(correct for _, _, correct in answers) >= 0.95 * len(answers)


def test_a_request_accepted_before_a_swap_finishes_on_its_version(models: Path, mnist: Mnist) -> None:
    """A request routed to version 1 whose upload is still coming when version 2 takes over: version 1 stays loaded
    (UNLOADING) until that request is answered, by version 1, and unloads after it."""
    install(COMMITTED_VERSION, models / "mnist", 1)
    boundary = "repository-test"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n\r\n'.encode()
    body = head + mnist_png(mnist.test_images[0]) + f"\r\n--{boundary}--\r\n".encode()
    gate = threading.Event()

    def upload() -> Iterator[bytes]:
        yield body[:64]
        gate.wait(DEADLINE)  # the rest of the upload comes after the swap
        yield body[64:]

    with live(models) as server, ThreadPoolExecutor(1) as pool:
        first = server.app.state.service.route()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        answer = pool.submit(httpx.post, f"{server.url}/predict", content=upload(), headers=headers, timeout=120)
        try:
            assert server.until(lambda _: first.holders == 1, timeout=DEADLINE)  # routed to version 1
            install(COMMITTED_VERSION, models / "mnist", 2)
            assert server.until(default_is(2), timeout=DEADLINE)
            assert server.until(in_state(1, "UNLOADING"), timeout=DEADLINE)
            assert polls_pass(server, 3)
            with httpx.Client(base_url=server.url, timeout=60) as http:
                assert in_state(1, "UNLOADING")(http)  # held: not unloaded
        finally:
            gate.set()
        response = answer.result(timeout=DEADLINE)
        assert response.status_code == 200 and response.json()["model_version"] == 1
        assert server.until(lambda h: state(h, 1) is None, timeout=DEADLINE)


# ---------------------------------------------------------------- the policy grammar and the config file


@pytest.mark.parametrize(
    ("text", "present", "chosen"),
    [
        ("latest", [1, 2, 3], {3}),
        ("latest 2", [1, 2, 3], {2, 3}),
        ("  LATEST   5 ", [1, 2, 3], {1, 2, 3}),
        ("all", [1, 4], {1, 4}),
        ("specific [3, 4]", [1, 2, 3], {3}),
        ("specific [2,]", [1, 2, 3], {2}),
    ],
)
def test_version_policies_choose_as_tensorflow_serving(text: str, present: list[int], chosen: set[int]) -> None:
    assert parse_policy(text).select(present) == chosen
    assert parse_policy(str(parse_policy(text))) == parse_policy(text)


@pytest.mark.parametrize("text", ["newest", "latest 0", "latest two", "specific []", "specific 3", "specific [0]"])
def test_a_bad_policy_is_refused_with_the_grammar(text: str) -> None:
    with pytest.raises(ConfigError, match=r"latest|specific"):
        parse_policy(text)


def test_labels_from_the_environment_and_the_config_file(tmp_path: Path) -> None:
    assert parse_labels("stable=3, canary = 4") == {"stable": 3, "canary": 4}
    for bad in ("stable", "stable=x", "9lives=3", "stable=0"):
        with pytest.raises(ConfigError):
            parse_labels(bad)
    path = tmp_path / "models.toml"
    path.write_text('version_policy = "latest 2"\n[labels]\nstable = 3\n')
    assert read_config_file(path) == ModelConfig(VersionPolicy("latest", 2), {"stable": 3})
    for text, words in (
        ("version_policy = 3", "must be a string"),
        ('policy = "all"', "unknown keys"),
        ('version_policy = "sometimes"', "not understood"),
        ("[labels]\nstable = true", "version number"),
        ("[labels\n", "not valid TOML"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=words):
            read_config_file(path)


def test_the_environment_sets_policy_and_labels_and_model_version_pins_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from app.settings import Settings

    monkeypatch.setenv("MODEL_VERSION_POLICY", "latest 2")
    monkeypatch.setenv("MODEL_LABELS", "stable=3")
    assert Settings().model_config_from_env() == ModelConfig(VersionPolicy("latest", 2), {"stable": 3})
    monkeypatch.setenv("MODEL_VERSION", "3")
    assert Settings().model_config_from_env().policy == VersionPolicy("specific", versions=frozenset({3}))
    monkeypatch.setenv("MODEL_VERSION_POLICY", "newest")
    with pytest.raises(ValidationError, match="not understood"):
        Settings()
