"""Training images that look like what the service's preprocessing makes of real uploads.

MNIST training digits are drawn into the evaluation generators' scenes (a page, a canvas, a camera photo of a
sheet, a form box, a low-resolution scan, a scan of a digit kept at a few pixels a side), half of the upright 1s
given a flag as many writers outside MNIST draw one, and non-digits (letters, shapes, scribbles, noise, photo crops,
empty pages) are made the same way; each file is then read back through the service's own preprocessing, so the
network learns from the 28x28 images it is shown in serving. The non-digits carry the label NONE_CLASS: the "none of
these" class the exported digit score comes from. The test images are never used here.
"""

from __future__ import annotations

import multiprocessing
import os
from functools import partial

import cv2
import numpy as np

from app.contract import IMAGE_SIDE, NUM_CLASSES
from app.imaging import preprocess
from evalsets import inks, make, scenes

NONE_CLASS = NUM_CLASSES  # the label of a non-digit: one past the digits
# Digits from other sources are often stored small (digitised forms keep 8-16 pixels a side, in few grey levels)
# and reach the service enlarged: blocky, thick-stroked, unlike MNIST's 20-pixel anti-aliased strokes. Such forms
# are often written with a broader pen than MNIST's, so the stroke is widened by up to 4 pixels first.
SMALL_ORIGINAL_SIDES = (8, 17)
SMALL_ORIGINAL_LEVELS = 16
SMALL_ORIGINAL_WIDENING = 5


def small_original(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink widened, cropped and shrunk so its longer side is 8-16 pixels, in 17 grey levels."""
    widening = int(rng.integers(SMALL_ORIGINAL_WIDENING))
    if widening:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (widening + 1, widening + 1)))
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    if rows.size == 0:  # nothing written: nothing to shrink
        return ink
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = int(rng.integers(*SMALL_ORIGINAL_SIDES)) / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return np.round(small * SMALL_ORIGINAL_LEVELS) / SMALL_ORIGINAL_LEVELS


# Many writers outside MNIST start a 1 with a flag, a short stroke from the top of the stem down to the left, and
# some give it a foot; MNIST's 1s are nearly all bare strokes, and a network that never saw a flag reads a flagged 1,
# enlarged from a few pixels, as a 4 or a 7. A slanted stem keeps its bare stroke: flagged, it is a 7.
FLAGGED_ONES = 0.5  # the share of the scene digits' 1s given a flag
FOOTED_FLAGS = 0.4  # the share of those also given a foot
FLAG_ANGLES = (30.0, 55.0)  # degrees from straight down, towards the left
FLAG_LENGTHS = (0.25, 0.45)  # shares of the stem's length
FOOT_HALF_WIDTHS = (0.15, 0.3)  # shares of the stem's length
STEEPEST_FLAGGED_SLANT = 20.0  # degrees from upright
STROKE_WIDTHS = (1.5, 4.0)  # pixels: the flag's and the foot's, near the stem's own
SUPERSAMPLING = 8  # the added strokes are drawn this many times larger, then shrunk: anti-aliased like MNIST's


def with_strokes(ink: np.ndarray, strokes: list[tuple[np.ndarray, np.ndarray]], width: float) -> np.ndarray:
    """`ink` with straight strokes (pairs of (x, y) pixel positions) added, `width` pixels wide, at its full ink."""
    canvas = np.zeros((ink.shape[0] * SUPERSAMPLING, ink.shape[1] * SUPERSAMPLING), np.float32)
    for start, end in strokes:
        ends = [tuple(int(v) for v in (point + 0.5) * SUPERSAMPLING) for point in (start, end)]
        cv2.line(canvas, ends[0], ends[1], 1.0, max(1, int(width * SUPERSAMPLING)), cv2.LINE_AA)
    added = cv2.resize(canvas, ink.shape[::-1], interpolation=cv2.INTER_AREA)
    return np.maximum(ink, added * ink.max())


def flagged_one(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1's ink with a flag from the top of its stem, at times a foot too; a slanted or empty stroke as it is."""
    rows, cols = np.nonzero(ink > 0.3)
    if rows.size < 5:
        return ink
    points = np.column_stack([cols, rows]).astype(np.float64)
    centred = points - points.mean(axis=0)
    stem = np.linalg.eigh(centred.T @ centred)[1][:, -1]  # the direction the ink spreads most along
    stem = stem if stem[1] > 0 else -stem  # pointing down
    if abs(stem[0]) > np.sin(np.radians(STEEPEST_FLAGGED_SLANT)):
        return ink
    along = centred @ stem
    top, bottom = points[np.argmin(along)], points[np.argmax(along)]
    length = float(np.ptp(along))
    width = float(np.clip(rows.size / max(length, 1.0), *STROKE_WIDTHS))  # the ink's area over its length
    angle = np.radians(rng.uniform(*FLAG_ANGLES))
    flag_end = top + np.array([-np.sin(angle), np.cos(angle)]) * length * rng.uniform(*FLAG_LENGTHS)
    strokes = [(top, flag_end)]
    if rng.random() < FOOTED_FLAGS:
        half = np.array([length * rng.uniform(*FOOT_HALF_WIDTHS), 0.0])
        strokes.append((bottom - half, bottom + half))
    return with_strokes(ink, strokes, width)


def small_original_scan(ink: np.ndarray | None, rng: np.random.Generator) -> tuple[bytes, str]:
    """A low-resolution scan of a digit stored at a few pixels a side."""
    return scenes.low_resolution_scan(None if ink is None else small_original(ink, rng), rng)


# The scenes a digit (or a letter, a shape, a scribble) is drawn into. Camera photos are drawn smaller than in the
# evaluation sets: the digit finder reduces every photo to a few hundred pixels first, and large photos render slowly.
DIGIT_SCENES: tuple[make.Scene, ...] = (
    scenes.paper,
    scenes.canvas,
    partial(scenes.camera, longer_side=(500, 1000)),
    scenes.form,
    scenes.low_resolution_scan,
    small_original_scan,
)
STREAM = 1000  # offsets the random streams from the evaluation sets' (which number theirs from 0)

Task = tuple[int, np.ndarray | None, int]  # (number, MNIST digit or None for a non-digit, label)


def upload(seed: int, task: Task) -> bytes:
    """One sample as an encoded image file, as it would be uploaded."""
    number, digit, label = task
    rng = np.random.default_rng([seed, STREAM, number])
    if digit is None:
        kinds = list(make.NEGATIVE_KINDS)
        shares = np.asarray(list(make.NEGATIVE_KINDS.values()))
        data, _ = make.negative(kinds[int(rng.choice(len(kinds), p=shares / shares.sum()))], rng, DIGIT_SCENES)
    else:
        scene = DIGIT_SCENES[int(rng.integers(len(DIGIT_SCENES)))]
        ink = inks.mnist_digit(digit)
        if label == 1 and rng.random() < FLAGGED_ONES:
            ink = flagged_one(ink, rng)
        data, _ = scene(ink, rng)
    return data


def render(seed: int, task: Task) -> np.ndarray:
    """One sample's 28x28 image as the service would see it (all background where no digit is found), but for the
    served frame's blur: trained on blurred frames, the network tells far fewer non-digits, while trained on
    unblurred ones it reads the blurred frames better."""
    return preprocess(upload(seed, task), softened=False)


def scene_samples(
    images: np.ndarray, labels: np.ndarray, digits: int, non_digits: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`digits` of `images` in scenes and `non_digits` non-digits, preprocessed: (uint8 [N, 28, 28], labels [N]),
    a function of `seed`. Rendered by one process per core (in fresh processes: the caller may hold TensorFlow)."""
    if digits == 0 and non_digits == 0:
        return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8), labels[:0]
    rng = np.random.default_rng([seed, STREAM])
    chosen = rng.choice(len(images), size=min(digits, len(images)), replace=False)
    tasks: list[Task] = [(n, images[i], int(labels[i])) for n, i in enumerate(chosen)]
    tasks += [(len(chosen) + n, None, NONE_CLASS) for n in range(non_digits)]
    with multiprocessing.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
        rendered = pool.map(partial(render, seed), tasks, chunksize=16)
    samples = np.clip(np.round(np.stack(rendered)), 0, 255).astype(np.uint8)
    return samples, np.concatenate([labels[chosen], np.full(non_digits, NONE_CLASS)]).astype(labels.dtype)
