"""Finding the digit in real uploads: generated files of every evaluation-set kind, read by the committed model through
the service's preprocessing, and the specific things the digit finder must ignore (shadows, sheet edges, box lines)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.contract import IMAGE_SIDE
from app.digit_finding import (
    MAX_MARKS,
    SHEET_BACKGROUND_SPAN,
    background,
    digit_of_a_crop,
    has_printed_lines,
    ink_is_dark,
    marks_span,
    sheet_background,
    sheet_mask,
    strongest_marks,
    working_copy,
)
from app.imaging import preprocess, saturation, to_grayscale
from app.ink_masks import stroke_width
from app.model import DigitModel
from app.printed_forms import caption, frames, in_text_row
from evalsets import scenes
from evalsets.inks import font_files, mnist_digit, sklearn_digits, text_mask
from evalsets.make import (
    DIGIT_SETS,
    chosen_digits,
    digit_item,
    make_sets,
    negative_item,
    negative_kinds,
    source_digits,
)
from evalsets.scenes import scanned
from evalsets.score import answer, digit_figures, load_model
from tests.conftest import COMMITTED_VERSION
from tests.uploads import encode, shrunk_canvas
from training.data import Mnist

PER_SET = 20
# A little under what the committed model reads on these files (docs/preprocessing.md has the figures on larger
# sets), so that a regression fails and a lucky draw does not matter.
FLOORS = {"paper": 0.9, "canvas": 0.9, "camera": 0.75, "form": 0.75, "writers": 0.75}


@pytest.fixture(scope="session")
def sets(tmp_path_factory: pytest.TempPathFactory, mnist: Mnist) -> Path:
    out = tmp_path_factory.mktemp("evalsets")
    make_sets(out, (mnist.test_images, mnist.test_labels), PER_SET, seed=17)
    return out


@pytest.fixture(scope="module")
def model() -> DigitModel:
    return load_model(COMMITTED_VERSION)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(cv2.GaussianBlur(a, (3, 3), 0).ravel(), cv2.GaussianBlur(b, (3, 3), 0).ravel())[0, 1])


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in DIGIT_SETS])
def test_each_kind_of_upload_is_read(sets: Path, model: DigitModel, name: str) -> None:
    figures = digit_figures(answer(sets / name, model))
    assert figures["images"] == PER_SET and figures["refused"] == 0
    assert figures["accuracy"] >= FLOORS[name], figures


def paper_photo(rng: np.random.Generator, shadow: bool) -> np.ndarray:
    """A phone photo of an empty sheet: light falling off to one side, sensor noise, maybe a hard-edged shadow."""
    height, width = 900, 1200
    xx = np.mgrid[:height, :width][1]
    page = 235.0 - 40.0 * xx / width
    if shadow:
        mask = np.zeros((height, width), np.float32)
        cv2.fillPoly(mask, [np.array([[0, 0], [700, 0], [300, 900], [0, 900]], np.int32)], 1.0)
        page *= 1 - 0.45 * cv2.GaussianBlur(mask, (0, 0), 3)
    return page + rng.normal(0, 4, page.shape)


def jpeg(gray: np.ndarray) -> bytes:
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB"), "JPEG", quality=85)


def png(gray: np.ndarray) -> bytes:
    return encode(Image.fromarray(gray.astype(np.uint8)), "PNG")


def test_a_cast_shadow_is_not_ink() -> None:
    """An empty sheet in uneven light with a hard-edged shadow has no digit on it (as a blank image has none)."""
    assert not preprocess(jpeg(paper_photo(np.random.default_rng(0), shadow=True))).any()


def write_digit(
    page: np.ndarray, digit: np.ndarray, top: int, left: int, side: int, thinned: int = 0, darkness: float = 0.85
) -> np.ndarray:
    """`digit` written `side` px tall into `page`; `thinned` narrows its strokes by a disc that wide (a fine pen), and
    full ink takes `darkness` of the paper's brightness away."""
    ink = cv2.resize(digit.astype(np.float32) / 255, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if thinned:
        ink = cv2.erode(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thinned, thinned)))
    written = page.copy()
    written[top : top + side, left : left + side] *= 1 - darkness * ink
    return written


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_digits_drawn_on_a_canvas_shrunk_whole_to_28_pixels_are_read(mnist: Mnist, model: DigitModel, fmt: str) -> None:
    """A home-made demo shrinks its whole canvas to 28x28: the digit fills the frame or sits to one side, which the
    network, fed such a frame as it is, misreads. A JPEG's noise on the flat black ground must not make the strokes,
    closed over, pass for a sheet of paper on a table."""
    rng = np.random.default_rng(0)
    digits, labels = mnist.test_images[:100], mnist.test_labels[:100]
    uploads = [(shrunk_canvas(digit, rng, fmt), int(label)) for digit, label in zip(digits, labels, strict=True)]
    assert sum(is_read(model, upload, label) for upload, label in uploads) >= 95


def drawn_near_the_edge(digit: np.ndarray, rng: np.random.Generator, fmt: str) -> bytes:
    """`digit` drawn small (10-20 % of a 500 px canvas's side) up against one of the canvas's edges, within 8 px:
    as a transparent drawing app's export ("RGBA"), white on black ("PNG") or dark on white ("JPEG")."""
    side = 500
    rows, cols = np.nonzero(digit)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32) / 255
    scale = rng.uniform(0.1, 0.2) * side / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR).clip(0, 1)
    height, width = ink.shape
    top, left = int(rng.integers(0, side - height)), int(rng.integers(0, side - width))
    gap, edge = int(rng.integers(0, 8)), int(rng.integers(4))
    top = gap if edge == 0 else side - height - gap if edge == 1 else top
    left = gap if edge == 2 else side - width - gap if edge == 3 else left
    canvas = np.zeros((side, side), np.float32)
    canvas[top : top + height, left : left + width] = ink
    if fmt == "RGBA":
        rgba = np.zeros((side, side, 4), np.uint8)
        rgba[..., 3] = (canvas * 255).astype(np.uint8)
        return encode(Image.fromarray(rgba, "RGBA"), "PNG")
    if fmt == "PNG":
        return png(canvas * 255)
    return jpeg(255 - canvas * 255)


@pytest.mark.parametrize("fmt", ["RGBA", "PNG", "JPEG"])
def test_a_digit_drawn_small_against_the_canvas_edge_is_read(mnist: Mnist, model: DigitModel, fmt: str) -> None:
    """A mark at a photo's edge is the table, a shadow's or the sheet's corner, and counts only when large; a picture
    that no camera or scanner took (no noise at all) has no such junk, and a digit drawn small near its edge is it."""
    rng = np.random.default_rng(4)
    digits, labels = mnist.test_images[:50], mnist.test_labels[:50]
    uploads = [(drawn_near_the_edge(digit, rng, fmt), int(label)) for digit, label in zip(digits, labels, strict=True)]
    assert sum(is_read(model, upload, label) for upload, label in uploads) >= 47


def test_a_digit_in_a_shadow_is_found(mnist: Mnist) -> None:
    """The digit sits across the shadow's edge: the shadow goes, the digit stays whole."""
    seven = mnist.test_images[0]
    page = write_digit(paper_photo(np.random.default_rng(1), shadow=True), seven, 250, 350, 300)
    assert similarity(preprocess(jpeg(page)), seven.astype(np.float32)) > 0.8


def evalset_source(mnist: Mnist, name: str, count: int, number: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """The digit (as its source holds it) and the label that file `number` of set `name` shows."""
    spec = next(spec for spec in DIGIT_SETS if spec.name == name)
    digits, labels = source_digits(spec, (mnist.test_images, mnist.test_labels))
    chosen = chosen_digits(spec, len(labels), count, seed)[number]
    return digits[chosen], int(labels[chosen])


def evalset_file(mnist: Mnist, name: str, count: int, number: int, seed: int = 0) -> tuple[bytes, int]:
    """File `number` of set `name` as `python -m evalsets make --count COUNT --seed SEED` writes it, and its label."""
    spec = next(spec for spec in DIGIT_SETS if spec.name == name)
    data, _, label, _ = digit_item(spec, *evalset_source(mnist, name, count, number, seed), seed, number)
    return data, label


def is_read(model: DigitModel, photo: bytes, label: int) -> bool:
    answer = model.answer(preprocess(photo)[None])
    return int(np.argmax(answer.probabilities)) == label and bool(answer.is_digit.all())


@pytest.mark.parametrize(
    "count, number", [(200, 8), (200, 69), (200, 79), (500, 47), (500, 56), (500, 74), (500, 96), (500, 110)]
)
def test_a_shadow_is_not_taken_for_the_digit_when_the_sheet_is_not_found(
    mnist: Mnist, model: DigitModel, count: int, number: int
) -> None:
    """Camera photos of the evaluation sets whose sheet is not found, so that a cast shadow stood out as the ink over
    the wide background: alone (a filled wedge thicker than any stroke) or joined to the digit (a patch far
    thicker than the digit's strokes). The digit is read."""
    assert is_read(model, *evalset_file(mnist, "camera", count, number))


@pytest.mark.parametrize("seed, number", [(0, 158), (23, 11), (23, 374)])
def test_ink_as_dark_as_the_strokes_is_not_taken_for_a_shadow(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Paper photos of the evaluation sets (--count 500) of a 6 whose loop the pen filled, a 3 with a heavy top and a
    6 with a heavy loop: far thicker than the pen, that part was taken for a shadow joined to the digit, and the
    narrow opening's second look left it out (the 6 read as a 1). It is as dark as the strokes kept, so it is the
    digit's own, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "paper", 500, number, seed))


@pytest.mark.parametrize("seed, number", [(0, 278), (11, 278), (23, 323)])
def test_a_non_digits_patch_does_not_give_way_to_fainter_marks(model: DigitModel, seed: int, number: int) -> None:
    """Non-digits of the evaluation sets (--count 500) whose first look found a patch, read as not a digit; the
    narrow opening's second look left the patch out for fainter marks beside it, which read as a digit. What it
    leaves out is as dark as what it keeps, so it is no shadow, and the first answer stands."""
    data, *_ = negative_item(negative_kinds(500, seed)[number], seed, number)
    assert not model.answer(preprocess(data)[None]).is_digit.any()


def test_a_markers_strokes_thicker_than_the_narrow_opening_stay_ink() -> None:
    """On a photographed sheet the background is an opening narrower than a marker's strokes: alone, it takes a
    thick 7 for background. Under the 7 the paper is found (the median of a wider window), while a cast shadow
    with a sharp corner, which that median would cut off, stays background."""
    bright_ink = np.zeros((300, 400), np.float32)
    seven = np.zeros_like(bright_ink)
    cv2.line(seven, (60, 110), (120, 110), 180.0, 24)
    cv2.line(seven, (120, 110), (85, 180), 180.0, 24)
    shadow = np.zeros_like(bright_ink)
    cv2.fillPoly(shadow, [np.array([[400, 40], [400, 260], [190, 150]], np.int32)], 60.0)
    bright_ink = np.maximum(seven, shadow)
    core = cv2.erode((seven > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    in_shadow = cv2.erode((shadow > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.median(background(bright_ink, SHEET_BACKGROUND_SPAN)[core]) > 150  # the opening alone: no ink there
    level = sheet_background(bright_ink, SHEET_BACKGROUND_SPAN)
    assert level[core].max() < 24
    assert (level[in_shadow] < 45).mean() < 0.005


@pytest.mark.parametrize("number", [239, 320, 430, 461])
def test_a_bold_digit_on_a_photographed_sheet_is_read(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos of the evaluation sets (--count 500, seed 0) of a digit drawn with strokes thicker than the
    sheet's narrow opening, some across a shadow's edge: they came out hollow or in pieces. The digit is read."""
    assert is_read(model, *evalset_file(mnist, "camera", 500, number))


@pytest.mark.parametrize("number", [27, 112, 188])
def test_a_shadows_corner_stays_background_on_a_sheet(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos of the evaluation sets (--count 500, seed 0) with a cast shadow's sharp corner on the sheet:
    the wide median, which finds the paper under thick strokes, would cut the corner off and leave it as a wedge of
    ink. The rest of the shadow brings it back, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "camera", 500, number))


@pytest.mark.parametrize("number", [51, 109, 262])
def test_a_sheet_on_a_cloth_with_pale_squares_is_found(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos of the evaluation sets (--count 500) of a sheet on a checked cloth or a photo whose pale parts
    touch the sheet: the sheet is found apart from them (so the table's marks count far less), and the digit is
    read."""
    photo, label = evalset_file(mnist, "camera", 500, number)
    image = Image.open(io.BytesIO(photo))
    small, chroma = working_copy(to_grayscale(image), saturation(image))
    sheet = sheet_mask(small, chroma)
    assert sheet is not None and 0.2 < sheet.mean() < 0.9
    assert is_read(model, photo, label)


@pytest.mark.parametrize("number", [20, 183, 217])
def test_a_coloured_table_in_a_shadow_is_not_taken_for_paper(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos of the evaluation sets (--count 500, seed 0) of a sheet on a coloured table that a shadow dims:
    the shaded table keeps its colour relative to its brightness, so it is not taken for part of the sheet, and the
    digit is read."""
    assert is_read(model, *evalset_file(mnist, "camera", 500, number))


def test_the_sheets_edge_beside_the_digit_is_left_out(mnist: Mnist, model: DigitModel) -> None:
    """A camera photo of the evaluation sets (--count 500, seed 0) where the sheet's edge stood out along two of its
    sides, an L whose centre lies on the sheet although its ink lies along the edge: kept with the digit, it made the
    digit a small part of the picture. A mark is off the sheet by where most of its ink is, and the 3 is read."""
    photo, label = evalset_file(mnist, "camera", 500, 148)
    assert label == 3
    assert is_read(model, photo, label)


@pytest.mark.parametrize("number", [197, 233, 404])
def test_a_speck_inside_a_digit_that_fills_the_scan_is_not_taken_for_it(
    mnist: Mnist, model: DigitModel, number: int
) -> None:
    """Other writers' scans of the evaluation sets (--count 500, seed 7): a blocky digit fills the picture to its
    edge, with a speck of noise between its strokes. A mark at the edge is the digit only when nothing else is
    there, and the speck was something else: it was enlarged into a round blob. A speck within the box of a large
    mark at the edge is that mark's, and the digit is read right (whether such a blocky digit is flagged is the
    model's call, not the speck rule's)."""
    photo, label = evalset_file(mnist, "writers", 500, number, seed=7)
    assert read_right(model, [photo], np.array([label])) == 1.0


def test_a_speck_left_by_the_narrow_opening_is_not_taken_for_the_digit(mnist: Mnist, model: DigitModel) -> None:
    """Another writer's scan of the evaluation sets (--count 500, seed 7), a thick 9 that comes out as a patch
    thicker than its pen: the narrow opening, meant for a shadow, leaves only a speck of it, which is too small to
    read, so the first answer stands and the 9 is read."""
    assert is_read(model, *evalset_file(mnist, "writers", 500, 167, seed=7))


@pytest.mark.parametrize("number", [20, 76, 173])
def test_a_forms_printed_label_is_not_taken_for_the_digit(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Form boxes of the evaluation sets (--count 500, seed 0) with a printed label above them ("Ref", "Qty",
    "Month") whose letters outweighed the digit: a row of letters alike in height is a word, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number))


@pytest.mark.parametrize("number", [18, 96])
def test_a_digit_in_a_closed_box_outweighs_a_label_outside_it(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Form boxes of the evaluation sets (--count 500, seed 0) in a row of cells, under a label ("Qty", "Day") whose
    letters join into fewer than three marks, so the label is not seen as a word: the cell the printed lines close
    around the digit counts as its box, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number))


@pytest.mark.parametrize("seed, number", [(7, 200), (11, 142), (11, 154)])
def test_the_label_above_a_comb_is_not_taken_for_the_digit(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Comb fields of the evaluation sets (--count 500) under a printed label ("Room", "Qty", "No.") whose letters
    join into fewer than three marks, or two letters alone, so it is not seen as a word, and which outweighed the
    digit. The label stands above the digit with clear paper between them, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


def test_a_bold_label_above_the_boxes_does_not_outweigh_a_small_faint_digit(mnist: Mnist, model: DigitModel) -> None:
    """A form box of the evaluation sets (--count 500, seed 23, file 331): a small 4 written faint in the last of
    five boxes, under the label "Age", which outweighed it and read as a 4 itself, flagged. The label stands over
    the boxes, clear of them, and counts less: the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, 331, 23))


@pytest.mark.parametrize("seed, number", [(7, 275), (7, 321), (11, 77)])
def test_a_boxs_side_the_first_transform_misses_is_printed(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Form boxes of the evaluation sets (--count 500) in a row of cells whose inner side, thicker than a pen's
    line, the Hough transform for sides did not find: it was kept and read as a 1. A side running from one printed
    line to the other is printed too, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


@pytest.mark.parametrize("seed, number", [(0, 177), (0, 370), (11, 0)])
def test_a_combs_ticks_beside_the_digit_are_left_out(mnist: Mnist, model: DigitModel, seed: int, number: int) -> None:
    """Comb fields of the evaluation sets (--count 500) whose short ticks, too short to be seen as printed sides,
    stood near enough to the digit to join it (a 4 read as a 9, a 0 as a 5). A thin or short mark on the printed
    lines of a scan is the form's, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


@pytest.mark.parametrize("seed, number", [(0, 108), (0, 267), (23, 479)])
def test_a_boxs_side_left_standing_does_not_outweigh_a_faint_digit(mnist: Mnist, seed: int, number: int) -> None:
    """Form boxes of the evaluation sets (--count 500) whose side, thick and dark, the printed-line finder left
    standing beside a faint, thin digit: it outweighed the digit and was read as a 1. A thin or short mark on a
    scan's printed lines is the form's, the digit only when nothing else is written, so what the preprocessing keeps
    is the MNIST digit the file was drawn from (the side alone correlated 0.1-0.2 with it, the digit kept 0.75-0.9).
    Compared with the source rather than read by the network: seed 0's file 267 is a 6 with a thin loop that the
    network itself reads as a 6 from MNIST's own file with a probability of only 0.7-0.9, so a faint scan of it is a
    close call between two trainings of the same recipe."""
    photo, _ = evalset_file(mnist, "form", 500, number, seed)
    digit, _ = evalset_source(mnist, "form", 500, number, seed)
    assert np.corrcoef(preprocess(photo).ravel(), digit.astype(np.float32).ravel())[0, 1] > 0.6


def test_a_words_first_and_last_letters_are_in_its_row() -> None:
    """Four letters of one height in a row ("Year"): each end letter has one neighbour, and is a letter of the word
    as the middle ones are. A digit in two pieces of unlike heights beside them is not."""
    year = [(10, 10, 30, 40), (42, 20, 26, 30), (70, 20, 26, 30), (100, 20, 22, 30)]
    digit = [(200, 10, 30, 25), (205, 36, 20, 40)]
    stats = np.array([(x, y, w, h, w * h) for x, y, w, h in year + digit])
    assert in_text_row(stats).tolist() == [True, True, True, True, False, False]
    dashes = np.array([(12 * i, 10, 8, 20, 160) for i in range(MAX_MARKS)])  # a dashed line as long as can be
    assert in_text_row(dashes).all()


@pytest.mark.parametrize("seed, number", [(7, 162), (7, 170), (7, 466)])
def test_the_end_marks_of_a_printed_row_are_not_taken_for_the_digit(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Form fields of the evaluation sets (--count 500) where the end marks of a printed row, with one neighbour
    each, were not seen as the row's: the "R" of a label "Room" joined the digit, the "th" of "Month" outweighed a
    1, a box's side left standing at the end of a row of them was read as a 1. A row is a chain of neighbours, and
    the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


def test_a_heading_is_told_from_a_digits_detached_top() -> None:
    """A scan without a form's lines: a heading ("Zip", two marks) at the top, clear paper under it taller than the
    digit below, is a caption; a digit's top arc above its body, nearer to it than the body is tall, is not, nor is
    a heading's row below the top third of the picture."""
    weight = np.array([900.0, 600.0, 400.0])
    heading = np.array([(70, 8, 50, 38, 1200), (125, 17, 28, 27, 600), (110, 122, 30, 44, 500)])
    assert caption(heading, weight, 270).tolist() == [True, True, False]
    arc_over_body = np.array([(100, 70, 100, 25, 450), (120, 138, 90, 78, 1100), (108, 165, 32, 37, 200)])
    assert not caption(arc_over_body, np.array([200.0, 900.0, 110.0]), 400).any()
    assert not caption(heading, weight, 120).any()


def test_a_heading_far_above_a_faint_digit_is_not_taken_for_it(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 test digits written small, faint and with a fine pen under a bold printed heading, with no lines
    around them: the heading, more ink than the digit, is a caption, and the digit is read."""
    rng = np.random.default_rng(3)
    read = 0
    for number in range(40):
        page = np.full((300, 260), 245.0)
        cv2.putText(page, ("Zip", "Qty", "No", "Age")[number % 4], (15, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.7, 20, 5)
        page = write_digit(page, mnist.test_images[number], 150, 90, 90, thinned=3, darkness=0.45)
        read += is_read(model, png(np.clip(page + rng.normal(0, 2, page.shape), 0, 255)), mnist.test_labels[number])
    assert read / 40 >= 0.9


@pytest.mark.parametrize("seed, number", [(11, 361), (11, 491), (23, 183)])
def test_a_heading_above_a_comb_too_faint_to_find_is_not_taken_for_the_digit(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Form fields of the evaluation sets (--count 500) under a bold label ("Qty", "Zip", "Year") whose comb is too
    faint or thin for its lines to be found: the label outweighed the digit. It is a caption, and the digit is
    read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


def test_a_faint_digits_detached_top_stays_with_it(mnist: Mnist) -> None:
    """A faint 2 on paper (the evaluation sets' paper photos, --count 500, seed 0, file 229) whose top arc is apart
    from its loop: the arc is at the top of the picture with clear paper under it, but nearer to the loop than the
    loop is tall, so it is no caption. The frame holds both: the arc, empty rows, then the loop. (Whether the network
    reads so broken a 2 as a 2 is the network's matter: versions differ on it.)"""
    photo, _ = evalset_file(mnist, "paper", 500, 229)
    rows = np.flatnonzero(preprocess(photo).max(axis=1) > 30)
    assert np.ptp(rows) + 1 >= 18 and np.diff(rows).max() >= 4


def test_a_box_printed_thick_around_a_mark_is_surely_a_frame() -> None:
    """A box covering 45 % of its bounding box (lines a ninth of its side thick) holding a mark is surely a frame;
    a filled blob as large, around nothing, is not."""
    box = (0, 0, 90, 90, int(0.45 * 90 * 90))
    held = (25, 20, 40, 50, 900)
    blob = (200, 0, 90, 90, int(0.45 * 90 * 90))
    surely, _, _ = frames(np.array([box, held, blob]), (300, 400))
    assert surely.tolist() == [True, False, False]


def test_a_small_scans_thick_box_is_taken_out_around_the_digit(mnist: Mnist, model: DigitModel) -> None:
    """A form box of the evaluation sets (--count 500, seed 11, file 91), scanned at 100 px and enlarged: its lines
    are a tenth of its side thick, it stayed around the 4, and the two read as a 0. The box is a frame, and the
    digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, 91, 11))


def comb_form(label: bool) -> np.ndarray:
    """A scanned form's empty comb of four cells (a base line and five ticks), under a printed label or not."""
    comb = np.full((260, 700), 245.0)
    for left in (50, 200, 350, 500, 650):
        comb[170:222, left : left + 4] = 30
    comb[218:222, 50:654] = 30
    if label:
        cv2.putText(comb, "No.", (50, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 30, 3)
    return comb


def dashed_boxes() -> np.ndarray:
    """A bilevel scan's row of five empty boxes printed with thin lines, broken into dashes 20 px long, 12 px apart."""
    row = np.full((240, 760), 255.0)
    for left in range(40, 760, 140):
        for top in range(60, 200, 32):
            row[top : top + 20, left : left + 2] = 0
    for top in (60, 200):
        for left in range(40, 722, 32):
            row[top : top + 2, left : left + 20] = 0
    return row


def test_digits_in_boxes_broken_into_dashes_are_read(mnist: Mnist, model: DigitModel) -> None:
    """The first 30 test digits written in the middle one of a row of boxes whose lines a faint or bilevel scan broke
    into dashes: no dash is long enough to be a printed line, but the dashes in a row make one."""
    digits, labels = mnist.test_images[:30], mnist.test_labels[:30]
    pages = [write_digit(dashed_boxes(), digit, 70, 325, 120, darkness=1.0) for digit in digits]
    read = sum(is_read(model, png(page), int(label)) for page, label in zip(pages, labels, strict=True))
    assert read / len(digits) >= 0.9


@pytest.mark.parametrize("seed, number", [(0, 474), (23, 163), (31, 152), (31, 240)])
def test_a_form_whose_lines_are_broken_is_read(mnist: Mnist, model: DigitModel, seed: int, number: int) -> None:
    """Form boxes of the evaluation sets (--count 500) whose scan breaks the thin printed lines into dashes (a faint
    pink box, three bilevel scans). The digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


def test_an_empty_comb_has_no_digit() -> None:
    """Nothing written: the ticks are the form's, and none is taken for a 1."""
    assert not preprocess(png(comb_form(label=False))).any()


@pytest.mark.parametrize("seed, number", [(0, 149), (23, 305), (7, 230), (11, 482)])
def test_a_scan_of_a_blank_form_is_not_a_digit(model: DigitModel, seed: int, number: int) -> None:
    """Blank pages of the evaluation sets' negatives (--count 500): scans of an empty comb, one of whose ticks read
    as a 1 (in (7, 230) and (11, 482) the part of the tick above what was taken for the printed line, under three
    times as tall as it is wide). Nothing is found."""
    assert nothing_is_found(model, blank_page(seed, number))


@pytest.mark.parametrize("seed, number", [(7, 394), (43, 274)])
def test_the_label_of_a_blank_form_is_not_a_digit(model: DigitModel, seed: int, number: int) -> None:
    """Blank pages of the evaluation sets' negatives (--count 500): scans of an empty comb and of two empty boxes
    under the printed label "No.", which read as a 6 and a 0. Nothing is found."""
    assert nothing_is_found(model, blank_page(seed, number))


def test_digits_written_high_in_a_combs_cells_are_read(mnist: Mnist, model: DigitModel) -> None:
    """The first 30 test digits written in a labelled comb's cell, ending above its ticks: what stands clear of the
    printed lines by less than its own height is written in the field, not printed above it."""
    digits, labels = mnist.test_images[:30], mnist.test_labels[:30]
    pages = [write_digit(comb_form(label=True), digit, 20, 200, 150) for digit in digits]
    read = sum(is_read(model, png(page), int(label)) for page, label in zip(pages, labels, strict=True))
    assert read / len(digits) >= 0.9


def test_a_labelled_empty_comb_has_no_digit() -> None:
    """Nothing written under the label: it is the form's, far above its ticks, and not taken for a digit."""
    assert not preprocess(png(comb_form(label=True))).any()


def test_ones_standing_on_a_labelled_combs_base_are_read(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 test 1s standing on a comb's base, under a printed label: each is thin and touches the printed
    lines, as a comb's tick does, but it is all that was written (the label is printed), so it is the digit."""
    ones = mnist.test_images[mnist.test_labels == 1][:40]
    read = 0
    for one in ones:
        lowest = np.flatnonzero(one.max(axis=1))[-1] / IMAGE_SIDE  # the 1 stands on the base with its lowest ink
        page = write_digit(comb_form(label=True), one, int(218 - lowest * 150), 200, 150)
        read += is_read(model, png(page), 1)
    assert read / len(ones) >= 0.95


@pytest.mark.parametrize("index", [1718, 2820, 4238])
def test_a_seven_with_a_bar_across_its_leg_is_not_a_frame(mnist: Mnist, model: DigitModel, index: int) -> None:
    """Test 7s written with a bar across the leg, on a page: three long straight strokes, as a printed box has, but
    the bar and the leg run through the middle of the digit's bounding box, where a frame has no side."""
    page = write_digit(np.full((400, 400), 240.0), mnist.test_images[index], 50, 50, 300)
    assert is_read(model, png(page), 7)


def drawing(strokes: list[tuple[tuple[int, int], tuple[int, int]]], pen: int) -> bytes:
    """A drawing app's export: straight strokes `pen` px wide on a transparent 280 px canvas."""
    alpha = np.zeros((280, 280), np.uint8)
    for start, end in strokes:
        cv2.line(alpha, start, end, 255, pen, cv2.LINE_AA)
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = alpha
    return encode(Image.fromarray(canvas, "RGBA"), "PNG")


@pytest.mark.parametrize(
    "label, strokes",
    [
        (1, [((140, 40), (140, 240)), ((100, 240), (180, 240))]),
        (4, [((170, 40), (170, 240)), ((60, 170), (210, 170)), ((60, 170), (170, 40))]),
        (4, [((170, 40), (170, 240)), ((60, 160), (210, 160)), ((80, 40), (60, 160))]),
    ],
)
def test_straight_strokes_in_a_drawing_are_the_digits(
    model: DigitModel, label: int, strokes: list[tuple[tuple[int, int], tuple[int, int]]]
) -> None:
    """Digits drawn with straight, thin strokes on a transparent canvas: a 1 on a base, a closed 4 and an open 4.
    On paper such strokes can be a form's printed lines and boxes; a drawing app's export has none."""
    assert is_read(model, drawing(strokes, 5), label)


def test_a_drawn_seven_with_a_bar_across_its_leg_is_read(mnist: Mnist, model: DigitModel) -> None:
    """A drawing of the evaluation sets (--count 500, seed 23): a 7 with a bar across its leg, of which only the
    top bar was left when its strokes were taken for a frame."""
    assert is_read(model, *evalset_file(mnist, "canvas", 500, 234, seed=23))


@pytest.mark.parametrize("number", [175, 185, 222])
def test_a_cell_whose_lines_stop_short_still_holds_the_digit(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Form boxes of the evaluation sets (--count 500, seed 11) under a bold or large label ("Month", "Day", "No."):
    the digit in a closed cell is the answer, even where the scan breaks a box's corner a few pixels open."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed=11))


@pytest.mark.parametrize("number", [182, 444])
def test_the_form_rules_leave_photos_of_a_sheet_alone(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos of the evaluation sets (--count 500, seed 0): a checked cloth whose squares close a cell
    around a mark off the sheet, and a sheet whose edges make printed lines below the digit. Neither is a form, and
    the digit is read."""
    assert is_read(model, *evalset_file(mnist, "camera", 500, number))


@pytest.mark.parametrize("seed, number", [(0, 272), (11, 116)])
def test_a_small_forms_field_is_not_looked_at_as_a_close_crop(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Small scans of a form's field, whose printed lines span the picture as a close crop's strokes do: inside a
    margin, what was left of the lines passed for the digit's strokes and it was misread. It has printed lines, so
    it is looked at as it is."""
    scan, label = evalset_file(mnist, "form", 500, number, seed)
    assert has_printed_lines(to_grayscale(Image.open(io.BytesIO(scan))))
    assert is_read(model, scan, label)


@pytest.mark.parametrize("seed, number", [(0, 133), (11, 22), (11, 360)])
def test_a_lone_cells_comb_holding_the_digit_is_removed(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Form fields of the evaluation sets (--count 500) with one cell drawn as a comb (a base line and ticks, open
    at the top) around the digit, too small a part of the picture to pass for a row of cells: the comb holds the
    digit from below, so it goes with two straight sides seen, and the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number, seed))


@pytest.mark.parametrize("number", [13, 113, 401])
def test_a_lone_box_printed_thick_and_a_lone_cells_comb_are_removed(
    mnist: Mnist, model: DigitModel, number: int
) -> None:
    """Form fields of the evaluation sets (--count 500, seed 0) with one cell: a box printed thick (its lines cover a
    third of its bounding box) and two combs (a base line with a tick at each end, under the digit). The frame goes,
    the digit is read."""
    assert is_read(model, *evalset_file(mnist, "form", 500, number))


def boxes_in_dim_bands(rng: np.random.Generator, digit: np.ndarray | None) -> bytes:
    """A small photo of a form's row of three boxes on grey paper, the light falling off into dim bands along its top
    and bottom edges, with `digit` written in a marker's bold strokes in the middle box, standing on its bottom line
    (or nothing)."""
    height, width = 150, 270
    yy, xx = np.mgrid[:height, :width]
    page = 178.0 - 38.0 * np.exp(-yy / 25.0) - 30.0 * np.exp((yy - height) / 25.0) - 10.0 * (1 - xx / width)
    for left in (14, 105, 196):
        page[30:127, left : left + 2] = 60.0
    page[30:32, 14:] = page[125:127, 14:] = 60.0
    if digit is not None:
        bold = cv2.dilate(digit, np.ones((2, 2), np.uint8))
        page = write_digit(page, bold, 58, 112, 80)
    return jpeg(page + rng.normal(0, 2.5, page.shape))


def test_digits_on_a_boxs_line_in_dim_bands_of_light_are_read(mnist: Mnist, model: DigitModel) -> None:
    """Three test digits of each class in a photographed form whose edges fall into dim bands. The wide background
    opening takes the bands for ink, which swallows the box's top line, and a digit standing on the bottom line then
    passes for a blank form's tick: nothing is found. The narrow opening leaves the bands as background."""
    chosen = [int(k) for label in range(10) for k in np.flatnonzero(mnist.test_labels == label)[:3]]
    photos = [boxes_in_dim_bands(np.random.default_rng(k), mnist.test_images[k]) for k in chosen]
    read = sum(is_read(model, photo, int(mnist.test_labels[k])) for k, photo in zip(chosen, photos, strict=True))
    assert read >= 20, read


def test_an_empty_form_in_dim_bands_of_light_has_no_digit(model: DigitModel) -> None:
    """The same photos with nothing written: looked at again with the narrow opening, the boxes' lines are printed
    and nothing else is there."""
    for seed in range(10):
        frame = preprocess(boxes_in_dim_bands(np.random.default_rng(seed), None))
        assert not model.answer(frame[None]).is_digit.any(), seed


def photographed_sheet(
    desk: np.ndarray, corners: np.ndarray, brightness: float, digit: np.ndarray | None = None, place: tuple = ()
) -> np.ndarray:
    """A sheet of `brightness` with these corners lying on `desk`, with `digit` written at `place` (top, left,
    side), or nothing."""
    sheet = np.zeros(desk.shape, np.float32)
    cv2.fillPoly(sheet, [corners.astype(np.int32)], 1.0)
    photo = desk * (1 - sheet) + brightness * sheet
    return photo if digit is None else write_digit(photo, digit, *place)


def sheet_on_a_table(digit: np.ndarray | None) -> np.ndarray:
    """A sheet lying on a dark, grained table, photographed from above, with `digit` written on it (or nothing)."""
    yy, xx = np.mgrid[:1000, :1300]
    wood = 70 + 25 * np.sin(yy / 9.0 + 3 * np.sin(xx / 80.0))
    corners = np.array([[250, 120], [1100, 170], [1060, 900], [200, 860]])
    photo = photographed_sheet(wood, corners, 225, digit, (350, 520, 280))
    return photo + np.random.default_rng(2).normal(0, 3, photo.shape)


def test_the_table_around_a_sheet_is_not_ink(mnist: Mnist) -> None:
    """Only the digit on the sheet is read."""
    two = mnist.test_images[1]
    assert similarity(preprocess(jpeg(sheet_on_a_table(two))), two.astype(np.float32)) > 0.8


def test_an_empty_sheet_on_a_table_has_no_digit() -> None:
    """With nothing on the sheet, the table's grain beside its edge is not taken for the digit."""
    assert not preprocess(jpeg(sheet_on_a_table(None))).any()


def sheet_on_a_plain_table(digit: np.ndarray | None) -> np.ndarray:
    """A white sheet, tilted, on a plain dark desk, with `digit` written on it (or nothing)."""
    corners = cv2.boxPoints(((600, 450), (700, 520), 12))
    photo = photographed_sheet(np.full((900, 1200), 70.0), corners, 225, digit, (330, 500, 240))
    return photo + np.random.default_rng(3).normal(0, 3, photo.shape)


def test_an_empty_sheet_on_a_plain_desk_has_no_digit(mnist: Mnist, model: DigitModel) -> None:
    """Nothing on the sheet: the desk around it is not taken for a large dark digit (it read as a 0), and a digit
    written on the same sheet is read."""
    assert not preprocess(jpeg(sheet_on_a_plain_table(None))).any()
    assert is_read(model, jpeg(sheet_on_a_plain_table(mnist.test_images[0])), int(mnist.test_labels[0]))


def desk_photo(rng: np.random.Generator, digit: np.ndarray | None) -> bytes:
    """A phone photo of a sheet on a desk, drawn apart from the evaluation sets' generator: the sheet tilted on wood
    grain, a checked cloth, a plain desk or blurred noise, light falling off to one side, half of them under a wide
    shadow, with `digit` written on the sheet (or nothing)."""
    height, width = (int(n) for n in rng.integers(600, 1600, 2))
    yy, xx = np.mgrid[:height, :width]
    desk = [
        90 + 30 * np.sin(yy / rng.uniform(5, 15) + 3 * np.sin(xx / rng.uniform(40, 120))),
        np.where((yy // 30 + xx // 30) % 2 == 0, 60.0, 140.0),
        np.full((height, width), rng.uniform(30, 120)),
        cv2.GaussianBlur(rng.uniform(40, 160, (height, width)).astype(np.float32), (0, 0), rng.uniform(1, 6)),
    ][int(rng.integers(4))]
    centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
    size = (width * rng.uniform(0.45, 0.75), height * rng.uniform(0.45, 0.75))
    photo = photographed_sheet(desk, cv2.boxPoints((centre, size, rng.uniform(-25, 25))), rng.uniform(200, 245))
    if digit is not None:
        side = int(min(size) * rng.uniform(0.15, 0.4))
        top = int(centre[1] - side / 2 + rng.uniform(-0.2, 0.2) * size[1])
        left = int(centre[0] - side / 2 + rng.uniform(-0.2, 0.2) * size[0])
        photo = write_digit(photo, digit, top, left, side, darkness=rng.uniform(0.6, 0.9))
    photo *= 1 - rng.uniform(0, 0.25) * (xx / width if rng.random() < 0.5 else yy / height)
    if rng.random() < 0.5:
        left, right = sorted(rng.uniform(0, width, 2))
        top_width, bottom_width = width * rng.uniform(0.3, 0.8, 2)
        corners = np.array([[left, 0], [left + top_width, 0], [right + bottom_width, height], [right, height]])
        shade = np.zeros((height, width), np.float32)
        cv2.fillPoly(shade, [corners.astype(np.int32)], 1.0)
        photo *= 1 - rng.uniform(0.2, 0.5) * cv2.GaussianBlur(shade, (0, 0), rng.uniform(2, 20))
    return jpeg(photo + rng.normal(0, rng.uniform(1, 5), photo.shape))


@pytest.mark.slow
def test_empty_sheets_on_desks_are_not_digits_and_written_ones_are_read(mnist: Mnist, model: DigitModel) -> None:
    """Of 60 empty sheets on desks, the sheet's edge, the desk beside it or around it, is rarely taken for a digit;
    of 60 test digits written on such sheets, nearly all are read."""
    blanks = np.stack([preprocess(desk_photo(np.random.default_rng([5, k]), None)) for k in range(60)])
    called_digits = int(model.answer(blanks).is_digit.sum())
    written = [desk_photo(np.random.default_rng([6, k]), mnist.test_images[k]) for k in range(60)]
    read = sum(is_read(model, photo, int(label)) for photo, label in zip(written, mnist.test_labels, strict=False))
    assert called_digits <= 4, called_digits
    assert read >= 54, read


DESK_COLOURS = [(120, 80, 45), (150, 30, 40), (40, 60, 130), (110, 110, 110), (205, 200, 190)]
NOTE_COLOURS = [(250, 230, 110), (250, 165, 195)]


def sticky_note_photo(rng: np.random.Generator, digit: np.ndarray | None) -> bytes:
    """A phone photo of a yellow or pink sticky note on a grained desk (brown, red, blue, grey or beige), turned a
    little, light falling off to one side, with `digit` written on it in dark ink (or nothing)."""
    height, width = (int(n) for n in rng.integers(500, 1300, 2))
    yy, xx = np.mgrid[:height, :width]
    grain = np.sin(yy / rng.uniform(5, 15) + 3 * np.sin(xx / rng.uniform(40, 120)))
    desk = np.asarray(DESK_COLOURS[int(rng.integers(len(DESK_COLOURS)))], np.float32) * (1 + 0.12 * grain)[..., None]
    side = min(height, width) * rng.uniform(0.4, 0.7)
    centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
    note = np.zeros((height, width), np.float32)
    cv2.fillPoly(note, [cv2.boxPoints((centre, (side, side), rng.uniform(-20, 20))).astype(np.int32)], 1.0)
    colour = np.asarray(NOTE_COLOURS[int(rng.integers(len(NOTE_COLOURS)))], np.float32)
    photo = desk * (1 - note[..., None]) + colour * note[..., None]
    if digit is not None:
        size = int(side * rng.uniform(0.35, 0.65))
        top, left = int(centre[1] - size / 2), int(centre[0] - size / 2)
        ink = cv2.resize(digit.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        photo[top : top + size, left : left + size] *= (1 - rng.uniform(0.6, 0.9) * ink)[..., None]
    photo *= (1 - rng.uniform(0, 0.25) * xx / width)[..., None]
    return jpeg(photo + rng.normal(0, rng.uniform(1, 5), photo.shape))


def test_digits_on_sticky_notes_are_read(mnist: Mnist, model: DigitModel) -> None:
    """A sticky note is paper with a colour of its own, which the colour rule (paper has none) takes for the table:
    the sheet is then found by brightness. Of 40 test digits on notes most are read, and of 40 empty notes at most
    one is answered as a digit."""
    written = [sticky_note_photo(np.random.default_rng([48, k]), mnist.test_images[2000 + k]) for k in range(40)]
    read = sum(is_read(model, photo, int(mnist.test_labels[2000 + k])) for k, photo in enumerate(written))
    blanks = np.stack([preprocess(sticky_note_photo(np.random.default_rng([49, k]), None)) for k in range(40)])
    assert read >= 28, read
    assert int(model.answer(blanks).is_digit.sum()) <= 1


@pytest.mark.parametrize("number", [10, 68, 98, 110, 121])
def test_a_digit_on_a_sheet_half_in_shadow_is_read(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Desk photos where a shadow covers most of the sheet, so that its lit part alone is too small to be a sheet:
    the shaded part is paper too, and the digit on it is read (not the lit paper taken for light ink)."""
    photo = desk_photo(np.random.default_rng([6, number]), mnist.test_images[number])
    assert is_read(model, photo, int(mnist.test_labels[number]))


def blank_page(seed: int, number: int) -> bytes:
    """Negative `number` of the evaluation sets (--count 500, `seed`), a blank page in a scene."""
    kind = negative_kinds(500, seed)[number]
    assert kind == "blank"
    data, *_ = negative_item(kind, seed, number)
    return data


def nothing_is_found(model: DigitModel, data: bytes) -> bool:
    """No ink is found, so the model sees an empty frame and the answer is not a digit."""
    frame = preprocess(data)
    return not frame.any() and not model.answer(frame[None]).is_digit.any()


@pytest.mark.parametrize("seed, number", [(0, 279), (7, 81), (7, 150), (7, 321), (11, 70), (23, 354), (23, 476)])
def test_a_photo_of_a_blank_sheet_is_not_a_digit(model: DigitModel, seed: int, number: int) -> None:
    """Blank pages of the evaluation sets' negatives (--count 500): camera photos of an empty sheet, where a pattern's
    squares beside the sheet's edge, a strip of the table between the sheet and the picture's edge, or the edge
    itself, stood out as the ink, and read as a 1 or a 7; or (7, 321) the table all around it, as a 0. Nothing is
    found."""
    assert nothing_is_found(model, blank_page(seed, number))


@pytest.mark.parametrize("seed, number", [(0, 115), (11, 7), (11, 286), (23, 277)])
def test_a_blank_sheet_on_a_patterned_table_is_not_a_digit(model: DigitModel, seed: int, number: int) -> None:
    """Blank pages of the evaluation sets' negatives (--count 500): camera photos of an empty sheet on a checked
    cloth or before a photo, where a cluster of the pattern's pieces off the sheet stood out as the ink, away from
    the sheet's edge, and read as a digit. Nothing is found."""
    assert nothing_is_found(model, blank_page(seed, number))


@pytest.mark.parametrize("seed, number", [(0, 61), (7, 30), (11, 8), (23, 12)])
def test_a_digit_alone_in_a_shadow_off_the_found_sheet_is_read(
    mnist: Mnist, model: DigitModel, seed: int, number: int
) -> None:
    """Camera photos of the evaluation sets (--count 500) whose digit is in a shadow that the sheet's found outline
    leaves out: the digit is off the sheet but stands alone on plain paper, not among a pattern's pieces, and is
    read."""
    assert is_read(model, *evalset_file(mnist, "camera", 500, number, seed))


def test_form_box_lines_are_removed(mnist: Mnist) -> None:
    """A digit in the middle box of three printed boxes reads as the digit alone; the empty boxes are no ink."""
    four = mnist.test_images[4]
    boxes = np.full((260, 700), 250.0)
    for left in (50, 250, 450, 650):
        boxes[40:222, left : left + 3] = 20
    boxes[40:43, 50:653] = 20
    boxes[219:222, 50:653] = 20
    assert not preprocess(jpeg(boxes)).any()
    alone = preprocess(jpeg(write_digit(np.full((260, 700), 250.0), four, 60, 280, 140)))
    boxed = preprocess(jpeg(write_digit(boxes, four, 60, 280, 140)))
    assert similarity(boxed, alone) > 0.9


def test_box_and_comb_lines_as_thick_as_the_pen_are_removed(mnist: Mnist) -> None:
    """A row of boxes and a comb printed as thick as the pen's strokes, the digit standing on the line: only the
    digit is read, with its upright stroke whole."""
    four = mnist.test_images[4]
    alone = preprocess(jpeg(write_digit(np.full((260, 700), 250.0), four, 60, 280, 150)))
    boxes = np.full((260, 700), 250.0)
    for left in (50, 250, 450, 650):
        boxes[40:222, left : left + 9] = 20
    boxes[40:49, 50:659] = 20
    boxes[213:222, 50:659] = 20
    comb = np.full((260, 700), 250.0)
    for left in (50, 250, 450, 650):
        comb[150:222, left : left + 9] = 20
    comb[213:222, 50:659] = 20
    for form in (boxes, comb):
        assert similarity(preprocess(jpeg(write_digit(form, four, 60, 280, 150))), alone) > 0.9


def test_ruled_lines_are_removed(mnist: Mnist) -> None:
    three = mnist.test_images[18]
    ruled = np.full((600, 800), 245.0)
    ruled[30::60, :] = 160  # light ruled lines
    alone = preprocess(jpeg(write_digit(np.full((600, 800), 245.0), three, 150, 250, 260)))
    lined = preprocess(jpeg(write_digit(ruled, three, 150, 250, 260)))
    assert similarity(lined, alone) > 0.9


def test_ones_written_with_a_fine_pen_are_not_taken_for_printed_lines(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 test 1s, 300 px tall, their strokes thinned as a fine pen writes them: a long, thin upright
    stroke, which a form's box side also is. Alone on the page, with no line across, it is the digit."""
    ones = mnist.test_images[mnist.test_labels == 1][:40]
    read = 0
    for one in ones:
        page = write_digit(np.full((500, 600), 240.0), one, 100, 150, 300, thinned=21)
        read += is_read(model, png(page), 1)
    assert read / len(ones) >= 0.975


@pytest.mark.parametrize("seed, number", [(7, 421), (23, 407)])
def test_a_lone_upright_stroke_on_paper_is_the_digits(mnist: Mnist, model: DigitModel, seed: int, number: int) -> None:
    """Paper photos of the evaluation sets, a thin 1 and a thin 4, whose upright stroke was taken for a box's side."""
    assert is_read(model, *evalset_file(mnist, "paper", 500, number, seed))


def written_straight(strokes: list[list[tuple[int, int]]], width: int) -> bytes:
    """A scan of a digit written as straight strokes (polylines through `strokes`' points) with a pen `width` px
    wide, on a plain 500 px page."""
    page = np.full((500, 500), 240.0)
    for points in strokes:
        cv2.polylines(page, [np.array(points, np.int32).reshape(-1, 1, 2)], False, 40.0, width, cv2.LINE_AA)
    return png(page)


@pytest.mark.parametrize("width", [2, 4, 6])
def test_a_digits_straight_strokes_are_not_taken_for_printed_lines(model: DigitModel, width: int) -> None:
    """7s whose bar is ruler-straight (level, or rising 10 or 20 px over its 200), a 2 with a flat base and a 4 whose
    bar and stem are straight: long, thin lines, as a form's are. Alone on the page, the 7's bar and the 2's base end
    where the digit's other stroke starts (a baseline sticks out clear of what is written on it), and the 4's bar
    and stem cross (a form's lines meet at corners), so they are the digit's: read as 1s and 7s when taken for
    printed lines. A plus drawn so is still no digit."""
    sevens = [written_straight([[(150, 130), (350, 130 - rise), (240, 400)]], width) for rise in (0, 10, 20)]
    arc = [(250 + 80 * np.cos(t), 180 + 80 * np.sin(t)) for t in np.linspace(np.pi, 2.2 * np.pi, 30)]
    two = written_straight([[*[(round(x), round(y)) for x, y in arc], (160, 400), (360, 400)]], width)
    four = written_straight([[(280, 100), (150, 300), (360, 300)], [(300, 120), (300, 420)]], width)
    plus = written_straight([[(130, 250), (370, 250)], [(250, 130), (250, 370)]], width)
    assert all(is_read(model, seven, 7) for seven in sevens)
    assert is_read(model, two, 2)
    assert is_read(model, four, 4)
    assert not model.answer(preprocess(plus)[None]).is_digit.any()


@pytest.mark.parametrize("seed, number", [(0, 424), (43, 450)])
def test_a_lone_stroke_across_on_paper_is_the_digits(mnist: Mnist, model: DigitModel, seed: int, number: int) -> None:
    """Paper photos of the evaluation sets (--count 500): a 2 whose long top stroke, and a 2 whose flat base, was
    taken for a printed line; what was left read as a 1 and a 7."""
    assert is_read(model, *evalset_file(mnist, "paper", 500, number, seed))


@pytest.mark.parametrize("index", [0, 7, 11, 18])
def test_a_faint_pens_strokes_are_found_whole(mnist: Mnist, index: int) -> None:
    """A fine pen pressed lightly on quiet paper: its strokes barely clear the ink's bar, and at that bar they break
    into pieces, of which the digit finder kept the largest few. Found whole, the digit looks as it does written
    with a dark pen."""
    page = np.full((480, 640), 225.0) + np.random.default_rng(index).normal(0, 1.5, (480, 640))
    digit = mnist.test_images[index]
    dark, faint = (preprocess(jpeg(write_digit(page, digit, 140, 220, 200, 5, darkness))) for darkness in (0.85, 0.13))
    assert similarity(faint, dark) > 0.98


@pytest.mark.parametrize("seed, number", [(11, 110), (31, 86), (43, 459)])
def test_a_faint_pen_on_paper_is_read(mnist: Mnist, model: DigitModel, seed: int, number: int) -> None:
    """Paper photos of the evaluation sets (--count 500) written with a faint, fine pen: a 2, an 8 and a 3 misread
    or flagged from the pieces of their strokes that cleared the ink's bar."""
    assert is_read(model, *evalset_file(mnist, "paper", 500, number, seed))


def dithered(photo: bytes) -> bytes:
    """`photo` in black and white, its greys drawn in dots (Pillow's Floyd-Steinberg), as a fax or a 1-bit export
    has them, saved as a PNG."""
    return encode(Image.open(io.BytesIO(photo)).convert("L").convert("1"), "PNG")


def in_negative(photo: bytes) -> bytes:
    """`photo` with its brightness inverted (light writing on a dark ground), saved as a PNG."""
    return encode(ImageOps.invert(Image.open(io.BytesIO(photo)).convert("RGB")), "PNG")


def test_dithered_paper_photos_are_read(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 paper photos of the evaluation sets (--count 500), dithered: the grey paper becomes a field of
    dots, each a speck of ink to the digit finder unless the dots are blurred back into greys first."""
    photos = (evalset_file(mnist, "paper", 500, number) for number in range(40))
    assert sum(is_read(model, dithered(photo), label) for photo, label in photos) >= 38


def test_light_writing_on_a_dark_ground_is_read(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 paper photos of the evaluation sets (--count 500) in negative, as chalk on a blackboard or a light
    pen on dark paper is photographed: the lit side of the dark ground is paler than its shaded side, and passed for
    a sheet of paper whose writing is dark."""
    photos = (evalset_file(mnist, "paper", 500, number) for number in range(40))
    assert sum(is_read(model, in_negative(photo), label) for photo, label in photos) >= 34


def test_a_bright_object_off_the_pictures_edge_is_not_light_writing(model: DigitModel) -> None:
    """A non-digit of the evaluation sets (--count 500, seed 0): a crop of a photo of a bright flower on a dark
    ground, running off the picture. The ground is dark and the flower far brighter, as with chalk on a board, but
    writing lies on its ground: read as light ink, the flower's edge is a 1."""
    seed, number = 0, 295
    kind = negative_kinds(500, seed)[number]
    assert kind == "photo crop"
    data, *_ = negative_item(kind, seed, number)
    assert not model.answer(preprocess(data)[None]).is_digit.any()


def heavier(shadow: Callable[[np.random.Generator, int, int], np.ndarray]) -> Callable[..., np.ndarray]:
    """`shadow` (a light factor) deepened so that 0.15-0.3 of the light is left under it, where the evaluation sets'
    shadows leave 0.4-0.8."""

    def deep(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        depth = 1 - shadow(rng, height, width)
        return 1 - rng.uniform(0.7, 0.85) * depth / max(float(depth.max()), 1e-6)

    return deep


@pytest.fixture
def heavy_shadows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluation sets' camera photos drawn with `heavier` shadows for the test that asks for it."""
    monkeypatch.setattr(scenes, "shadow", heavier(scenes.shadow))


def heavy_shadow_photo(mnist: Mnist, number: int) -> bytes:
    """MNIST test digit `number` (5000 and up) in a camera photo of a sheet, 800-1600 px, seeded by its place after
    5000; under a heavy shadow where the test uses `heavy_shadows`."""
    photo, _ = scenes.camera(
        mnist_digit(mnist.test_images[number]), np.random.default_rng([99, number - 5000]), (800, 1600)
    )
    return photo


@pytest.mark.usefixtures("heavy_shadows")
def test_camera_photos_under_a_heavy_shadow_keep_their_sheet(mnist: Mnist, model: DigitModel) -> None:
    """A shadow can leave most of a sheet darker than a blackboard, its lit part the far brighter thing in the
    photo, as chalk is on a board: it is still a sheet with dark writing on it."""
    numbers = range(5000, 5060)
    read = sum(is_read(model, heavy_shadow_photo(mnist, number), int(mnist.test_labels[number])) for number in numbers)
    assert read >= 58


@pytest.mark.parametrize("number", [5052, 5061, 5078, 5084, 5117, 5130])
@pytest.mark.usefixtures("heavy_shadows")
def test_a_shaded_sheets_lit_sliver_is_not_chalk(mnist: Mnist, model: DigitModel, number: int) -> None:
    """Camera photos under a heavy shadow (as above) whose sheet passes for a dark ground, and whose lit sliver, read
    as light ink, is writing to look at: it runs to the picture's edge, or barely stands out from the shade, as
    chalk on a board does not. The digit is read."""
    assert is_read(model, heavy_shadow_photo(mnist, number), int(mnist.test_labels[number]))


def test_a_large_dark_digit_in_a_corner_is_not_taken_for_a_table(mnist: Mnist) -> None:
    """A marker-thick digit filling a corner of a canvas: it is the ink, not a dark table around a pale sheet."""
    five = mnist.test_images[15]
    thick = cv2.dilate(five, np.ones((3, 3), np.uint8))
    page = write_digit(np.full((300, 300), 250.0), thick, 130, 0, 170)
    alone = preprocess(jpeg(write_digit(np.full((300, 300), 250.0), thick, 65, 65, 170)))
    assert similarity(preprocess(jpeg(page)), alone) > 0.9


def speckled_page(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scan of a dusty or grainy page: thousands of dark specks, and a digit written in the middle."""
    page = np.full((400, 400), 235.0)
    specks = rng.random(page.shape) < 0.03
    page[specks] = rng.uniform(60, 200, int(specks.sum()))
    return write_digit(page, digit, 100, 100, 200)


def test_a_speckled_page_keeps_its_digit(mnist: Mnist, model: DigitModel) -> None:
    """Only the strongest marks are weighed against each other, so thousands of specks cost neither time nor
    memory in their square, and the digit is still the one found."""
    rng = np.random.default_rng(0)
    page = speckled_page(mnist.test_images[0], rng)
    speckles, _ = cv2.connectedComponents((page < 215).astype(np.uint8), connectivity=8)
    assert speckles > 10 * MAX_MARKS
    numbers = range(10)
    pages = [speckled_page(mnist.test_images[n], rng) for n in numbers]
    inputs = np.stack([preprocess(png(p)) for p in pages])
    assert (model.predict(inputs)["probabilities"].argmax(axis=1) == mnist.test_labels[list(numbers)]).all()


def test_strongest_marks_keeps_the_digit_and_drops_the_faintest_specks() -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((400, 400), bool)
    mask[::4, ::4] = rng.random((100, 100)) < 0.5  # about 5,000 one-pixel specks
    mask[150:250, 195:205] = True  # a stroke
    signal = mask * rng.uniform(50, 100, mask.shape)
    kept = strongest_marks(mask, signal)
    count, _ = cv2.connectedComponents(kept.astype(np.uint8), connectivity=8)
    assert count - 1 == MAX_MARKS and kept[150:250, 195:205].all() and not (kept & ~mask).any()
    few = np.zeros((50, 50), bool)
    few[10:20, 10:20] = few[30:40, 30:40] = True
    assert (strongest_marks(few, few * 1.0) == few).all()


def light_on_black(digit: np.ndarray, side: int, margin: float) -> Image.Image:
    """An MNIST digit as a drawing app without transparency exports it: white strokes on flat black, cropped to
    the strokes with `margin` (a share of the digit's size) around them, `side` pixels on the longer side."""
    rows, cols = np.nonzero(digit)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    pad = round(margin * max(crop.shape))
    crop = np.pad(crop, pad)
    scale = side / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)


# Read right of the first 50 MNIST test digits, a little under what the committed model reads (see
# docs/preprocessing.md): a canvas of 280 px, as digit-drawing demos use, with a fifth or a tenth of margin, and a
# small export with a tenth.
LIGHT_ON_BLACK = [(280, 0.2, "PNG", 0.96), (280, 0.1, "JPEG", 0.9), (64, 0.1, "PNG", 0.94)]


@pytest.mark.parametrize(("side", "margin", "form", "floor"), LIGHT_ON_BLACK)
def test_light_strokes_on_flat_black_are_read(
    mnist: Mnist, model: DigitModel, side: int, margin: float, form: str, floor: float
) -> None:
    """Light strokes on a flat black ground are the ink, and the strokes closed over are not a sheet of paper."""
    numbers = range(50)
    uploads = [encode(light_on_black(mnist.test_images[n], side, margin), form) for n in numbers]
    probabilities = model.predict(np.stack([preprocess(upload) for upload in uploads]))["probabilities"]
    assert (probabilities.argmax(axis=1) == mnist.test_labels[list(numbers)]).mean() >= floor


def test_a_thin_bright_part_is_light_ink_and_a_thick_one_a_sheet(mnist: Mnist) -> None:
    """A mostly dark picture is light ink on a dark ground when its bright part is small or thin, however much of
    the picture it covers; a sheet of paper on a dark table is large and thick."""
    crops = (np.asarray(light_on_black(digit, 200, 0.0), np.float32) for digit in mnist.test_images[:100])
    bold = [crop for crop in crops if (crop > 127).mean() > 0.3]  # crops to the strokes, bright on over 30 %
    # A straight 1 cropped to its edges is a bright bar as thick as a sheet, and stays dark ink.
    assert len(bold) >= 20 and np.mean([not ink_is_dark(crop) for crop in bold]) >= 0.8
    rng = np.random.default_rng(3)
    table = 60 + rng.normal(0, 4, (400, 300))
    table[50:350, 80:230] = 220  # a sheet on three eighths of the photo
    assert ink_is_dark(table)
    assert ink_is_dark(np.full((300, 300), 230.0))  # plain paper


def test_a_flat_black_surround_is_no_table(mnist: Mnist) -> None:
    """The sheet is looked for on a photo's textured, noisy table, not around strokes drawn on flat black."""
    drawing = np.asarray(light_on_black(mnist.test_images[1], 280, 0.1), np.float32)
    assert sheet_mask(*working_copy(drawing, None)) is None
    rng = np.random.default_rng(4)
    photo = 40 + rng.normal(0, 3, (600, 800))  # a plain dark table, and the camera's noise
    photo[100:500, 200:600] = 215
    photo = write_digit(photo, mnist.test_images[1], 180, 300, 200)
    sheet = sheet_mask(*working_copy(photo, None))
    assert sheet is not None and sheet.mean() > 0.2


def test_a_thick_pens_drawing_on_black_is_read(mnist: Mnist, model: DigitModel) -> None:
    """The canvas set's drawings saved without transparency, white on black: a thick pen's crossings are thicker
    than a thin stroke, but the strokes cover little of the picture, so they are still light ink."""
    numbers = range(50)
    uploads, labels = [], []
    for number in numbers:
        data, label = evalset_file(mnist, "canvas", len(numbers), number, seed=2)
        strokes = Image.open(io.BytesIO(data)).convert("RGBA").getchannel("A")
        uploads.append(encode(strokes, "PNG"))
        labels.append(label)
    probabilities = model.predict(np.stack([preprocess(upload) for upload in uploads]))["probabilities"]
    assert (probabilities.argmax(axis=1) == np.array(labels)).mean() >= 0.94


def read_right(model: DigitModel, uploads: list[bytes], labels: np.ndarray) -> float:
    probabilities = model.predict(np.stack([preprocess(upload) for upload in uploads]))["probabilities"]
    return float((probabilities.argmax(axis=1) == labels).mean())


def dark_on_white(image: Image.Image) -> Image.Image:
    return Image.fromarray(255 - np.asarray(image))


@pytest.mark.parametrize("light", [True, False])
def test_a_digit_cropped_to_its_strokes_is_read(mnist: Mnist, model: DigitModel, light: bool) -> None:
    """A picture cropped to the digit's strokes has them along its edges, where a table or a sheet's edge would be:
    it is read inside a margin of its own background. The first 100 test digits, 64 px."""
    crops = [light_on_black(digit, 64, 0.0) for digit in mnist.test_images[:100]]
    uploads = [encode(crop if light else dark_on_white(crop), "PNG") for crop in crops]
    assert read_right(model, uploads, mnist.test_labels[:100]) >= 0.96


@pytest.mark.parametrize(("enlarged", "floor"), [(False, 0.8), (True, 0.88)])
def test_other_writers_digits_as_they_come_are_read(model: DigitModel, enlarged: bool, floor: float) -> None:
    """scikit-learn's digits are cropped to their box, which their strokes touch: the first 200 as they come (8x8
    px, white on black) or enlarged to 64 px and saved dark on white."""
    images, labels = sklearn_digits()
    uploads = []
    for image in images[:200]:
        picture = Image.fromarray(np.round(image * 255).astype(np.uint8))
        if enlarged:
            picture = dark_on_white(picture.resize((64, 64), Image.Resampling.BICUBIC))
        uploads.append(encode(picture, "PNG"))
    assert read_right(model, uploads, labels[:200]) >= floor


def on_dark_ground(rng: np.random.Generator, ink: np.ndarray) -> tuple[np.ndarray, float]:
    """`ink` (1 ink) as grey-white strokes on a dark ground of 0-40, and that ground's level."""
    ground = rng.uniform(0, 40)
    return ground + (rng.uniform(200, 255) - ground) * rng.uniform(0.75, 1) * ink, ground


def light_scan(rng: np.random.Generator, image: np.ndarray) -> bytes:
    """An 8x8 digit (1 ink) enlarged smoothly to 60-180 px: grey-white strokes as thick as the enlarging makes them,
    on a dark, noisy ground, with a margin of it on some sides or none."""
    side = int(rng.integers(60, 180))
    ink = np.clip(cv2.resize(image.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC), 0, 1)
    scan, ground = on_dark_ground(rng, ink)
    scan = np.pad(scan, [(int(rng.integers(0, side // 3)),) * 2 for _ in range(2)], constant_values=ground)
    return png(np.clip(scan + rng.normal(0, rng.uniform(2, 10), scan.shape), 0, 255))


def test_thick_light_strokes_on_a_dark_ground_are_not_taken_for_a_sheet(model: DigitModel) -> None:
    """Closed over, thick light strokes pass for a sheet on a dark table, and the ground between them for the
    writing; read as light ink instead, more than half of 40 other writers' digits are read (scikit-learn's digits
    200-239, `light_scan`)."""
    images, labels = sklearn_digits()
    uploads = [light_scan(np.random.default_rng([47, k]), images[200 + k]) for k in range(40)]
    assert read_right(model, uploads, labels[200:240]) >= 0.5


def light_crop(rng: np.random.Generator, image: np.ndarray) -> bytes:
    """An 8x8 digit (1 ink) enlarged to 60-240 px by one of four interpolations: grey-white strokes on a dark,
    noisy ground, the picture cropped to the enlarged digit's square (no margin of ground beyond it)."""
    side = int(rng.integers(60, 240))
    method = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)[int(rng.integers(4))]
    ink = np.clip(cv2.resize(image.astype(np.float32), (side, side), interpolation=method), 0, 1)
    scan, _ = on_dark_ground(rng, ink)
    return png(np.clip(scan + rng.normal(0, rng.uniform(4, 10), scan.shape), 0, 255))


def test_a_light_digit_cropped_close_is_not_taken_for_a_sheet(model: DigitModel) -> None:
    """Framed by its own dark ground, a light digit cropped close can pass for a sheet, and the noise on its
    strokes for the writing; read as light ink, at least 32 of 40 other writers' digits are read right and taken
    for digits (scikit-learn's digits 300-339, `light_crop`)."""
    images, labels = sklearn_digits()
    uploads = [light_crop(np.random.default_rng([50, k]), images[300 + k]) for k in range(40)]
    answers = model.answer(np.stack([preprocess(upload) for upload in uploads]))
    right = (answers.probabilities.argmax(axis=1) == labels[300:340]) & answers.is_digit
    assert int(right.sum()) >= 32


def test_other_writers_digits_enlarged_without_smoothing_are_mostly_taken_for_digits(model: DigitModel) -> None:
    """Enlarged 16 times without smoothing, an 8x8 digit reaches the 20 px box as blocks with stair-stepped
    edges; the frame's slight blur keeps most of them from being taken for a shape. The first 200, 128 px, dark on
    white."""
    images, labels = sklearn_digits()
    uploads = []
    for image in images[:200]:
        picture = Image.fromarray(np.round(image * 255).astype(np.uint8)).resize((128, 128), Image.Resampling.NEAREST)
        uploads.append(encode(dark_on_white(picture), "PNG"))
    answers = model.answer(np.stack([preprocess(upload) for upload in uploads]))
    assert np.mean(~answers.is_digit) <= 0.15
    assert np.mean(answers.probabilities.argmax(axis=1) == labels[:200]) >= 0.86


def test_only_a_digit_the_picture_is_cropped_to_is_read_inside_a_margin(mnist: Mnist) -> None:
    """The margin is for crops: a digit with room around it, a form's box and a blank page are looked at as they
    are."""
    tight = np.asarray(light_on_black(mnist.test_images[0], 64, 0.0), np.float32)
    assert marks_span(tight) and digit_of_a_crop(tight, None, drawing=False) is not None
    roomy = np.asarray(light_on_black(mnist.test_images[0], 280, 0.3), np.float32)
    assert digit_of_a_crop(roomy, None, drawing=False) is None
    assert not marks_span(roomy)  # so it is not even looked at inside a margin
    box = np.full((120, 300), 235.0)  # a box over four fifths of the picture's height, the digit in it
    box[12:108, 100:103] = box[12:108, 197:200] = box[12:15, 100:200] = box[105:108, 100:200] = 30
    box = write_digit(box, mnist.test_images[1], 25, 115, 70)
    assert digit_of_a_crop(box, None, drawing=False) is None
    assert digit_of_a_crop(np.full((64, 64), 240.0), None, drawing=False) is None


def notebook_page(rng: np.random.Generator, squared: bool, digit: np.ndarray | None) -> bytes:
    """A photo of a notebook's ruled or squared page (lines a pen's width or thinner, printed lighter than the
    writing, 12-45 px apart), turned a few degrees, in light falling off to one side, with `digit` written on it in
    pen or pencil (or nothing)."""
    height, width = (int(n) for n in rng.integers(200, 900, 2))
    spacing, line_width = int(rng.integers(12, 45)), int(rng.integers(1, 3))
    yy, xx = np.mgrid[:height, :width]
    ruled = (yy % spacing < line_width) | ((xx % spacing < line_width) & squared)
    page = np.where(ruled, rng.uniform(150, 215), 240.0)
    if digit is not None:
        side = int(min(height, width) * rng.uniform(0.25, 0.7))
        top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
        page = write_digit(page, digit, top, left, side, darkness=rng.uniform(0.6, 0.95))
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-6, 6), 1.0)
    page = cv2.warpAffine(page.astype(np.float32), turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    page *= 1 - rng.uniform(0, 0.2) * xx / width
    return jpeg(page + rng.normal(0, rng.uniform(1, 4), page.shape))


@pytest.mark.parametrize("squared", [False, True])
def test_digits_on_a_notebook_page_are_read(mnist: Mnist, model: DigitModel, squared: bool) -> None:
    """Of 40 test digits written on ruled or squared notebook pages, most are read: the printed lines, fainter than
    the writing, drop out, instead of being removed one by one (which cut strokes along them, took a cell's sides
    for a box around the digit, or a 1 for a line)."""
    photos = [notebook_page(np.random.default_rng([45, k]), squared, mnist.test_images[1000 + k]) for k in range(40)]
    read = sum(is_read(model, photo, int(mnist.test_labels[1000 + k])) for k, photo in enumerate(photos))
    assert read >= 34, read


def scan_of(page: np.ndarray, rng: np.random.Generator) -> bytes:
    """A grey `page` as a flatbed scan of it (the evaluation sets' `scanned`)."""
    encoded, _ = scanned(np.repeat(page[..., None], 3, axis=2), rng)
    return encoded


def squared_scan(rng: np.random.Generator) -> bytes:
    """A flatbed scan of a blank sheet of squared paper: a grid of 10-22 px squares in thin lines, every fifth line
    darker, printed lighter than a pen writes."""
    height, width = (int(n) for n in rng.integers(450, 650, 2))
    pitch = rng.uniform(10, 22)
    grid = np.zeros((height, width), np.float32)
    for k in range(int(max(height, width) / pitch) + 2):
        at, strength = round(k * pitch), 1.0 if k % 5 == 0 else 0.5
        cv2.line(grid, (0, at), (width, at), strength, 1, cv2.LINE_AA)
        cv2.line(grid, (at, 0), (at, height), strength, 1, cv2.LINE_AA)
    page = rng.uniform(225, 250) - rng.uniform(60, 140) * np.minimum(grid, 1)
    return scan_of(page, rng)


def test_what_is_left_of_a_squared_pages_lines_is_no_digit(model: DigitModel) -> None:
    """With nothing written, no writing stands above the grid, so its lines are removed one by one: a crossing or a
    broken piece they leave, or a line too faint to be found, scaled up to a digit's size, reads as one. Of 40 scans
    of blank squared paper most find no ink at all, and of 40 photos of blank squared notebook pages few are
    answered as a digit."""
    scans = np.stack([preprocess(squared_scan(np.random.default_rng([51, k]))) for k in range(40)])
    assert sum(not frame.any() for frame in scans) >= 30
    assert int(model.answer(scans).is_digit.sum()) <= 1
    photos = np.stack([preprocess(notebook_page(np.random.default_rng([51, k]), True, None)) for k in range(40)])
    assert int(model.answer(photos).is_digit.sum()) <= 3


def bold_box_form(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A scan of a form's single box printed bold (its lines a fourteenth to a ninth of its side thick, its corners
    square or rounded) with `digit` written in it, at times touching its sides."""
    side = int(rng.integers(90, 200))
    bold = max(2, round(side / rng.uniform(9, 14)))
    margin = int(side * rng.uniform(0.2, 0.6))
    page = np.full((side + 2 * margin, side + 2 * margin), rng.uniform(225, 250), np.float32)
    ink = float(rng.uniform(0, 90))
    low, high = margin, margin + side
    corner = side // 8 if rng.random() < 0.3 else 0
    for start, end in (((low + corner, low), (high - corner, low)), ((low + corner, high), (high - corner, high))):
        cv2.line(page, start, end, ink, bold)
        cv2.line(page, start[::-1], end[::-1], ink, bold)
    for x, y, angle in ((low, low, 180), (high, low, 270), (high, high, 0), (low, high, 90)):
        centre = (x + corner if x == low else x - corner, y + corner if y == low else y - corner)
        cv2.ellipse(page, centre, (corner, corner), angle, 0, 90, ink, bold)
    written = int(side * rng.uniform(0.6, 0.9))
    spare = side - written
    top = low + int(spare * rng.uniform(0, 1))
    page = write_digit(page, digit, top, low + int(spare * rng.uniform(0.1, 0.9)), written)
    return scan_of(page, rng)


def test_a_box_printed_bold_around_the_digit_is_removed(mnist: Mnist, model: DigitModel) -> None:
    """Test digits 300-339, each in a box printed bold: sides too stout for a ruled line, which close a rectangle
    as no pen's strokes do. The box goes, the digit is read."""
    rng = np.random.default_rng(49)
    uploads = [bold_box_form(digit, rng) for digit in mnist.test_images[300:340]]
    assert read_right(model, uploads, mnist.test_labels[300:340]) >= 0.9


def baseline_form(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A scan of a form field that is a printed baseline, 1.2 to 2 times as long as `digit` written on it is tall,
    under a printed label or not; the digit stands on the line, touching it or reaching below it."""
    written = int(rng.integers(60, 160))
    length = int(written * rng.uniform(1.2, 2.0))
    label = int(written * 0.5) if rng.random() < 0.5 else 0
    margin = int(written * rng.uniform(0.3, 0.7))
    page = np.full((label + written + 2 * margin, length + 2 * margin), rng.uniform(225, 250), np.float32)
    base = label + margin + written
    line = rng.uniform(0, 120)
    cv2.line(page, (margin, base), (margin + length, base), line, max(1, round(written / rng.uniform(15, 40))))
    if label:
        words = ("Age", "No.", "Qty", "Code")
        text = text_mask(words[int(rng.integers(len(words)))], font_files()[0], label)[: label - 2]
        page[margin // 2 : margin // 2 + text.shape[0], margin : margin + text.shape[1]] *= 1 - 0.8 * text
    left = margin + int((length - written) * rng.uniform(0.2, 0.8))
    page = write_digit(page, digit, base - int(written * rng.uniform(0.8, 0.9)), left, written)  # on it, or over it
    return scan_of(page, rng)


def test_a_printed_baseline_under_the_digit_is_removed(mnist: Mnist, model: DigitModel) -> None:
    """Test digits 400-439, each written on a form's printed baseline: too short and too stout for a ruled line,
    it sticks out clear on both sides of what is written on it, as no digit's own straight stroke does. The line
    goes, the digit is read."""
    rng = np.random.default_rng(49)
    uploads = [baseline_form(digit, rng) for digit in mnist.test_images[400:440]]
    assert read_right(model, uploads, mnist.test_labels[400:440]) >= 0.9


def two_on_its_own_base(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """`digit` (a 2) as a drawing exported without transparency, dark strokes on white, its base drawn on straight
    and as thick as its strokes past both ends of its body: what a field's baseline looks like but for its
    thickness."""
    side = int(rng.integers(120, 300))
    ink = np.zeros((2 * side, 2 * side), np.float32)
    ink[side // 2 : side // 2 + side, side // 2 : side // 2 + side] = cv2.resize(
        digit.astype(np.float32) / 255, (side, side), interpolation=cv2.INTER_CUBIC
    ).clip(0, 1)
    rows, cols = np.nonzero(ink > 0.5)
    pen = max(2, round(stroke_width(ink > 0.5)))
    overshoot = int((cols.max() - cols.min()) * rng.uniform(0.2, 0.35))
    base = int(rows.max() - pen / 2)
    cv2.line(ink, (int(cols.min()) - overshoot, base), (int(cols.max()) + overshoot, base), 1.0, pen)
    page = 255.0 * (1 - ink.clip(0, 1))
    return encode(Image.fromarray(page.astype(np.uint8)), "PNG")


def test_a_digits_own_straight_base_is_not_taken_for_a_printed_one(mnist: Mnist, model: DigitModel) -> None:
    """The first 40 test 2s drawn with a straight base as thick as their strokes running past both ends of their
    body: with something written over its middle and its ends clear, it would pass for a field's baseline, but a
    printed baseline is thinner than the pen. The base stays the 2's."""
    rng = np.random.default_rng(49)
    twos = mnist.test_images[mnist.test_labels == 2][:40]
    uploads = [two_on_its_own_base(two, rng) for two in twos]
    assert read_right(model, uploads, np.full(len(twos), 2)) >= 0.9


def labelled_field_form(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A scan of a form's field, `digit` written in its box, the box printed in a drop-out colour (too pale to count
    as ink) and the field's label printed bold on its left, level with it, its letters running together."""
    side = int(rng.integers(40, 100))
    bold_fonts = [font for font in font_files() if "Bold" in font.name]
    word = ("Age", "Qty", "Day", "Room", "Lot", "Month", "Code", "Bed", "Row", "Set")[int(rng.integers(10))]
    text = text_mask(word + ":" * int(rng.integers(2)), bold_fonts[int(rng.integers(2))], int(side * 0.4))
    margin, gap = int(side * rng.uniform(0.2, 0.5)), int(side * rng.uniform(0.05, 0.2))
    paper = float(rng.uniform(225, 250))
    page = np.full((side + 2 * margin, margin + text.shape[1] + gap + side + margin), paper, np.float32)
    top = margin + (side - text.shape[0]) // 2
    page[top : top + text.shape[0], margin : margin + text.shape[1]] *= 1 - 0.8 * text
    left = margin + text.shape[1] + gap
    cv2.rectangle(page, (left, margin), (left + side, margin + side), paper - float(rng.uniform(8, 18)), 1)
    inner = int(side * rng.uniform(0.8, 0.95))
    page = write_digit(page, digit, margin + (side - inner) // 2, left + (side - inner) // 2, inner)
    return scan_of(page, rng)


def test_a_label_printed_beside_the_field_is_not_read(mnist: Mnist, model: DigitModel) -> None:
    """Test digits 500-539, each written in a form's field whose label, printed bold on its left, runs together
    into one wide mark at a scan's resolution and can outweigh a digit: neither read in its place nor read with it."""
    rng = np.random.default_rng(50)
    uploads = [labelled_field_form(digit, rng) for digit in mnist.test_images[500:540]]
    assert read_right(model, uploads, mnist.test_labels[500:540]) >= 0.9
