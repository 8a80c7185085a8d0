"""The evaluation sets (python -m evalsets): made from MNIST's test digits, scikit-learn's bundled digits and
package fonts, as real image files, and scored through the service's own preprocessing with the committed model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsets.make import DIGIT_SETS, NEGATIVES, SET_NAMES, digit_items, make_sets, read_set
from evalsets.score import evaluate
from tests.conftest import COMMITTED_VERSION
from training.data import Mnist

COUNT = 10


@pytest.fixture(scope="session")
def sets(mnist: Mnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evalsets")
    assert make_sets(out, (mnist.test_images, mnist.test_labels), COUNT, seed=0)
    return out


def test_each_set_holds_labelled_image_files(sets: Path) -> None:
    for name in SET_NAMES:
        items = read_set(sets / name)
        assert len(items) == COUNT
        for path, label, _kind in items:
            with Image.open(io.BytesIO(path.read_bytes())) as image:
                assert image.width >= 8 and image.height >= 8
            assert (label is None) == (name == NEGATIVES)
            assert label is None or 0 <= label <= 9


def test_sets_are_made_once_and_are_a_function_of_the_seed(sets: Path, mnist: Mnist) -> None:
    assert not make_sets(sets, (mnist.test_images, mnist.test_labels), COUNT, seed=0)  # the cache is reused
    camera = DIGIT_SETS[[spec.name for spec in DIGIT_SETS].index("camera")]
    digits, labels = mnist.test_images, mnist.test_labels
    first = digit_items(camera, digits, labels, 2, seed=0)
    assert first == digit_items(camera, digits, labels, 2, seed=0)
    assert first != digit_items(camera, digits, labels, 2, seed=1)


def test_scoring_the_committed_model_reports_every_set(sets: Path, tmp_path: Path) -> None:
    results = evaluate(sets, COMMITTED_VERSION)
    json.dumps(results)  # what `evaluate --json` writes
    assert results["model"] == str(COMMITTED_VERSION) and set(results["sets"]) == set(SET_NAMES)
    for spec in DIGIT_SETS:
        figures = results["sets"][spec.name]
        assert figures["images"] == COUNT and 0 <= figures["accuracy"] <= 1
    # The kinds the service read well before the new preprocessing work: clean paper photos and canvas drawings.
    assert results["sets"]["paper"]["accuracy"] >= 0.8
    assert results["sets"]["canvas"]["accuracy"] >= 0.8
    negatives = results["sets"][NEGATIVES]
    assert negatives["images"] == COUNT
    assert sum(kind["images"] for kind in negatives["by_kind"].values()) == COUNT
    assert np.isclose(
        negatives["not_a_digit_recall"],
        sum(kind["not_a_digit_recall"] * kind["images"] for kind in negatives["by_kind"].values()) / COUNT,
    )


def test_the_unseen_kinds_set_is_written_and_scored_by_its_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m evalsets.unseen` writes the four kinds in turn as labelled image files, a function of the seed, and
    prints each model's "not a digit" share by kind."""
    from evalsets.unseen import KINDS, main, unseen_items

    assert main(["--out", str(tmp_path), "--count", "8", "--model", str(COMMITTED_VERSION)]) == 0
    items = read_set(tmp_path)
    assert [kind for *_, kind in items] == list(KINDS) * 2 and all(label is None for _, label, _ in items)
    for path, *_ in items:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            assert image.width >= 8 and image.height >= 8
    assert unseen_items(2, seed=0) == unseen_items(2, seed=0) != unseen_items(2, seed=1)
    printed = capsys.readouterr().out
    assert printed.startswith(f"{COMMITTED_VERSION}: not a digit ") and all(kind in printed for kind in KINDS)


def test_a_bilevel_scan_keeps_a_faint_pens_strokes(mnist: Mnist) -> None:
    """A faint blue pen's digit (its darkest strokes about 155 on paper of 230): each threshold drawn for a bilevel
    scan keeps most of the stroke as black, where one drawn under the ink's tone would leave a white page; a blank
    page keeps the drawn threshold and stays white."""
    from evalsets import scenes

    page = np.full((60, 60, 3), 230.0)
    ink = mnist.test_images[0].astype(np.float64) / 255
    scenes.put_ink(page, ink, 16, 16, np.array([40.0, 40.0, 200.0]), 0.55)
    brightness = page.mean(axis=2, keepdims=True)
    stroke = np.zeros(brightness.shape, bool)
    stroke[16:44, 16:44, 0] = ink > 0.5
    for seed in range(40):
        threshold = scenes.bilevel_threshold(brightness, np.random.default_rng(seed))
        assert (brightness[stroke] < threshold).mean() > 0.9
    blank = np.full((60, 60, 1), 230.0)
    for seed in range(40):
        assert 110 <= scenes.bilevel_threshold(blank, np.random.default_rng(seed)) <= 170
