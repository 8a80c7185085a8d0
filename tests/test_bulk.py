"""Bulk scoring over real HTTP: thousands of images in one tensor request, limited by bytes, batched fairly."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from app.batch_parts import BatchReport
from tests.conftest import LiveServer
from tests.test_tfserving import tfserving_probabilities
from tests.uploads import mnist_png
from training.data import Mnist

V2_INFER = "/v2/models/mnist/infer"
TFS_PREDICT = "/v1/models/mnist:predict"
TENSOR_LIMIT = 100_000  # bytes: under it, 100 images as binary UINT8 with their JSON header
QUEUE_LIMIT = 100
BATCH_FILES = 3
BATCH_BYTES = 20_000
SENDERS = 4  # clients sending the single-image requests side by side, each on its own connection


def v2_binary(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """An Open Inference Protocol request with `images` as one binary UINT8 tensor, and its headers."""
    header = {
        "inputs": [
            {
                "name": "images",
                "shape": list(images.shape),
                "datatype": "UINT8",
                "parameters": {"binary_data_size": images.size},
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}],
    }
    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return head + images.astype(np.uint8).tobytes(), headers


def v2_probabilities(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text[:500]
    (output,) = response.json()["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


@pytest.fixture(scope="module")
def small_limits() -> Iterator[LiveServer]:
    """A server whose byte and queue limits are small enough to cross with a few requests."""
    limits = {"max_batch_files": BATCH_FILES, "max_batch_bytes": BATCH_BYTES, "queue_max_images": QUEUE_LIMIT}
    with LiveServer(max_tensor_bytes=TENSOR_LIMIT, **limits) as live:
        yield live


def test_ten_thousand_images_in_one_request_match_one_at_a_time(server: LiveServer, mnist) -> None:
    images = mnist.test_images
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=300)
    tensor = triton.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images.astype(np.uint8))
    bulk = client.infer("mnist", [tensor]).as_numpy("probabilities")
    assert bulk.shape == (10_000, 10)

    def one_at_a_time(indices: range) -> np.ndarray:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            answers = []
            for index in indices:
                body, headers = v2_binary(images[index : index + 1])
                answers.append(v2_probabilities(http.post(V2_INFER, content=body, headers=headers))[0])
            return np.stack(answers)

    shares = [range(start, len(images), SENDERS) for start in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        singles = np.empty_like(bulk)
        for share, answers in zip(shares, pool.map(one_at_a_time, shares), strict=True):
            singles[share.start :: SENDERS] = answers
    np.testing.assert_allclose(bulk, singles, atol=1e-5)
    assert (bulk.argmax(axis=1) == singles.argmax(axis=1)).all()
    assert np.mean(bulk.argmax(axis=1) == mnist.test_labels) >= 0.98


def test_large_json_tensors_in_every_layout(
    server: LiveServer, mnist: Mnist, offline_probabilities: np.ndarray
) -> None:
    images, wanted = mnist.test_images[:2000], offline_probabilities[:2000]
    nested = {"inputs": [{"name": "images", "shape": [2000, 28, 28], "datatype": "FP32", "data": images.tolist()}]}
    flat = {
        "inputs": [{"name": "images", "shape": [2000, 28, 28], "datatype": "UINT8", "data": images.ravel().tolist()}]
    }
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for body in (nested, flat):
            outputs = {o["name"]: o for o in http.post(V2_INFER, json=body).json()["outputs"]}
            probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(2000, 10)
            np.testing.assert_allclose(probabilities, wanted, atol=1e-5)
            assert outputs["class"]["data"] == wanted.argmax(axis=1).tolist()
        columnar = http.post(TFS_PREDICT, json={"inputs": images.tolist()})
        np.testing.assert_allclose(tfserving_probabilities(columnar.json()), wanted, atol=1e-5)
        rows = http.post(TFS_PREDICT, json={"instances": images.astype(np.float32).tolist()})
        np.testing.assert_allclose(tfserving_probabilities(rows.json()), wanted, atol=1e-5)


def test_single_predict_is_answered_while_a_bulk_request_runs(server: LiveServer, mnist: Mnist) -> None:
    engine = server.app.state.service.engine
    body, headers = v2_binary(mnist.test_images)
    bulk_done = threading.Event()
    results: list[httpx.Response] = []

    def send_bulk() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            results.append(http.post(V2_INFER, content=body, headers=headers))
        bulk_done.set()

    under_way = threading.Event()  # set by the engine's batch observer once bulk chunks run with thousands left

    def watch(_: BatchReport) -> None:
        if engine.pending >= 5_000:
            under_way.set()

    engine.stats.observers.append(watch)
    sender = threading.Thread(target=send_bulk)
    sender.start()
    try:
        assert under_way.wait(timeout=120), "the bulk request never ran in the engine"
    finally:
        engine.stats.observers.remove(watch)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        single = http.post("/predict", files={"file": ("7.png", mnist_png(mnist.test_images[0]))})
        answered_during_bulk = not bulk_done.is_set()
    sender.join(timeout=300)
    assert single.status_code == 200 and single.json()["predicted_class"] == int(mnist.test_labels[0])
    assert answered_during_bulk, "the single /predict waited for the whole bulk request"
    assert (v2_probabilities(results[0]).argmax(axis=1) == mnist.test_labels).mean() >= 0.98


def over_tensor_limit(mnist: Mnist) -> list[tuple[str, str, bytes, dict[str, str]]]:
    images = mnist.test_images[:128]  # 100,352 bytes as binary UINT8, over TENSOR_LIMIT in every encoding
    binary, binary_headers = v2_binary(images)
    tensor = {"name": "images", "shape": [128, 28, 28], "datatype": "UINT8", "data": images.tolist()}
    as_json = json.dumps({"inputs": [tensor]}).encode()
    instances = json.dumps({"instances": images.tolist()}).encode()
    json_type = {"Content-Type": "application/json"}
    return [
        ("v2-binary", V2_INFER, binary, binary_headers),
        ("v2-json", V2_INFER, as_json, json_type),
        ("v2-gzip", V2_INFER, gzip.compress(as_json), {**json_type, "Content-Encoding": "gzip"}),
        ("tfs-instances", TFS_PREDICT, instances, json_type),
        ("tfs-gzip", TFS_PREDICT, gzip.compress(instances), {**json_type, "Content-Encoding": "gzip"}),
        ("tfs-chunked", TFS_PREDICT, instances, {**json_type, "Transfer-Encoding": "chunked"}),
    ]


def test_tensor_requests_over_the_byte_limit_get_413(small_limits: LiveServer, mnist: Mnist) -> None:
    with httpx.Client(base_url=small_limits.url, timeout=60) as http:
        for name, path, body, headers in over_tensor_limit(mnist):
            content: bytes | Iterator[bytes] = body
            if "Transfer-Encoding" in headers:  # no Content-Length: the limit must hold while the body streams
                content = iter([body[i : i + 4096] for i in range(0, len(body), 4096)])
            response = http.post(path, content=content, headers=headers)
            assert response.status_code == 413, (name, response.text)
            assert set(response.json()) == {"error"}, name
            assert f"{TENSOR_LIMIT:,} bytes (MAX_TENSOR_BYTES)" in response.json()["error"], (name, response.text)
        body, headers = v2_binary(mnist.test_images[:QUEUE_LIMIT])  # under every limit
        probabilities = v2_probabilities(http.post(V2_INFER, content=body, headers=headers))
        assert (probabilities.argmax(axis=1) == mnist.test_labels[:QUEUE_LIMIT]).mean() >= 0.95


def test_more_images_than_the_queue_holds_get_413(small_limits: LiveServer, mnist: Mnist) -> None:
    body, headers = v2_binary(mnist.test_images[: QUEUE_LIMIT + 1])  # under the byte limit
    with httpx.Client(base_url=small_limits.url, timeout=60) as http:
        response = http.post(V2_INFER, content=body, headers=headers)
    assert response.status_code == 413, response.text
    assert f"{QUEUE_LIMIT + 1} images in one request" in response.json()["error"]
    assert "QUEUE_MAX_IMAGES" in response.json()["error"]


def noise_png(rng: np.random.Generator) -> bytes:
    """A 120x120 PNG of noise: about 14 KB, since noise does not compress."""
    return mnist_png(rng.integers(0, 256, (120, 120), dtype=np.uint8))


def test_batch_uploads_are_limited_by_total_bytes_and_file_count(small_limits: LiveServer, mnist: Mnist) -> None:
    rng = np.random.default_rng(0)
    digits = [("files", (f"{i}.png", mnist_png(mnist.test_images[i]))) for i in range(BATCH_FILES)]
    with httpx.Client(base_url=small_limits.url, timeout=60) as http:
        answered = http.post("/predict/batch", files=digits)
        assert answered.status_code == 200, answered.text
        assert [p["predicted_class"] for p in answered.json()["predictions"]] == mnist.test_labels[:3].tolist()

        too_many = http.post("/predict/batch", files=[*digits, digits[0]])
        assert too_many.status_code == 413 and f"limit per request is {BATCH_FILES}" in too_many.json()["detail"]

        heavy = [("files", (f"noise{i}.png", noise_png(rng))) for i in range(2)]
        too_big = http.post("/predict/batch", files=heavy)
        assert too_big.status_code == 413, too_big.text
        assert f"{BATCH_BYTES:,} bytes (MAX_BATCH_BYTES)" in too_big.json()["detail"]
