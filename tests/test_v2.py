"""The Open Inference Protocol (KServe V2) with the real clients, tritonclient.http and KServe's
InferenceRESTClient, plus raw HTTP for the bodies a client library would never send."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import struct

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from app.settings import Settings
from tests.conftest import ROOT, SERVED_VERSION, LiveServer
from tests.uploads import mnist_png, paper_jpeg
from training.data import Mnist

EXAMPLES = ROOT / "docs" / "examples"
SAMPLE = 64


@pytest.fixture()
def triton_client(server: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)


def test_health_and_metadata_with_tritonclient(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("mnist") and triton_client.is_model_ready("mnist", str(SERVED_VERSION))
    assert not triton_client.is_model_ready("mnist", "1")  # on disk, but only the newest version is loaded
    assert not triton_client.is_model_ready("fashion")
    server = triton_client.get_server_metadata()
    assert server["name"] == "mnist-service" and "binary_tensor_data" in server["extensions"]
    metadata = triton_client.get_model_metadata("mnist")
    assert metadata == triton_client.get_model_metadata("mnist", str(SERVED_VERSION))
    assert metadata["name"] == "mnist" and metadata["versions"] == [str(SERVED_VERSION)]
    assert metadata["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("probabilities", "FP32", [-1, 10]),
        ("class", "INT64", [-1]),
        ("is_digit", "BOOL", [-1]),
        ("digit_score", "FP32", [-1]),
    ]
    with pytest.raises(InferenceServerException) as raised:
        triton_client.get_model_metadata("fashion")
    assert raised.value.status() == "404" and "fashion" in raised.value.message()


def test_binary_uint8_infer_with_tritonclient_defaults(
    triton_client: triton.InferenceServerClient, mnist: Mnist, offline_probabilities
) -> None:
    images = mnist.test_images[:SAMPLE].astype(np.uint8)
    tensor = triton.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)  # binary, and with no outputs named, binary outputs too
    result = triton_client.infer("mnist", [tensor])
    response = result.get_response()
    assert response["model_name"] == "mnist" and response["model_version"] == str(SERVED_VERSION)
    assert all("binary_data_size" in output["parameters"] for output in response["outputs"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), offline_probabilities[:SAMPLE], atol=1e-5)
    classes = result.as_numpy("class")
    assert classes.dtype == np.int64 and classes.shape == (SAMPLE,)
    assert (classes == offline_probabilities[:SAMPLE].argmax(axis=1)).all()
    assert np.mean(classes == mnist.test_labels[:SAMPLE]) >= 0.98


def test_json_fp32_infer_with_tritonclient(triton_client: triton.InferenceServerClient, mnist) -> None:
    images = mnist.test_images[200:216].astype(np.float32)
    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=False)
    wanted = [triton.InferRequestedOutput("class", binary_data=False)]
    result = triton_client.infer(
        "mnist", [tensor], model_version=str(SERVED_VERSION), outputs=wanted, request_id="req-7"
    )
    response = result.get_response()
    assert response["id"] == "req-7" and [o["name"] for o in response["outputs"]] == ["class"]
    assert response["outputs"][0]["data"] == result.as_numpy("class").tolist()
    assert (result.as_numpy("class") == mnist.test_labels[200:216]).mean() >= 0.9


def test_encoded_images_as_bytes_binary_and_json(triton_client: triton.InferenceServerClient, mnist) -> None:
    rng = np.random.default_rng(2)
    digits, labels = mnist.test_images[300:308], mnist.test_labels[300:308]
    files = [mnist_png(d) for d in digits[:4]] + [paper_jpeg(d, rng) for d in digits[4:]]
    binary = triton.InferInput("images", [len(files)], "BYTES")
    binary.set_data_from_numpy(np.array(files, dtype=np.object_))
    predicted = triton_client.infer("mnist", [binary]).as_numpy("class")
    assert (predicted[:4] == labels[:4]).all() and np.mean(predicted == labels) >= 0.75, (predicted, labels)

    as_text = np.array([[base64.b64encode(f).decode()] for f in files], dtype=np.object_)
    json_input = triton.InferInput("images", [len(files), 1], "BYTES")
    json_input.set_data_from_numpy(as_text, binary_data=False)
    again = triton_client.infer("mnist", [json_input], outputs=[triton.InferRequestedOutput("class", False)])
    assert (again.as_numpy("class") == predicted).all()


def test_compressed_requests_from_tritonclient(triton_client: triton.InferenceServerClient, mnist) -> None:
    images = mnist.test_images[500:508].astype(np.uint8)
    for algorithm in ("gzip", "deflate"):
        tensor = triton.InferInput("images", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)
        result = triton_client.infer(
            "mnist", [tensor], request_compression_algorithm=algorithm, response_compression_algorithm=algorithm
        )
        assert (result.as_numpy("class") == mnist.test_labels[500:508]).mean() >= 0.85, algorithm


def test_kserve_rest_client_v2(server: LiveServer, mnist: Mnist) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    images = mnist.test_images[400:432]
    labels = mnist.test_labels[400:432]

    async def run() -> tuple[bool, bool, bool, np.ndarray, np.ndarray, np.ndarray]:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        try:
            live = await client.is_server_live(server.url)
            ready = await client.is_server_ready(server.url)
            model_ready = await client.is_model_ready(server.url, "mnist")
            as_json = InferInput("images", list(images.shape), "FP32", data=images.astype(np.float32))
            json_result = await client.infer(server.url, InferRequest("mnist", [as_json]), model_name="mnist")
            as_binary = InferInput("images", list(images.shape), "UINT8")
            as_binary.set_data_from_numpy(images.astype(np.uint8), binary_data=True)
            request = InferRequest("mnist", [as_binary], parameters={"binary_data_output": True})
            binary_result = await client.infer(server.url, request, model_name="mnist")
        finally:
            await client.close()
        outputs = {o.name: o.as_numpy() for o in json_result.outputs}
        binary_outputs = {o.name: o.as_numpy() for o in binary_result.outputs}
        return (live, ready, model_ready, outputs["class"], binary_outputs["class"], binary_outputs["probabilities"])

    live, ready, model_ready, classes, binary_classes, probabilities = asyncio.run(run())
    assert live and ready and model_ready
    assert (classes == binary_classes).all() and (classes == probabilities.argmax(axis=1)).all()
    assert probabilities.shape == (32, 10) and np.mean(classes == labels) >= 0.95


def test_documented_example_file_works(client: httpx.Client) -> None:
    body = (EXAMPLES / "v2-infer.json").read_bytes()
    response = client.post("/v2/models/mnist/infer", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["class"]["data"] == [7, 1] and outputs["class"]["shape"] == [2]
    assert outputs["probabilities"]["shape"] == [2, 10] and len(outputs["probabilities"]["data"]) == 20


def binary_request(header: dict, data: bytes, declared: int | None = None) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    length = len(head) if declared is None else declared
    return head + data, {"Inference-Header-Content-Length": str(length), "Content-Type": "application/octet-stream"}


def uint8_input(count: int = 1, size: int | None = None) -> dict:
    return {
        "name": "images",
        "shape": [count, 28, 28],
        "datatype": "UINT8",
        "parameters": {"binary_data_size": count * 784 if size is None else size},
    }


def json_input(**changes: object) -> dict:
    tensor = {"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}
    tensor.update(changes)
    return tensor


ZEROS = bytes(784)
NOT_AN_IMAGE = base64.b64encode(b"plain text, not an image").decode()

GZIP_BOMB = gzip.compress(b" " * (2 * Settings().max_tensor_bytes))  # twice the limit in spaces, tiny compressed

BAD_REQUESTS = [
    ("malformed-json", b'{"inputs": [', {}, 400, "malformed JSON"),
    ("not-an-object", b"[]", {}, 400, "JSON object"),
    ("gzip-bomb", GZIP_BOMB, {"Content-Encoding": "gzip"}, 413, "decompressed body is over"),
    ("corrupt-gzip", b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "cannot be decompressed"),
    ("truncated-gzip", gzip.compress(b'{"inputs": []}')[:-12], {"Content-Encoding": "gzip"}, 400, "truncated"),
    ("unknown-encoding", b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding 'br'"),
    ("no-inputs", {"outputs": []}, {}, 400, "exactly one"),
    ("two-inputs", {"inputs": [json_input(), json_input()]}, {}, 400, "exactly one"),
    ("wrong-input-name", {"inputs": [json_input(name="x")]}, {}, 400, "'images'"),
    ("wrong-datatype", {"inputs": [json_input(datatype="INT32")]}, {}, 400, "INT32"),
    ("wrong-shape", {"inputs": [json_input(shape=[1, 784], data=[0] * 784)]}, {}, 400, "[1, 784]"),
    ("negative-shape", {"inputs": [json_input(shape=[-1, 28, 28])]}, {}, 400, "non-negative"),
    ("data-shorter-than-shape", {"inputs": [json_input(data=[0.0] * 783)]}, {}, 400, "783 values"),
    ("data-longer-than-shape", {"inputs": [json_input(data=[0.0] * 785)]}, {}, 400, "785 values"),
    ("data-not-numbers", {"inputs": [json_input(data=["x"] * 784)]}, {}, 400, "numbers"),
    ("uint8-fraction", {"inputs": [json_input(datatype="UINT8", data=[0.5] * 784)]}, {}, 400, "whole numbers"),
    ("out-of-range", {"inputs": [json_input(data=[256.0] * 784)]}, {}, 400, "0-255"),
    ("missing-data", {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32"}]}, {}, 400, "list"),
    ("unknown-output", {"inputs": [json_input()], "outputs": [{"name": "logits"}]}, {}, 400, "logits"),
    (
        "bad-base64",
        {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES", "data": ["%%"]}]},
        {},
        400,
        "malformed base64",
    ),
    (
        "bytes-not-an-image",
        {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES", "data": [NOT_AN_IMAGE]}]},
        {},
        415,
        "unsupported",
    ),
    (
        "bytes-shape",
        {"inputs": [{"name": "images", "shape": [1, 2], "datatype": "BYTES", "data": ["", ""]}]},
        {},
        400,
        "BYTES shape",
    ),
    ("binary-size-without-header", {"inputs": [uint8_input()]}, {}, 400, "Inference-Header-Content-Length"),
    (
        "header-length-past-body",
        *binary_request({"inputs": [uint8_input()]}, ZEROS, declared=10**6),
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "header-length-not-a-number",
        *binary_request({"inputs": [uint8_input()]}, ZEROS, declared=-5),
        400,
        "whole number",
    ),
    (
        "header-length-a-unicode-digit",
        json.dumps({"inputs": [uint8_input()]}).encode() + ZEROS,
        {"Inference-Header-Content-Length": "\u00b2".encode("latin-1"), "Content-Type": "application/octet-stream"},
        400,
        "whole number",
    ),
    (
        "header-length-cuts-json",
        *binary_request({"inputs": [uint8_input()]}, ZEROS, declared=20),
        400,
        "malformed JSON",
    ),
    ("binary-shorter-than-declared", *binary_request({"inputs": [uint8_input()]}, ZEROS[:700]), 400, "only 700"),
    ("binary-longer-than-declared", *binary_request({"inputs": [uint8_input()]}, ZEROS + b"\0"), 400, "add up to"),
    (
        "binary-size-not-matching-shape",
        *binary_request({"inputs": [uint8_input(size=700)]}, ZEROS[:700]),
        400,
        "700 bytes",
    ),
    (
        "bytes-element-overruns",
        *binary_request(
            {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 8}}]},
            struct.pack("<I", 100) + b"\x89PNG",
        ),
        400,
        "claims 100 bytes",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "words"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_requests_get_the_protocol_error(
    client: httpx.Client, mnist: Mnist, name, body, headers, status, words
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v2/models/mnist/infer", content=content, headers=headers or None)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and words in response.json()["error"], response.text
    digit = mnist.test_images[0]
    good = client.post("/v2/models/mnist/infer", json={"inputs": [json_input(data=digit.ravel().tolist())]})
    assert good.json()["outputs"][1]["data"] == [int(mnist.test_labels[0])]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/fashion/infer"),
        ("POST", "/v2/models/mnist/versions/99/infer"),
        ("POST", "/v2/models/mnist/versions/\u00b2/infer"),  # "²": a digit to str.isdigit, not to int()
        ("GET", "/v2/models/fashion"),
        ("GET", f"/v2/models/mnist/versions/{SERVED_VERSION + 1}"),
        ("GET", "/v2/models/fashion/ready"),
    ],
)
def test_unknown_model_or_version_is_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, json={"inputs": [json_input()]})
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_binary_response_layout(client: httpx.Client, mnist: Mnist) -> None:
    """Per the extension: JSON header, its length in the response header, then each output's bytes in order."""
    images = mnist.test_images[:3]
    content, headers = binary_request(
        {
            "inputs": [uint8_input(3)],
            "outputs": [{"name": "class", "parameters": {"binary_data": True}}, {"name": "probabilities"}],
        },
        images.astype(np.uint8).tobytes(),
    )
    response = client.post(f"/v2/models/mnist/versions/{SERVED_VERSION}/infer", content=content, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    class_output, probabilities_output = header["outputs"]
    assert class_output == {"name": "class", "datatype": "INT64", "shape": [3], "parameters": {"binary_data_size": 24}}
    assert len(response.content) == length + 24
    classes = np.frombuffer(response.content[length:], dtype="<i8")
    assert classes.tolist() == mnist.test_labels[:3].tolist()
    assert np.argmax(np.reshape(probabilities_output["data"], (3, 10)), axis=1).tolist() == classes.tolist()


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{version}/infer",
    ):
        assert path in paths, path
    infer = paths["/v2/models/{model_name}/infer"]["post"]
    assert "binary_data_size" in json.dumps(infer["requestBody"]) and {"200", "400", "404"} <= set(infer["responses"])
