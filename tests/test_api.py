"""The service over real HTTP with the committed model: accuracy on real uploads, every bad input, the docs."""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from app.body_limit import declared_length
from app.service import INLINE_MAX_FILES, decodes_inline
from tests.conftest import COMMITTED_VERSION, SERVED_VERSION
from tests.test_imaging import png_declaring
from tests.uploads import (
    ODD_FILES,
    ODD_PICTURES,
    encode,
    jpeg_of_many_scans,
    mnist_png,
    palette_png_without_palette,
    paper_jpeg,
    photo_jpeg,
    shrunk_canvas,
    thick_png,
    transparent_canvas_png,
)
from training.data import Mnist

SAMPLE = 1000  # MNIST test images sent over HTTP


def post_all(client: httpx.Client, uploads: list[bytes], workers: int = 8) -> list[dict]:
    def post(data: bytes) -> dict:
        response = client.post("/predict", files={"file": ("digit", data)})
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(post, uploads))


def accuracy(results: list[dict], labels: np.ndarray) -> float:
    return float(np.mean([r["predicted_class"] == label for r, label in zip(results, labels, strict=True)]))


def test_mnist_pngs_match_the_offline_evaluation(
    client: httpx.Client, mnist: Mnist, offline_probabilities: np.ndarray
) -> None:
    results = post_all(client, [mnist_png(d) for d in mnist.test_images[:SAMPLE]])
    labels = mnist.test_labels[:SAMPLE]
    assert accuracy(results, labels) >= 0.99
    served = np.array([r["probabilities"] for r in results])
    np.testing.assert_array_equal(served.argmax(axis=1), offline_probabilities[:SAMPLE].argmax(axis=1))
    np.testing.assert_allclose(served, offline_probabilities[:SAMPLE], atol=1e-5)
    for r in results[:20]:
        assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4
        assert r["confidence"] == max(r["probabilities"]) and r["model_version"] == SERVED_VERSION


@pytest.mark.parametrize(
    ("make", "count", "minimum"),
    [
        (paper_jpeg, SAMPLE, 0.97),
        (transparent_canvas_png, SAMPLE, 0.97),
        (photo_jpeg, 200, 0.95),
        (lambda digit, _rng: thick_png(digit), 300, 0.95),
        (shrunk_canvas, 300, 0.97),
    ],
    ids=["dark-ink-on-white-jpeg", "transparent-canvas", "photo-uneven-light", "thick-marker", "canvas-shrunk-to-28px"],
)
def test_realistic_uploads_are_recognised(
    client: httpx.Client, mnist: Mnist, make: Callable, count: int, minimum: float
) -> None:
    rng = np.random.default_rng(2026)
    uploads = [make(digit, rng) for digit in mnist.test_images[:count]]
    measured = accuracy(post_all(client, uploads), mnist.test_labels[:count])
    print(f"accuracy {measured:.2%} on {count} uploads")
    assert measured >= minimum


def printed_digit(digit: int, size: int) -> bytes:
    font = ImageFont.load_default(size=size)
    canvas = Image.new("RGB", (size * 2, size * 2), "white")
    ImageDraw.Draw(canvas).text((size // 2, size // 4), str(digit), fill="black", font=font)
    return encode(canvas, "PNG")


def test_printed_digits(client: httpx.Client) -> None:
    expected = [digit for _size in (60, 120) for digit in range(10)]
    results = post_all(client, [printed_digit(digit, size) for size in (60, 120) for digit in range(10)])
    answers = [r["predicted_class"] for r in results]
    hits = sum(answer == digit for answer, digit in zip(answers, expected, strict=True))
    print(f"printed digits: {hits}/20 recognised: {answers}")
    assert hits >= 18, answers


def test_batch_answers_in_upload_order(client: httpx.Client, mnist: Mnist) -> None:
    digits = mnist.test_images[:12]
    files = [("files", (f"{i}.png", mnist_png(d), "image/png")) for i, d in enumerate(digits)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == SERVED_VERSION
    assert [p["predicted_class"] for p in body["predictions"]] == list(mnist.test_labels[:12])


def test_a_batch_of_mnist_files_and_drawings_shrunk_to_28_pixels_is_answered_in_order(
    client: httpx.Client, mnist: Mnist
) -> None:
    """MNIST's files are read on the engine's thread, a small drawing needs the digit finder: one request holding
    both is read whole, in order."""
    rng = np.random.default_rng(5)
    digits, labels = mnist.test_images[:12], list(mnist.test_labels[:12])
    uploads = [mnist_png(d) if i % 2 else shrunk_canvas(d, rng) for i, d in enumerate(digits)]
    files = [("files", (f"{i}.png", data, "image/png")) for i, data in enumerate(uploads)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    assert [p["predicted_class"] for p in response.json()["predictions"]] == labels


def test_only_mnist_files_are_decoded_on_the_engines_thread(mnist: Mnist) -> None:
    """The engine's thread reads a few 28x28 grayscale PNGs (their headers say so) as their batch forms; any other
    file is read on a decoder thread, so that the digit finder never holds up a batch."""
    seven = Image.fromarray(mnist.test_images[0])
    assert decodes_inline([mnist_png(mnist.test_images[0])] * INLINE_MAX_FILES)
    assert not decodes_inline([mnist_png(mnist.test_images[0])] * (INLINE_MAX_FILES + 1))
    for other in (seven.convert("RGB"), seven.resize((32, 32)), seven.resize((20, 20))):
        assert not decodes_inline([encode(other, "PNG")])
    assert not decodes_inline([encode(seven, "JPEG")])


def test_include_input_returns_what_the_model_saw(client: httpx.Client, mnist: Mnist) -> None:
    response = client.post("/predict?include_input=true", files={"file": ("d.png", mnist_png(mnist.test_images[3]))})
    url = response.json()["input_image"]
    assert url.startswith("data:image/png;base64,")
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    np.testing.assert_array_equal(seen, mnist.test_images[3])
    assert (
        "input_image" not in client.post("/predict", files={"file": ("d.png", mnist_png(mnist.test_images[3]))}).json()
    )


@pytest.mark.parametrize(("query", "included"), [("include_input=1", True), ("include_input=YES", True),
                                                   ("include_input=off", False), ("other=1", False),
                                                   ("include_input=no&include_input=on", True)])  # fmt: skip
def test_include_input_takes_what_a_bool_query_parameter_takes(
    client: httpx.Client, mnist: Mnist, query: str, included: bool
) -> None:
    image = mnist_png(mnist.test_images[5])
    for path, field in (("/predict", "file"), ("/predict/batch", "files")):
        response = client.post(f"{path}?{query}", files={field: ("d.png", image)})
        assert response.status_code == 200 and ('"input_image"' in response.text) == included, response.text


def test_a_bad_include_input_is_422_naming_it(client: httpx.Client, mnist: Mnist) -> None:
    response = client.post("/predict?include_input=maybe", files={"file": ("d.png", mnist_png(mnist.test_images[5]))})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("query.include_input: Input should be a valid boolean"), body
    assert body["errors"][0]["loc"] == ["query", "include_input"] and body["errors"][0]["input"] == "maybe"


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ([(b"host", b"x"), (b"content-length", b"1234")], 1234),
        ([(b"content-length", b"1234"), (b"transfer-encoding", b"chunked")], None),
        ([(b"transfer-encoding", b"chunked")], None),
        ([(b"content-length", b"12ab")], None),
        ([(b"content-length", b"-5")], None),
        ([], None),
    ],
)
def test_only_a_plain_content_length_lets_a_body_pass_uncounted(
    headers: list[tuple[bytes, bytes]], length: int | None
) -> None:
    assert declared_length(headers) == length


def over_limit_chunks(total: int) -> Callable[[], object]:
    """A multipart body streamed with chunked transfer encoding (no Content-Length), `total` bytes of file."""
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n\x89PNG\r\n\x1a\n'

    def body():
        yield head
        for _ in range(total // 65536):
            yield b"\x00" * 65536
        yield b"\r\n--b--\r\n"

    return body


BAD_UPLOADS: list[tuple[str, Callable[[httpx.Client], httpx.Response], int, str]] = [
    ("empty", lambda c: c.post("/predict", files={"file": ("e.png", b"")}), 400, "empty"),
    (
        "truncated",
        lambda c: c.post("/predict", files={"file": ("t.png", encode(Image.new("L", (300, 300), 90), "PNG")[:200])}),
        400,
        "cannot decode",
    ),
    (
        "garbage-with-png-signature",
        lambda c: c.post("/predict", files={"file": ("g.png", b"\x89PNG\r\n\x1a\n" + b"\x13" * 500)}),
        400,
        "cannot decode",
    ),
    (
        "too-large",
        lambda c: c.post("/predict", files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (6 << 20))}),
        413,
        "over the limit",
    ),
    (
        "too-large-chunked",
        lambda c: c.post(
            "/predict",
            content=over_limit_chunks(7 << 20)(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        ),
        413,
        "over the limit",
    ),
    (
        "bomb",
        lambda c: c.post("/predict", files={"file": ("bomb.png", png_declaring(60_000, 60_000))}),
        413,
        "60000x60000",
    ),
    (
        "text",
        lambda c: c.post("/predict", files={"file": ("digit.png", b"seven", "image/png")}),
        415,
        "unsupported file type",
    ),
    (
        "svg",
        lambda c: c.post("/predict", files={"file": ("d.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")}),
        415,
        "unsupported",
    ),
    (
        "pdf",
        lambda c: c.post("/predict", files={"file": ("d.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj")}),
        415,
        "unsupported",
    ),
    ("missing-field", lambda c: c.post("/predict", data={"other": "x"}), 422, "missing form field 'file'"),
    (
        "misnamed-field",
        lambda c: c.post("/predict", files={"image": ("d.png", b"\x89PNG")}),
        422,
        "missing form field 'file'",
    ),
    ("json-body", lambda c: c.post("/predict", json={"file": "x"}), 422, "missing form field 'file'"),
    (
        "multipart-without-boundary",
        lambda c: c.post("/predict", content=b"--b\r\n", headers={"content-type": "multipart/form-data"}),
        400,
        "no boundary",
    ),
    (
        "multipart-cut-off",
        lambda c: c.post(
            "/predict",
            content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n\x89PNG\r\n',
            headers={"content-type": "multipart/form-data; boundary=b"},
        ),
        400,
        "malformed multipart body",
    ),
    (
        "multipart-garbled",
        lambda c: c.post(
            "/predict", content=b"--x\r\nnonsense\r\n", headers={"content-type": "multipart/form-data; boundary=b"}
        ),
        400,
        "malformed multipart body",
    ),
    (
        "batch-one-bad-file",
        lambda c: c.post(
            "/predict/batch",
            files=[
                ("files", ("a.png", encode(Image.fromarray(np.eye(9, dtype=np.uint8) * 255), "PNG"))),
                ("files", ("b.txt", b"text")),
            ],
        ),
        415,
        "file #2",
    ),
    (
        "palette-png-without-palette",
        lambda c: c.post("/predict", files={"file": ("p.png", palette_png_without_palette())}),
        400,
        "no palette",
    ),
    (
        "jpeg-of-too-many-scans",
        lambda c: c.post("/predict", files={"file": ("s.jpg", jpeg_of_many_scans(np.eye(28) * 255, 2_000))}),
        413,
        "2,000 scans",
    ),
    (
        "multipart-boundary-too-long",
        lambda c: c.post(
            "/predict",
            content=b"--" + b"b" * 300 + b"\r\n",
            headers={"content-type": "multipart/form-data; boundary=" + "b" * 300},
        ),
        400,
        "malformed multipart body",
    ),
    (
        "two-files",
        lambda c: c.post("/predict", files=[("file", ("a.png", b"\x89PNG")), ("file", ("b.png", b"\x89PNG"))]),
        413,
        "/predict/batch",
    ),
    (
        "compressed-form",
        lambda c: c.post(
            "/predict",
            content=gzip.compress(b"--b\r\n"),
            headers={"content-type": "multipart/form-data; boundary=b", "content-encoding": "gzip"},
        ),
        400,
        "Content-Encoding 'gzip'",
    ),
    (
        "path-traversal-filename",
        lambda c: c.post("/predict", files={"file": ("../../etc/passwd", b"root:x:0:0")}),
        415,
        "unsupported",
    ),
]


@pytest.mark.parametrize(("name", "send", "status", "words"), BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_input_gets_a_clear_4xx_and_service_keeps_serving(
    client: httpx.Client,
    mnist: Mnist,
    name: str,
    send: Callable[[httpx.Client], httpx.Response],
    status: int,
    words: str,
) -> None:
    response = send(client)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert words in response.json()["detail"]
    assert "object at 0x" not in response.json()["detail"]  # says what is wrong with the file, not Python's names
    good = client.post("/predict", files={"file": ("ok.png", mnist_png(mnist.test_images[0]))})
    assert good.status_code == 200 and good.json()["predicted_class"] == 7


@pytest.mark.parametrize("picture", ODD_PICTURES.values(), ids=ODD_PICTURES.keys())
def test_odd_but_valid_pictures_get_an_answer(client: httpx.Client, picture: Image.Image) -> None:
    """A picture one pixel high, all ink, or all stripes is still a picture: it is answered, never a 5xx."""
    response = client.post("/predict?include_input=true", files={"file": ("odd.png", encode(picture, "PNG"))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["probabilities"]) == 10 and isinstance(body["is_digit"], bool)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["input_image"].split(",", 1)[1]))))
    assert seen.shape == (28, 28)


@pytest.mark.parametrize("make", ODD_FILES.values(), ids=ODD_FILES.keys())
def test_files_odd_in_metadata_or_colour_mode_get_an_answer(client: httpx.Client, mnist: Mnist, make) -> None:
    response = client.post("/predict", files={"file": ("odd", make(mnist.test_images[0]))})
    assert response.status_code == 200, response.text
    assert response.json()["predicted_class"] == 7 and response.json()["is_digit"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/model", "/metrics", "/v1/models/mnist", "/v2/health/ready"])
def test_head_answers_as_get_without_a_body(client: httpx.Client, path: str) -> None:
    """`curl -I` and uptime monitors ask with HEAD: the GET's status and headers, no body."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


def test_head_on_a_post_route_is_405_naming_post(client: httpx.Client) -> None:
    response = client.head("/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_health_readiness_and_model_description(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": SERVED_VERSION}
    description = client.get("/model").json()
    claimed = json.loads((COMMITTED_VERSION / "metrics.json").read_text())["test_accuracy"]
    assert description["name"] == "mnist" and description["version"] == SERVED_VERSION
    assert description["test_accuracy"] == claimed
    assert description["input"]["shape"] == [None, 28, 28] and description["output"]["shape"] == [None, 10]


def test_openapi_documents_every_endpoint(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "MNIST digit recognition" and schema["info"]["version"]
    paths = schema["paths"]
    for path in ("/predict", "/predict/batch", "/healthz", "/readyz", "/model"):
        assert path in paths, path
    for path in ("/predict", "/predict/batch"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "400", "413", "415", "422", "503"} <= set(responses)
        flag, version, label = paths[path]["post"]["parameters"]
        assert flag["name"] == "include_input" and flag["in"] == "query" and flag["schema"]["type"] == "boolean"
        assert version["name"] == "version" and version["schema"]["type"] == "integer"
        assert label["name"] == "label" and label["schema"]["type"] == "string"
    assert "examples" in json.dumps(schema["components"]["schemas"]["Prediction"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
