"""GET /metrics, read with prometheus_client's own parser: the counters move with the requests made."""

from __future__ import annotations

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SERVED_VERSION
from tests.uploads import mnist_png
from training.data import Mnist

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_counters_move_with_requests(client: httpx.Client, mnist: Mnist) -> None:
    images, labels = mnist.test_images[:5], mnist.test_labels[:5]
    before = scrape(client)

    infer = {"inputs": [{"name": "images", "shape": [5, 28, 28], "datatype": "UINT8", "data": images.ravel().tolist()}]}
    assert client.post("/v2/models/mnist/infer", json=infer).status_code == 200
    assert client.post("/v1/models/mnist:predict", json={"instances": images.tolist()}).status_code == 200
    assert client.post("/predict", files={"file": ("d.png", mnist_png(images[0]))}).status_code == 200
    assert client.post("/v2/models/fashion/infer", json=infer).status_code == 404
    assert client.get("/no/such/page").status_code == 404

    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("http_requests_total", method="POST", route="/v2/models/{model_name}/infer", status="200") == 1
    assert moved("http_requests_total", method="POST", route="/v2/models/{model_name}/infer", status="404") == 1
    assert moved("http_requests_total", method="POST", route="/v1/models/{model_name}:predict", status="200") == 1
    assert moved("http_requests_total", method="POST", route="/predict", status="200") == 1
    assert moved("http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert moved("http_request_duration_seconds_count", method="POST", route="/v2/models/{model_name}/infer") == 2
    assert moved("http_request_duration_seconds_sum", method="POST", route="/v2/models/{model_name}/infer") > 0

    # 11 images in 3 successful predictions: each digit's counter moves by how often it was predicted.
    expected = np.bincount(np.concatenate([labels, labels, labels[:1]]), minlength=10)
    for digit in range(10):
        assert moved("predictions_total", predicted_class=str(digit)) == expected[digit], digit
    assert total(after, "batch_size_images_sum") - total(before, "batch_size_images_sum") == 11
    assert 1 <= total(after, "batch_size_images_count") - total(before, "batch_size_images_count") <= 3
    assert total(after, "batch_queue_wait_seconds_count") - total(before, "batch_queue_wait_seconds_count") == 3
    assert total(after, "inference_duration_seconds_sum") > total(before, "inference_duration_seconds_sum")
    assert value(after, "model_version", model="mnist") == SERVED_VERSION
    assert value(after, "batch_queue_images") == 0


def test_metrics_is_documented(client: httpx.Client) -> None:
    assert "/metrics" in client.get("/openapi.json").json()["paths"]
