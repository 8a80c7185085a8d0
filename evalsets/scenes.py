"""How the ink reaches the service: a page, a canvas, a camera photo of a sheet on a table, a form box, a scan.

Each scene takes an ink mask (float32, 1 = ink; `None` for an empty page) and returns the encoded file. Every
parameter (sizes, colours, light, shadow, perspective, noise, compression) is drawn widely from the generator.
"""

from __future__ import annotations

import io
from functools import cache

import cv2
import numpy as np
from PIL import Image

from evalsets.inks import font_files, text_mask, upscale


def encode(pixels: np.ndarray, rng: np.random.Generator, jpeg_share: float = 0.6) -> tuple[bytes, str]:
    """RGB (or RGBA) pixels as a JPEG or PNG file, and its extension."""
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    if image.mode == "RGB" and rng.random() < jpeg_share:
        image.save(buffer, format="JPEG", quality=int(rng.integers(55, 96)))
        return buffer.getvalue(), "jpg"
    if image.mode == "RGB" and rng.random() < 0.3:
        image = image.convert("L")
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"


def paper_colour(rng: np.random.Generator, low: int = 215) -> np.ndarray:
    base = rng.uniform(low, 255)
    return np.clip(base + rng.normal(0, 6, 3), 0, 255)


def pen_colour(rng: np.random.Generator) -> np.ndarray:
    """Black, blue-black, blue, dark grey pencil, dark red or green: what people write with."""
    pens = [(15, 15, 20), (25, 30, 70), (20, 40, 150), (70, 70, 75), (110, 20, 25), (20, 70, 40)]
    return np.clip(np.asarray(pens[int(rng.integers(len(pens)))], dtype=np.float64) + rng.normal(0, 10, 3), 0, 255)


def put_ink(page: np.ndarray, ink: np.ndarray, top: int, left: int, pen: np.ndarray, strength: float) -> None:
    """Write `ink` into `page` (float RGB) in place, multiplying the paper towards the pen colour."""
    height, width = ink.shape
    region = page[top : top + height, left : left + width]
    alpha = (ink * strength)[..., None]
    page[top : top + height, left : left + width] = region * (1 - alpha) + pen * alpha


def placed(ink: np.ndarray, page_shape: tuple[int, int], rng: np.random.Generator, centre: float) -> tuple[int, int]:
    """A top-left corner for `ink` on the page, within the middle `centre` share of the free space."""
    free_y, free_x = page_shape[0] - ink.shape[0], page_shape[1] - ink.shape[1]
    low, high = (1 - centre) / 2, (1 + centre) / 2
    return int(free_y * rng.uniform(low, high)), int(free_x * rng.uniform(low, high))


def thickened(ink: np.ndarray, rng: np.random.Generator, low: float = -0.03, high: float = 0.1) -> np.ndarray:
    """A thinner or thicker pen than the source's, by up to a share of the ink's size."""
    size = round(abs(rng.uniform(low, high)) * max(ink.shape))
    if size < 2:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size | 1, size | 1))
    return cv2.dilate(ink, kernel) if rng.random() < high / (high - low) else cv2.erode(ink, kernel)


def noisy(page: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return page + sigma * rng.standard_normal(page.shape, dtype=np.float32)


def paper(ink: np.ndarray | None, rng: np.random.Generator) -> tuple[bytes, str]:
    """A digit on uniform paper: photographed or scanned flat, off-centre, mild light gradient."""
    side = int(rng.integers(60, 420))
    height, width = int(side * rng.uniform(1.05, 2.2)), int(side * rng.uniform(1.05, 2.2))
    page = np.ones((height, width, 3)) * paper_colour(rng)
    yy, xx = np.mgrid[:height, :width]
    page *= (1 - rng.uniform(0, 0.12) * (xx / width if rng.random() < 0.5 else yy / height))[..., None]
    if ink is not None:
        mark = thickened(upscale(ink, side, rng), rng)
        put_ink(page, mark, *placed(mark, (height, width), rng, 0.9), pen_colour(rng), rng.uniform(0.75, 1.0))
    return encode(noisy(page, rng, rng.uniform(0, 6)), rng)


def canvas(ink: np.ndarray | None, rng: np.random.Generator) -> tuple[bytes, str]:
    """A drawing app's export: coloured strokes on a fully transparent RGBA canvas."""
    size = int(rng.integers(150, 600))
    rgba = np.zeros((size, size, 4))
    if ink is not None:
        mark = thickened(upscale(ink, int(size * rng.uniform(0.4, 0.95)), rng), rng, 0.0, 0.12)  # an opaque pen
        top, left = placed(mark, (size, size), rng, 1.0)
        rgba[top : top + mark.shape[0], left : left + mark.shape[1], :3] = pen_colour(rng)
        rgba[top : top + mark.shape[0], left : left + mark.shape[1], 3] = mark * 255
    image = Image.fromarray(rgba.astype(np.uint8), "RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"


@cache
def sample_photos() -> tuple[np.ndarray, ...]:
    """scikit-learn's two bundled photos (china.jpg, flower.jpg), RGB uint8."""
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def photo_crop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of a bundled photo, scaled to the size asked, as float RGB."""
    photos = sample_photos()
    photo = photos[int(rng.integers(len(photos)))]
    side_h = int(rng.integers(photo.shape[0] // 6, photo.shape[0]))
    side_w = min(photo.shape[1], int(side_h * width / height))
    top, left = int(rng.integers(0, photo.shape[0] - side_h + 1)), int(rng.integers(0, photo.shape[1] - side_w + 1))
    crop = photo[top : top + side_h, left : left + side_w]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def smooth_field(height: int, width: int, shrink: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """A grid at 1/shrink of the size, for fields that are computed small and enlarged (much cheaper)."""
    small_h, small_w = max(2, height // shrink), max(2, width // shrink)
    yy, xx = np.mgrid[:small_h, :small_w].astype(np.float32) * shrink
    return small_h, small_w, yy, xx


def enlarged(field: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(field.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def table(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """What the sheet lies on: a plain or noisy colour, wood grain, a checked cloth or a photo's texture."""
    full_h, full_w = height, width
    height, width, yy, xx = smooth_field(full_h, full_w, 2)
    kind = int(rng.integers(4))
    colour = rng.uniform(20, 230, 3)
    if kind == 0:
        surface = np.ones((height, width, 3)) * colour + rng.normal(0, rng.uniform(2, 15), (height, width, 1))
    elif kind == 1:
        period = rng.uniform(8, 60)
        grain = np.sin((yy + 15 * np.sin(xx / rng.uniform(40, 300))) / period * 2 * np.pi)
        surface = colour * (1 + rng.uniform(0.05, 0.35) * grain)[..., None]
    elif kind == 2:
        cell = rng.uniform(20, 120)
        check = ((yy // cell + xx // cell) % 2)[..., None]
        surface = colour * (1 - check) + rng.uniform(20, 240, 3) * check
    else:
        surface = photo_crop(rng, height, width)
    return enlarged(surface, full_h, full_w)


def lighting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A multiplicative light field: a gradient in a random direction times a vignette."""
    full_h, full_w = height, width
    height, width, yy, xx = smooth_field(full_h, full_w, 8)
    yy, xx = yy / 8, xx / 8
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) + 1
    field = 1 - rng.uniform(0.0, 0.45) * ramp / 2
    radius = np.hypot((yy - height * rng.uniform(0.3, 0.7)) / height, (xx - width * rng.uniform(0.3, 0.7)) / width)
    return enlarged(field * (1 - rng.uniform(0, 0.5) * np.clip(radius, 0, 1) ** 2), full_h, full_w)


def shadow(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A soft-edged shadow (of a hand, a phone, a lamp arm) over part of the picture, as a light factor."""
    small_h, small_w = height // 4, width // 4  # drawn and blurred at a quarter of the size: blurs are costly
    mask = np.zeros((small_h, small_w), dtype=np.float32)
    corners = rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * (small_w, small_h)
    edge = int(rng.integers(4))  # the side the shadow comes from
    anchor = [(0, 0), (small_w, 0), (small_w, small_h), (0, small_h)]
    points = np.vstack([corners, anchor[edge], anchor[(edge + 1) % 4]])
    cv2.fillPoly(mask, [cv2.convexHull(points.astype(np.int32))], 1.0)
    blurred = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.3, 0.01 * max(height, width))))
    return 1 - rng.uniform(0.2, 0.6) * np.asarray(cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR))


def camera(
    ink: np.ndarray | None,
    rng: np.random.Generator,
    longer_side: tuple[int, int] = (1000, 3000),
    digit_share: tuple[float, float] = (0.2, 0.5),
) -> tuple[bytes, str]:
    """A phone photo of a sheet lying on a table: perspective, uneven light, a shadow, noise, blur, JPEG. The photo's
    longer side is drawn from `longer_side` (smaller photos render faster and look alike once reduced), the digit's
    from `digit_share` of the sheet's shorter side."""
    longer = int(rng.integers(*longer_side))
    height, width = (longer, int(longer * rng.uniform(0.56, 0.9)))[:: 1 if rng.random() < 0.6 else -1]
    sheet_h, sheet_w = int(height * rng.uniform(0.6, 0.95)), int(width * rng.uniform(0.6, 0.95))
    sheet = np.ones((sheet_h, sheet_w, 3), np.float32) * paper_colour(rng, 190).astype(np.float32)
    if rng.random() < 0.3:  # ruled paper, printed in a light colour
        step = int(sheet_h * rng.uniform(0.04, 0.09))
        sheet[step // 2 :: step, :, :] *= (1 - rng.uniform(0.1, 0.3) * np.array([1, 0.6, 0.2]))[None, :]
    if ink is not None:
        mark = thickened(upscale(ink, int(min(sheet_h, sheet_w) * rng.uniform(*digit_share)), rng), rng, -0.03, 0.06)
        put_ink(sheet, mark, *placed(mark, (sheet_h, sheet_w), rng, 0.7), pen_colour(rng), rng.uniform(0.7, 0.95))
    source = np.array([[0, 0], [sheet_w, 0], [sheet_w, sheet_h], [0, sheet_h]], dtype=np.float32)
    centre = np.array([width, height]) * rng.uniform(0.4, 0.6, 2)
    angle = rng.uniform(-0.2, 0.2)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = (source - source.mean(axis=0)) @ rotation.T + centre
    corners += rng.normal(0, 0.03 * min(sheet_h, sheet_w), corners.shape)  # perspective
    transform = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
    warped = cv2.warpPerspective(sheet.astype(np.float32), transform, (width, height), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((sheet_h, sheet_w), np.float32), transform, (width, height))[..., None]
    photo = table(rng, height, width) * (1 - cover) + warped * cover
    photo *= (lighting(rng, height, width) * (shadow(rng, height, width) if rng.random() < 0.8 else 1))[..., None]
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.3, 2.0))
    return encode(noisy(photo, rng, rng.uniform(1, 9)), rng, jpeg_share=1.0)  # phones write JPEG


def form(ink: np.ndarray | None, rng: np.random.Generator) -> tuple[bytes, str]:
    """A scanned form field: a row of printed boxes (or a comb), one holding the digit, maybe a printed label."""
    box = int(rng.integers(40, 160))
    box_w = int(box * rng.uniform(0.7, 1.3))
    count, target = int(rng.integers(1, 6)), 0
    target = int(rng.integers(count))
    line = int(rng.integers(1, max(2, box // 30) + 2))
    margin_x, margin_y = int(box * rng.uniform(0.1, 1.0)), int(box * rng.uniform(0.1, 0.8))
    label_h = int(box * 0.45) if rng.random() < 0.5 else 0
    height, width = box + 2 * margin_y + label_h, count * box_w + 2 * margin_x
    page = np.ones((height, width, 3)) * paper_colour(rng, 225)
    ink_colour = np.asarray([(0, 0, 0), (60, 60, 60), (40, 60, 160), (200, 60, 60)][int(rng.integers(4))])
    top = margin_y + label_h
    comb = rng.random() < 0.3  # only a base line and short ticks between the cells
    for i in range(count + 1):
        x = margin_x + i * box_w
        tick = top + (int(box * rng.uniform(0.5, 0.8)) if comb else 0)
        page[tick : top + box + line, x : x + line] = ink_colour
    page[top + box : top + box + line, margin_x : margin_x + count * box_w + line] = ink_colour
    if not comb:
        page[top : top + line, margin_x : margin_x + count * box_w + line] = ink_colour
    if label_h:
        fonts = font_files()
        words = ["Age", "Zip", "Code", "No.", "Day", "Month", "Year", "Qty", "Room", "Ref"]
        text = text_mask(words[int(rng.integers(len(words)))], fonts[int(rng.integers(len(fonts)))], label_h)
        text = text[:, : width - margin_x]
        put_ink(page, text[: label_h - 2], 1, margin_x, ink_colour, 1.0)
    if ink is not None:
        mark = thickened(upscale(ink, int(box * rng.uniform(0.55, 0.95)), rng), rng, -0.03, 0.06)
        cell_y = top + int((box - mark.shape[0]) * rng.uniform(0.1, 0.9))
        cell_x = margin_x + target * box_w + int((box_w - mark.shape[1]) * rng.uniform(0.1, 0.9))
        cell_x = int(np.clip(cell_x, 0, width - mark.shape[1]))
        put_ink(page, mark, cell_y, cell_x, pen_colour(rng), rng.uniform(0.75, 1.0))
    return scanned(page, rng)


def scanned(page: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A flatbed scan's look: a slight skew, blur, noise, sometimes a hard black-and-white threshold."""
    height, width = page.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-3, 3), 1.0)
    page = cv2.warpAffine(page, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.3, 1.2))
    page = noisy(page, rng, rng.uniform(0, 6))
    if rng.random() < 0.15:  # a fax-like bilevel scan
        brightness = page.mean(axis=2, keepdims=True)
        page = np.where(brightness > bilevel_threshold(brightness, rng), 255.0, 0.0) * np.ones(3)
    return encode(page, rng)


INK_CONTRAST = 25  # darker than the paper by this much is ink, not the scan's noise


def bilevel_threshold(brightness: np.ndarray, rng: np.random.Generator) -> float:
    """A bilevel scan's threshold: drawn, but never under the midpoint between the paper and the ink's darker tones,
    as a scanner set for the page keeps a faint pen's strokes (a digit it erased would be no digit to read)."""
    drawn = float(rng.uniform(110, 170))
    paper = float(np.median(brightness))
    ink = brightness[brightness < paper - INK_CONTRAST]
    if ink.size == 0:  # a blank page
        return drawn
    return max(drawn, (float(np.percentile(ink, 5)) + paper) / 2)


def low_resolution_scan(ink: np.ndarray | None, rng: np.random.Generator) -> tuple[bytes, str]:
    """A small digit scanned at low resolution: blocky or blurred, faint, with a narrow paper margin."""
    side = int(rng.integers(16, 120))
    page_side = int(side * rng.uniform(1.1, 1.8))
    page = np.ones((page_side, page_side, 3)) * paper_colour(rng, 180)
    if ink is not None:
        small = ink
        if rng.random() < 0.4:  # blocky: enlarged without smoothing
            reps = max(1, side // max(ink.shape))
            small = np.kron(ink, np.ones((reps, reps), dtype=np.float32))
        mark = upscale(small, side, rng)
        put_ink(page, mark, *placed(mark, (page_side, page_side), rng, 0.8), pen_colour(rng), rng.uniform(0.55, 1.0))
    return scanned(page, rng)


def noise_image(rng: np.random.Generator) -> tuple[bytes, str]:
    """Sensor-like noise: white, blurred (blotchy) or salt and pepper, grey or colour."""
    height, width = int(rng.integers(28, 800)), int(rng.integers(28, 800))
    channels = 3 if rng.random() < 0.5 else 1
    pixels = rng.normal(rng.uniform(40, 215), rng.uniform(10, 80), (height, width, channels))
    if rng.random() < 0.4:
        pixels = np.asarray(cv2.GaussianBlur(pixels, (0, 0), rng.uniform(1, 12)), dtype=np.float64).reshape(
            height, width, channels
        )
        pixels = (pixels - pixels.mean()) * rng.uniform(2, 6) + rng.uniform(60, 200)
    elif rng.random() < 0.4:
        pixels = np.where(rng.random((height, width, 1)) < rng.uniform(0.01, 0.2), rng.choice([0.0, 255.0]), 200.0)
    return encode(np.repeat(pixels, 3 // pixels.shape[2], axis=2), rng)


def photo_image(rng: np.random.Generator) -> tuple[bytes, str]:
    """A crop of a bundled photo at a random size."""
    height, width = int(rng.integers(28, 900)), int(rng.integers(28, 900))
    return encode(photo_crop(rng, height, width), rng)
