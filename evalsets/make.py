"""Writing the evaluation sets: image files and their labels in one folder per set, reproducible from a seed.

Layout of OUT: `manifest.json` (seed, count, the generator's fingerprint, the sets) and one folder per set holding
the files (`0000.jpg`, `0001.png`, ...) and `labels.json`: a list of {"file", "label", "kind"}, where label is the
digit, or null for a set's non-digits, and kind says what the image shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalsets import inks, scenes

Scene = Callable[[np.ndarray | None, np.random.Generator], tuple[bytes, str]]
Item = tuple[bytes, str, int | None, str]  # file bytes, extension, label, kind


@dataclass(frozen=True)
class DigitSet:
    """Digits from MNIST's test set (or scikit-learn's other writers) through one scene."""

    name: str
    scene: Scene
    source: str  # "mnist" or "sklearn"
    description: str


DIGIT_SETS = (
    DigitSet("paper", scenes.paper, "mnist", "photos and scans of uniform paper (passes today)"),
    DigitSet("canvas", scenes.canvas, "mnist", "drawings on a transparent RGBA canvas (passes today)"),
    DigitSet("camera", scenes.camera, "mnist", "camera photos of a sheet on a table: uneven light, shadow, JPEG"),
    DigitSet("form", scenes.form, "mnist", "a digit in a printed form box, scanned"),
    DigitSet("writers", scenes.low_resolution_scan, "sklearn", "other writers' digits, scanned at low resolution"),
)
NEGATIVES = "negatives"
SET_NAMES = (*(s.name for s in DIGIT_SETS), NEGATIVES)
INK_SCENES: tuple[Scene, ...] = (scenes.paper, scenes.canvas, scenes.camera, scenes.form, scenes.low_resolution_scan)
# What the negatives set is made of, with each kind's share.
NEGATIVE_KINDS: dict[str, float] = {
    "font letter": 0.18,
    "handwritten letter": 0.12,
    "shape": 0.18,
    "scribble": 0.14,
    "noise": 0.1,
    "photo crop": 0.14,
    "blank": 0.14,
}


def fingerprint() -> str:
    """A hash of the generator's own code: a cached set is reused only if it was made by this code."""
    digest = hashlib.sha256()
    for module in ("inks.py", "scenes.py", "make.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]


def negative(kind: str, rng: np.random.Generator, ink_scenes: tuple[Scene, ...] = INK_SCENES) -> tuple[bytes, str]:
    """A non-digit of `kind`; letters, shapes, scribbles and blank pages are put into one of `ink_scenes`."""
    if kind == "noise":
        return scenes.noise_image(rng)
    if kind == "photo crop":
        return scenes.photo_image(rng)
    makers = {
        "font letter": inks.font_letter,
        "handwritten letter": inks.stroke_letter,
        "shape": inks.shape,
        "scribble": inks.scribble,
    }
    ink = makers[kind](rng) if kind in makers else None  # blank: a scene with nothing written on it
    scene = ink_scenes[int(rng.integers(len(ink_scenes)))]
    return scene(ink, rng)


def source_digits(spec: DigitSet, mnist_test: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The digits and labels a set draws from: MNIST's test set, or scikit-learn's other writers."""
    return mnist_test if spec.source == "mnist" else inks.sklearn_digits()


def chosen_digits(spec: DigitSet, available: int, count: int, seed: int) -> np.ndarray:
    """Which of the `available` source digits the set's `count` files show, in order."""
    return np.random.default_rng([seed, SET_NAMES.index(spec.name)]).choice(available, size=count, replace=False)


def digit_item(spec: DigitSet, digit: np.ndarray, label: int, seed: int, number: int) -> Item:
    """File `number` of the set: `digit` drawn into the set's scene."""
    rng = np.random.default_rng([seed, SET_NAMES.index(spec.name), number])
    ink = inks.mnist_digit(digit) if spec.source == "mnist" else digit
    data, ext = spec.scene(ink, rng)
    return data, ext, int(label), spec.source


def digit_items(spec: DigitSet, digits: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[Item]:
    chosen = chosen_digits(spec, len(digits), count, seed)
    return [digit_item(spec, digits[i], labels[i], seed, number) for number, i in enumerate(chosen)]


def negative_kinds(count: int, seed: int) -> list[str]:
    """The kind of each of the negatives set's `count` files, in order."""
    kinds = list(NEGATIVE_KINDS)
    shares = np.asarray(list(NEGATIVE_KINDS.values()))
    order = np.random.default_rng([seed, SET_NAMES.index(NEGATIVES)]).choice(
        len(kinds), size=count, p=shares / shares.sum()
    )
    return [kinds[k] for k in order]


def negative_item(kind: str, seed: int, number: int) -> Item:
    """File `number` of the negatives set: a non-digit of `kind`."""
    data, ext = negative(kind, np.random.default_rng([seed, SET_NAMES.index(NEGATIVES), number]))
    return data, ext, None, kind


def negative_items(count: int, seed: int) -> list[Item]:
    return [negative_item(kind, seed, number) for number, kind in enumerate(negative_kinds(count, seed))]


def write_set(folder: Path, items: list[Item]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for number, (data, ext, label, kind) in enumerate(items):
        name = f"{number:04d}.{ext}"
        (folder / name).write_bytes(data)
        labels.append({"file": name, "label": label, "kind": kind})
    (folder / "labels.json").write_text(json.dumps(labels, indent=0))


def make_sets(out: Path, mnist_test: tuple[np.ndarray, np.ndarray], count: int, seed: int) -> bool:
    """Write every set into `out` unless it already holds the same sets; True when it wrote them."""
    manifest = {"seed": seed, "count": count, "generator": fingerprint(), "sets": list(SET_NAMES)}
    manifest_file = out / "manifest.json"
    if manifest_file.is_file() and json.loads(manifest_file.read_text()) == manifest:
        return False
    manifest_file.unlink(missing_ok=True)  # a half-written folder never passes for a finished one
    for spec in DIGIT_SETS:
        digits, labels = source_digits(spec, mnist_test)
        write_set(out / spec.name, digit_items(spec, digits, labels, count, seed))
    write_set(out / NEGATIVES, negative_items(count, seed))
    manifest_file.write_text(json.dumps(manifest, indent=2))
    return True


def read_set(folder: Path) -> list[tuple[Path, int | None, str]]:
    """The files of one set with their labels (None for a non-digit) and kinds."""
    entries = json.loads((folder / "labels.json").read_text())
    return [(folder / e["file"], e["label"], e["kind"]) for e in entries]
