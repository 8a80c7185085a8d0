"""Check a running service from outside, as CI does for the container and the compose stack.

Posts real MNIST test digits, as the PNG files MNIST users have, one per request to /predict and all at once to
/predict/batch, and checks the answers against the labels; also checks /readyz and /model.

Usage: .venv/bin/python .ci/probe.py http://127.0.0.1:8000 [--count N] [--min-accuracy A]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' image factory and the training IDX reader, as the test suite uses them

from tests.uploads import mnist_png  # noqa: E402
from training.data import load_from_dir  # noqa: E402

BATCH_FILES = 32  # under the service's default MAX_BATCH_FILES (64)


def fail(message: str) -> None:
    sys.exit(f"probe: FAIL: {message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=50, help="test digits to send (the first N of the test set)")
    parser.add_argument("--min-accuracy", type=float, default=0.96, help="share of them that must come back right")
    args = parser.parse_args()

    mnist = load_from_dir(Path(os.environ.get("MNIST_DATA_DIR", ROOT.parent / "shared" / "data" / "mnist")))
    digits, labels = mnist.test_images[: args.count], [int(label) for label in mnist.test_labels[: args.count]]
    files = [mnist_png(digit) for digit in digits]

    with httpx.Client(base_url=args.url, timeout=30) as client:
        ready = client.get("/readyz")
        if ready.status_code != 200 or ready.json().get("status") != "ready":
            fail(f"/readyz answered {ready.status_code} {ready.text[:200]}")
        model = client.get("/model").json()
        answers = []
        for index, data in enumerate(files):
            response = client.post("/predict", files={"file": (f"digit-{index}.png", data, "image/png")})
            if response.status_code != 200:
                fail(f"/predict answered {response.status_code} {response.text[:200]} for test digit #{index}")
            answers.append(response.json()["predicted_class"])
        in_batch = files[:BATCH_FILES]
        parts = [("files", (f"digit-{i}.png", data, "image/png")) for i, data in enumerate(in_batch)]
        batch = client.post("/predict/batch", files=parts)
        if batch.status_code != 200:
            fail(f"/predict/batch answered {batch.status_code} {batch.text[:200]}")
        batch_answers = [p["predicted_class"] for p in batch.json()["predictions"]]

    if batch_answers != answers[:BATCH_FILES]:
        fail("/predict/batch and one-by-one /predict disagree")
    right = sum(answer == label for answer, label in zip(answers, labels, strict=True))
    print(
        f"probe: model version {model.get('version')} (available {model.get('available_versions')}): "
        f"{right}/{len(labels)} MNIST test PNGs classified right one by one; "
        f"the first {len(batch_answers)} in one batch gave the same answers"
    )
    if right < args.min_accuracy * len(labels):
        fail(f"only {right}/{len(labels)} right, expected at least {args.min_accuracy:.0%}")


if __name__ == "__main__":
    main()
