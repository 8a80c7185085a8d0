"""TensorFlow Serving's REST API, with plain HTTP requests shaped as its documentation shows, on real MNIST digits."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, SERVED_VERSION
from tests.uploads import mnist_png, paper_jpeg
from training.data import Mnist

EXAMPLES = ROOT / "docs" / "examples"

SAMPLE = 64  # one request's worth (MAX_BATCH_FILES)

SERVED = f"/v1/models/mnist/versions/{SERVED_VERSION}"  # the loaded version's own URL
UNLOADED = SERVED_VERSION + 1  # a version that is not there


def post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    """As `curl -d '<json>' -X POST` sends it."""
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def tfserving_probabilities(body: dict) -> np.ndarray:
    """The probabilities in a :predict answer, row or columnar: a bare list for a signature of one output, by name
    (an object per row, or one of lists) for a signature of several."""
    answer = body["predictions"] if "predictions" in body else body["outputs"]
    if isinstance(answer, dict):
        return np.array(answer["probabilities"])
    return np.array([row["probabilities"] if isinstance(row, dict) else row for row in answer])


def test_model_status_follows_get_model_status(client: httpx.Client) -> None:
    expected = {
        "model_version_status": [
            {"version": str(SERVED_VERSION), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert client.get("/v1/models/mnist").json() == expected
    assert client.get(SERVED).json() == expected


def test_metadata_shows_the_serving_signature(client: httpx.Client) -> None:
    for path in ("/v1/models/mnist/metadata", f"{SERVED}/metadata"):
        body = client.get(path).json()
        assert body["model_spec"] == {"name": "mnist", "signature_name": "", "version": str(SERVED_VERSION)}
        signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert signature["method_name"] == "tensorflow/serving/predict"
        (name, images), probabilities = *signature["inputs"].items(), signature["outputs"]["probabilities"]
        assert name == "images" and set(signature["outputs"]) <= {"probabilities", "digit_score"}
        assert images["dtype"] == probabilities["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "28", "28"]
        assert [d["size"] for d in probabilities["tensor_shape"]["dim"]] == ["-1", "10"]


@pytest.mark.parametrize(
    ("path", "wrap", "key"),
    [
        ("/v1/models/mnist:predict", lambda x: {"instances": x}, "predictions"),
        (f"{SERVED}:predict", lambda x: {"instances": [{"images": i} for i in x]}, "predictions"),
        ("/v1/models/mnist:predict", lambda x: {"inputs": x}, "outputs"),
        (
            "/v1/models/mnist:predict",
            lambda x: {"signature_name": "serving_default", "inputs": {"images": x}},
            "outputs",
        ),
    ],
    ids=["row", "row-named", "columnar", "columnar-named"],
)
def test_pixel_arrays_get_the_offline_answers(
    client: httpx.Client, mnist: Mnist, offline_probabilities: np.ndarray, path, wrap, key
) -> None:
    images = mnist.test_images[:SAMPLE]
    response = post(client, path, wrap(images.tolist()))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {key}
    probabilities = tfserving_probabilities(response.json())
    assert probabilities.shape == (SAMPLE, 10)
    np.testing.assert_allclose(probabilities, offline_probabilities[:SAMPLE], atol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == mnist.test_labels[:SAMPLE]) >= 0.98


def test_b64_images_go_through_the_upload_preprocessing(client: httpx.Client, mnist: Mnist) -> None:
    rng = np.random.default_rng(6)
    digits, labels = mnist.test_images[100:116], mnist.test_labels[100:116]
    instances = [b64(mnist_png(d)) for d in digits[:8]] + [{"images": b64(paper_jpeg(d, rng))} for d in digits[8:]]
    response = post(client, "/v1/models/mnist:predict", {"instances": instances})
    assert response.status_code == 200, response.text
    predicted = tfserving_probabilities(response.json()).argmax(axis=1)
    assert np.mean(predicted == labels) >= 0.9, (predicted, labels)
    assert (predicted[:8] == labels[:8]).all()  # MNIST's own format is fed exactly as it is


def test_documented_example_file_works(client: httpx.Client) -> None:
    body = json.loads((EXAMPLES / "tfserving-predict.json").read_text())
    response = post(client, "/v1/models/mnist:predict", body)
    assert response.status_code == 200, response.text
    assert tfserving_probabilities(response.json()).argmax(axis=1).tolist() == [7, 1]
    files = ["seven.png", "two.png", "three.png", "photo-four.jpg"]  # the README's example images
    images = post(client, "/v1/models/mnist:predict", {"instances": [b64((EXAMPLES / f).read_bytes()) for f in files]})
    assert tfserving_probabilities(images.json()).argmax(axis=1).tolist() == [7, 2, 3, 4]


PIXELS = [[0] * 28 for _ in range(28)]
PNG_NOT = base64.b64encode(b"just some text, not an image").decode()

BAD_REQUESTS = [
    ("malformed-json", "/v1/models/mnist:predict", b'{"instances": [', 400, "malformed JSON"),
    ("empty-body", "/v1/models/mnist:predict", b"", 400, "empty"),
    ("not-an-object", "/v1/models/mnist:predict", b"[1, 2]", 400, "JSON object"),
    ("both-formats", "/v1/models/mnist:predict", {"instances": [PIXELS], "inputs": [PIXELS]}, 400, "exactly one"),
    ("neither-format", "/v1/models/mnist:predict", {"examples": [PIXELS]}, 400, "exactly one"),
    ("no-instances", "/v1/models/mnist:predict", {"instances": []}, 400, "non-empty"),
    ("wrong-shape", "/v1/models/mnist:predict", {"instances": [[[0] * 27] * 28]}, 400, "shape [28, 27]"),
    ("flat-pixels", "/v1/models/mnist:predict", {"instances": [[0] * 784]}, 400, "shape [784]"),
    ("missing-batch-dim", "/v1/models/mnist:predict", {"inputs": PIXELS}, 400, "inputs[0] has shape [28]"),
    ("ragged", "/v1/models/mnist:predict", {"instances": [[[0] * 28] * 27 + [[0] * 5]]}, 400, "rectangular"),
    ("strings", "/v1/models/mnist:predict", {"instances": [[["a"] * 28] * 28]}, 400, "numbers"),
    (
        "nan",
        "/v1/models/mnist:predict",
        b'{"instances": [[' + b",".join([b"[" + b",".join([b"NaN"] * 28) + b"]"] * 28) + b"]]}",
        400,
        "NaN",
    ),
    ("out-of-range", "/v1/models/mnist:predict", {"instances": [[[300] * 28] * 28]}, 400, "0-255"),
    ("bad-base64", "/v1/models/mnist:predict", {"instances": [{"b64": "not base64!"}]}, 400, "malformed base64"),
    ("b64-not-an-image", "/v1/models/mnist:predict", {"instances": [{"b64": PNG_NOT}]}, 415, "unsupported"),
    ("unknown-input", "/v1/models/mnist:predict", {"instances": [{"pixels": PIXELS}]}, 400, "'images'"),
    ("named-twice", "/v1/models/mnist:predict", {"instances": [{"images": {"images": PIXELS}}]}, 400, "at most once"),
    (
        "named-a-thousand-times",
        "/v1/models/mnist:predict",
        b'{"instances": [' + b'{"images": ' * 1000 + json.dumps(PIXELS).encode() + b"}" * 1000 + b"]}",
        400,
        "at most once",
    ),
    ("unknown-signature", "/v1/models/mnist:predict", {"signature_name": "x", "instances": [PIXELS]}, 400, "signature"),
    ("classify", "/v1/models/mnist:classify", {"examples": [{"x": 1}]}, 400, "predict signature only"),
    ("regress-version", f"{SERVED}:regress", {"examples": [{"x": 1}]}, 400, "predict signature only"),
    ("unknown-model", "/v1/models/fashion:predict", {"instances": [PIXELS]}, 404, "'fashion'"),
    (
        "unknown-version",
        f"/v1/models/mnist/versions/{UNLOADED}:predict",
        {"instances": [PIXELS]},
        404,
        f"version '{UNLOADED}'",
    ),
    ("bad-version", "/v1/models/mnist/versions/latest:predict", {"instances": [PIXELS]}, 404, "version 'latest'"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "status", "words"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_requests_get_the_protocol_error(
    client: httpx.Client, mnist: Mnist, name, path, body, status, words
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and words in response.json()["error"], response.text
    good = post(client, "/v1/models/mnist:predict", {"instances": mnist.test_images[:1].tolist()})
    assert tfserving_probabilities(good.json()).argmax(axis=1).tolist() == [mnist.test_labels[0]]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/fashion",
        f"/v1/models/mnist/versions/{SERVED_VERSION + 1}",
        "/v1/models/fashion/metadata",
        "/v1/models/mnist/versions/0/metadata",
        "/v1/models/mnist/versions/\u00b2",  # "²": a digit to str.isdigit, not to int()
    ],
)
def test_unknown_model_or_version_is_404_with_error_body(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and "error" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/mnist:predict",
        f"/v1/models/mnist/versions/{SERVED_VERSION}:predict",
        "/v1/models/mnist/labels/stable:predict",
    ],
)
def test_a_get_on_a_predict_url_is_405_naming_post(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 405 and response.headers["allow"] == "POST", response.text
    assert set(response.json()) == {"error"}  # the protocol's error body


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/models/{model_name}",
        "/v1/models/{model_name}/metadata",
        "/v1/models/{model_name}:predict",
        "/v1/models/{model_name}/versions/{version}:predict",
    ):
        assert path in paths, path
    predict = paths["/v1/models/{model_name}:predict"]["post"]
    assert "instances" in json.dumps(predict["requestBody"]) and {"200", "400", "404"} <= set(predict["responses"])
