"""Uploaded image bytes -> the 28x28 raw-pixel array the model expects (MNIST's own conventions).

Pure functions, no HTTP. Cheap checks come first: the format is decided from the leading bytes and the declared
dimensions are checked before any pixel is decoded, so a decompression bomb costs nothing. Plain 8-bit grayscale
PNGs, what MNIST-style clients send, take a short path to the same pixels.

The steps follow how MNIST itself was made: composite alpha, grayscale (a dithered black-and-white picture's dots
blurred back into greys), find the digit's ink (app.digit_finding: the local background, the sheet, printed lines,
the digit's strokes), crop to it, scale the longer side to 20 px, and centre the centre of mass in 28x28. A slight
blur then softens the edges (SOFTENING).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from app.contract import IMAGE_SIDE  # the model's input frame
from app.digit_finding import COLOUR_SIDE, WORK_SIDE, find_digit
from app.png_short_path import PNG_SIGNATURE, plain_png_pixels

DIGIT_BOX = 20  # MNIST scaled each digit's longer side to 20 px
WORK_BOX = 4 * DIGIT_BOX  # intermediate resolution where stroke width is measured and adjusted
TARGET_STROKE = 10  # MNIST strokes are about 2.5 px wide in the 20 px box, 10 px at WORK_BOX
# The network reads a digit better through a slight blur: a scan enlarged without smoothing reaches the 20 px box with
# stair-stepped edges, which MNIST's strokes do not have, and such a digit is otherwise often taken for a shape.
SOFTENING = 0.5  # the blur's standard deviation, in pixels of the 28x28 frame
# MNIST scaled each digit's longer side to DIGIT_BOX and put its centre of mass in the middle of the frame. The ink is
# counted above a quarter of the brightest pixel so that a JPEG copy's faint ringing does not widen the span; the
# bounds leave room for MNIST's faintest digits (measured in docs/benchmark.md, "The MNIST-format check").
MNIST_INK_SHARE = 0.25
MNIST_LONGER_SIDES = (17, 21)
MNIST_CENTRE_SLACK = 1.0
DARK_COLOUR = 32  # a pixel's colour saturation is taken relative to its brightness, but to at least this (of 255)
# A dithered or halftoned black-and-white picture (a fax, a 1-bit export) draws its greys as scattered dots, which a
# scanner's or a renderer's plain threshold does not make: pixels unlike all eight neighbours.
DITHER_GRAIN = 0.05  # such pixels, as a share of the less common colour's, that make a picture dithered
DESCREEN = 1.5  # the blur that turns the dots back into greys, its standard deviation in the picture's pixels

log = logging.getLogger(__name__)

# Leading bytes of each accepted format; anything else is refused with 415 before Pillow sees it.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "PNG": (PNG_SIGNATURE,),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
    "WEBP": (b"RIFF",),  # and "WEBP" at offset 8, checked below
}
SUPPORTED = "PNG, JPEG, GIF, BMP, TIFF or WebP"
# A progressive JPEG is decoded once per scan, and its format lets a small file repeat scans at almost no cost in
# bytes, each one costing a whole image's decoding. Encoders write about ten; far more is an attack on decode time.
MAX_JPEG_SCANS = 100
START_OF_SCAN = b"\xff\xda"

# decode() checks the declared size against Limits.max_pixels itself, before decoding and with a message that
# names the size; Pillow's own global check would fire first with its own limit and wording.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """Base class: the upload cannot be turned into a digit image. The message is for the client."""


class EmptyImageError(ImageError):
    """No bytes, or an image of no pixels."""


class UndecodableImageError(ImageError):
    """A supported format's signature, but the data is corrupt or truncated."""


class UnsupportedImageError(ImageError):
    """Not one of the supported raster formats."""


class ImageTooLargeError(ImageError):
    """Declared dimensions above the pixel limit."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 40_000_000


def sniff_format(data: bytes) -> str:
    """The format named by the file's leading bytes (never by its name or declared content type)."""
    if not data:
        raise EmptyImageError("the uploaded file is empty")
    for name, prefixes in SIGNATURES.items():
        if any(data.startswith(prefix) for prefix in prefixes):
            if name == "WEBP" and data[8:12] != b"WEBP":
                continue
            return name
    raise UnsupportedImageError(f"unsupported file type: expected a {SUPPORTED} image")


def decode(data: bytes, limits: Limits) -> Image.Image:
    """Open, check the declared size against the pixel limit, then decode the first frame."""
    fmt = sniff_format(data)
    if fmt == "JPEG":
        check_jpeg_scans(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooLargeError(
                f"image is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,}"
            )
        image.seek(0)  # the first frame of a GIF, WebP or TIFF animation
        if fmt == "JPEG":  # a large photo decodes at a reduced scale directly: the digit finder needs no more
            image.draft(image.mode, (2 * WORK_SIDE, 2 * WORK_SIDE))
        image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:  # its message names the in-memory file object, which means nothing to a client
        raise UndecodableImageError(
            f"cannot decode the {fmt} data: it has a {fmt} signature, but its header is not valid {fmt} or "
            "describes an encoding this service cannot read"
        ) from None
    except Exception as error:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, struct.error, ...)
        raise UndecodableImageError(f"cannot decode the {fmt} data: {error}") from None
    if width == 0 or height == 0:
        raise EmptyImageError("the image has no pixels")
    if image.mode in ("P", "PA") and image.palette is None:
        raise UndecodableImageError(
            f"cannot decode the {fmt} data: its pixels are palette indexes but it has no palette"
        )
    try:
        ImageOps.exif_transpose(image, in_place=True)  # in place: otherwise every upload without EXIF is copied
    except Exception:  # unreadable EXIF (Pillow raises SyntaxError, ValueError, ...): the pixels are upright as stored
        log.info("ignored the unreadable EXIF data of a %s upload", fmt)
    return image


def check_jpeg_scans(data: bytes) -> None:
    """Refuse a JPEG of more than MAX_JPEG_SCANS scans before it is decoded. Counting the start-of-scan marker's
    bytes is exact in the compressed data, where a 0xFF byte is always followed by 0x00 or a marker, and can only
    overcount in metadata (an EXIF thumbnail's own scans, a few), never undercount."""
    scans = data.count(START_OF_SCAN)
    if scans > MAX_JPEG_SCANS:
        raise ImageTooLargeError(
            f"the JPEG holds {scans:,} scans; the limit is {MAX_JPEG_SCANS} (an encoder writes about ten)"
        )


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Float luminance 0-255, with any alpha composited onto a background that contrasts with the ink."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all():
            raise UndecodableImageError("the image's pixel values include NaN or infinity")
        # 16-bit samples use their whole range; a float or 32-bit image's scale is told by its largest value: the
        # unit scale (a float image's usual one), the 8-bit or the 16-bit range.
        peak = float(array.max())
        top = 65535.0 if image.mode.startswith("I;16") or peak > 255 else 255.0 if peak > 1 else 1.0
        return np.clip(array * (255.0 / top), 0, 255)
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        rgba = np.asarray(image, dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        gray = np.asarray(image.convert("RGB").convert("L"), dtype=np.float32)
        opaque = alpha[..., 0] > 0.5
        # Dark strokes on a transparent canvas sit on white; light strokes sit on black.
        backdrop = 255.0 if not opaque.any() or gray[opaque].mean() < 128 else 0.0
        return gray * alpha[..., 0] + backdrop * (1 - alpha[..., 0])
    if image.mode == "L":  # MNIST-style uploads: no conversion copy
        return np.asarray(image, dtype=np.float32)
    if image.mode == "LAB":  # its first channel is the lightness; Pillow converts LAB to no other mode
        return np.asarray(image.getchannel("L"), dtype=np.float32)
    try:
        return np.asarray(image.convert("L"), dtype=np.float32)
    except ValueError:  # a colour mode Pillow decodes but cannot convert
        raise UnsupportedImageError(f"unsupported colour mode {image.mode}: send RGB, grayscale or CMYK") from None


def has_two_levels(gray: np.ndarray) -> bool:
    """Is the picture black and white (any two levels)? A sparse look first rules most pictures out cheaply."""
    for view in (gray[::16, ::16], gray):
        low, high = view.min(), view.max()
        if not ((view == low) | (view == high)).all():
            return False
    return bool(high > low)  # the whole picture's levels, from the last look


def descreened(gray: np.ndarray) -> np.ndarray:
    """A dithered black-and-white picture as the greys its dots stand for; any other picture as it is. The digit
    finder would take each dot for a speck of ink, and a dotted grey paper for a pattern of them."""
    if not has_two_levels(gray):
        return gray
    darker = gray == gray.min()
    neighbourhood = np.ones((3, 3), np.float32)  # a pixel and its eight neighbours
    darker_around = cv2.filter2D(darker.astype(np.float32), -1, neighbourhood, borderType=cv2.BORDER_REPLICATE)
    # A pixel unlike all eight neighbours: a darker one with no darker neighbour, or a lighter one in darker ones.
    lone = np.count_nonzero(np.where(darker, darker_around == 1, darker_around == 8))
    dark_pixels = np.count_nonzero(darker)
    if lone < DITHER_GRAIN * min(dark_pixels, darker.size - dark_pixels):
        return gray
    return cv2.GaussianBlur(gray, (0, 0), DESCREEN)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def resize_longer_side(ink: np.ndarray, longer: int) -> Image.Image:
    height, width = ink.shape
    scale = longer / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def stroke_width(mask: Image.Image) -> int:
    """Twice the number of 3x3 erosions a binary ink mask survives: about the width of its thickest stroke."""
    erosions = 0
    while erosions < TARGET_STROKE and np.asarray(mask).any():
        mask = mask.filter(ImageFilter.MinFilter(3))
        erosions += 1
    return 2 * erosions


def normalise_strokes(ink: np.ndarray) -> np.ndarray:
    """Scale to WORK_BOX and thicken strokes that are thinner than MNIST's (a pen line on a large photo)."""
    work = resize_longer_side(ink, WORK_BOX)
    array = np.clip(np.asarray(work), 0, 255)
    mask = Image.fromarray(((array > 127) * 255).astype(np.uint8))
    width = stroke_width(mask)
    if width < TARGET_STROKE:
        size = (TARGET_STROKE - width) | 1  # MaxFilter takes an odd size
        work = Image.fromarray(array.astype(np.float32)).filter(ImageFilter.MaxFilter(size))
        array = np.asarray(work)
    return array


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place `digit` (at most 20x20) in a 28x28 frame with its centre of mass at pixel (14, 14), where MNIST
    puts it (measured: the mean over the test set is (13.99, 14.00))."""
    frame = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    height, width = digit.shape
    total = digit.sum()
    yy, xx = np.mgrid[:height, :width]
    com_y, com_x = (yy * digit).sum() / total, (xx * digit).sum() / total
    top = int(np.clip(round(IMAGE_SIDE / 2 - com_y), 0, IMAGE_SIDE - height))
    left = int(np.clip(round(IMAGE_SIDE / 2 - com_x), 0, IMAGE_SIDE - width))
    frame[top : top + height, left : left + width] = digit
    return frame


def soften(frame: np.ndarray) -> np.ndarray:
    """A Gaussian blur of SOFTENING px, rescaled so that the darkest ink is as dark as before."""
    darkest = float(frame.max())
    blurred = cv2.GaussianBlur(frame, (0, 0), SOFTENING)
    return np.minimum(blurred * (darkest / max(float(blurred.max()), 1e-6)), darkest)  # float rounding can pass it


def is_mnist_format(gray: np.ndarray) -> bool:
    """Already a 28x28 image made as MNIST's were (the digit's longer side scaled to 20 px, its centre of mass in the
    middle, on a dark background): fed as it is, so MNIST's own files get the model's own answer. Any other 28x28
    picture (a drawing shrunk to 28x28 whole, its digit filling the frame or off to one side; dark ink on light, whose
    light background spans the frame) is found and normalised like any upload."""
    if gray.shape != (IMAGE_SIDE, IMAGE_SIDE):
        return False
    _, ink = cv2.threshold(gray, MNIST_INK_SHARE * float(gray.max()), 0, cv2.THRESH_TOZERO)
    _, _, width, height = cv2.boundingRect((ink > 0).astype(np.uint8))
    if not MNIST_LONGER_SIDES[0] <= max(width, height) <= MNIST_LONGER_SIDES[1]:
        return False
    moments = cv2.moments(ink)
    centre = (moments["m10"] / moments["m00"], moments["m01"] / moments["m00"])
    return max(abs(c - IMAGE_SIDE / 2) for c in centre) <= MNIST_CENTRE_SLACK


def saturation(image: Image.Image) -> np.ndarray | None:
    """Each pixel's colour saturation, 0-255: (max - min of R, G, B) relative to its brightness (max), so a shadow
    dims a coloured table without making it look like grey paper. Below DARK_COLOUR the brightness counts as
    DARK_COLOUR: a dark pixel's hue is mostly noise. At about the size the digit finder looks for the sheet at
    (colour tells only the sheet from the table); None for an image without colour."""
    if image.mode not in ("RGB", "RGBA"):
        return None
    factor = max(1, max(image.size) // COLOUR_SIDE)
    rgb = np.asarray(image.reduce(factor) if factor > 1 else image, dtype=np.int16)[..., :3]
    brightest = rgb.max(axis=2)
    return ((brightest - rgb.min(axis=2)) * (255.0 / np.maximum(brightest, DARK_COLOUR))).astype(np.float32)


def is_drawing(image: Image.Image) -> bool:
    """Transparent pixels make a picture a drawing app's export: a photo has none."""
    if not image.has_transparency_data:
        return False
    return bool(np.asarray(image.convert("RGBA").getchannel("A")).min() < 255)


def normalise(
    gray: np.ndarray, chroma: np.ndarray | None = None, drawing: bool = False, softened: bool = True
) -> np.ndarray:
    """Grayscale array of any size -> 28x28 float32, bright ink on 0, centred as MNIST digits are (all 0 where no
    ink is found). `chroma` (optional) is each pixel's colour saturation, which tells a sheet of paper from a
    coloured table; a `drawing` has no sheet to look for; `softened` applies the final blur (`soften`)."""
    if is_mnist_format(gray):
        return gray.astype(np.float32)
    found = find_digit(descreened(gray), chroma, drawing)
    if found is None:  # blank, or too little contrast: the model sees an empty frame, which is never a digit
        return np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    ink = crop_to_ink(found)
    work = normalise_strokes(ink)
    digit = np.clip(np.asarray(resize_longer_side(work, DIGIT_BOX)), 0, None)
    digit = np.minimum(digit * (255.0 / max(float(digit.max()), 1e-6)), 255.0)  # float rounding can pass 255
    frame = centre_by_mass(digit)
    return soften(frame) if softened else frame


def preprocess(data: bytes, limits: Limits | None = None, softened: bool = True) -> np.ndarray:
    """Encoded image bytes -> float32 [28, 28], raw pixel scale 0-255, ink 255 (without the final blur when not
    `softened`: the training job's scene samples are read so)."""
    limits = limits or Limits()
    pixels = plain_png_pixels(data, limits.max_pixels)
    if pixels is not None:
        return normalise(pixels.astype(np.float32), softened=softened)
    image = decode(data, limits)
    return normalise(to_grayscale(image), saturation(image), is_drawing(image), softened)


def mnist_format_files(files: Sequence[bytes], limits: Limits) -> np.ndarray | None:
    """Plain grayscale PNGs already in MNIST's format (`is_mnist_format`) -> float32 [N, 28, 28], as `preprocess`
    makes them, in microseconds; None if any file is something else, which only `preprocess` reads or refuses."""
    images = []
    for data in files:
        pixels = plain_png_pixels(data, limits.max_pixels)
        if pixels is None or not is_mnist_format(gray := pixels.astype(np.float32)):
            return None
        images.append(gray)
    return images[0][None] if len(images) == 1 else np.stack(images)


def preprocess_files(files: Sequence[bytes], limits: Limits) -> np.ndarray:
    """Several uploads -> float32 [N, 28, 28]. With more than one, an error names the file at fault (and keeps
    its type, so its status code)."""
    if len(files) == 1:
        return preprocess(files[0], limits)[None]
    images = []
    for number, data in enumerate(files, 1):
        try:
            images.append(preprocess(data, limits))
        except ImageError as error:
            raise type(error)(f"file #{number}: {error}") from None
    return np.stack(images)
