"""Turning real MNIST digits into the kinds of files people upload: the tests' own image factory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageFilter

from app.png_short_path import PNG_SIGNATURE


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def mnist_png(digit: np.ndarray) -> bytes:
    """The test image exactly as MNIST stores it: 28x28 grayscale, ink 255 on 0."""
    return encode(Image.fromarray(digit.astype(np.uint8), mode="L"), "PNG")


def scaled(digit: np.ndarray, side: int) -> Image.Image:
    return Image.fromarray(digit.astype(np.uint8), mode="L").resize((side, side), Image.Resampling.BICUBIC)


def paper_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on white paper, enlarged to a few hundred pixels, off-centre on a wider page, RGB JPEG."""
    side = int(rng.integers(120, 260))
    ink = np.asarray(scaled(digit, side), dtype=np.float32) / 255.0
    height, width = int(rng.integers(side + 20, 420)), int(rng.integers(side + 20, 480))
    page = np.full((height, width, 3), 245.0, dtype=np.float32)
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    pen = np.array([25.0, 30.0, 60.0])  # blue-black ink
    region = page[top : top + side, left : left + side]
    page[top : top + side, left : left + side] = region * (1 - ink[..., None]) + pen * ink[..., None]
    page += rng.normal(0, 4, page.shape)
    return encode(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB"), "JPEG", quality=85)


def transparent_canvas_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Black strokes on a fully transparent RGBA canvas, as a browser canvas exports them."""
    side = int(rng.integers(150, 280))
    size = 300
    alpha = np.zeros((size, size), dtype=np.uint8)
    top, left = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
    alpha[top : top + side, left : left + side] = np.asarray(scaled(digit, side))
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def shrunk_canvas(digit: np.ndarray, rng: np.random.Generator, fmt: str = "PNG") -> bytes:
    """A marker's digit drawn white on a black 280 px canvas, anywhere and at 45-95 % of its side, then the whole
    canvas shrunk to 28x28, as a home-made MNIST demo sends it: the digit fills the frame or sits to one side. As a
    grayscale PNG, or an RGB JPEG."""
    rows, columns = np.nonzero(digit)
    crop = Image.fromarray(digit[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1].astype(np.uint8))
    scale = rng.uniform(0.45, 0.95) * 280 / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    drawn = crop.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.MaxFilter(int(rng.integers(1, 6)) * 2 + 1))
    canvas = Image.new("L", (280, 280))
    canvas.paste(drawn, (int(rng.integers(0, 281 - drawn.width)), int(rng.integers(0, 281 - drawn.height))))
    shrunk = canvas.resize((28, 28), Image.Resampling.BOX)
    return encode(shrunk.convert("RGB") if fmt == "JPEG" else shrunk, fmt)


def photo_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of pen on paper: uneven lighting across the page, grain, a thin pen line, large JPEG."""
    side = 600
    ink_image = Image.fromarray(digit.astype(np.uint8), "L").resize((side, side), Image.Resampling.BICUBIC)
    ink = np.asarray(ink_image.filter(ImageFilter.MinFilter(9)), dtype=np.float32) / 255.0  # thinner strokes
    height, width = 900, 800
    yy, xx = np.mgrid[:height, :width]
    lighting = 150 + 70 * (xx / width) + 20 * (yy / height)  # brighter to the right, as under a desk lamp
    page = np.repeat(lighting[..., None], 3, axis=2).astype(np.float32)
    top, left = int(rng.integers(50, height - side - 50)), int(rng.integers(50, width - side - 50))
    region = page[top : top + side, left : left + side]
    page[top : top + side, left : left + side] = region * (1 - 0.8 * ink[..., None])
    page += rng.normal(0, 6, page.shape)
    return encode(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB"), "JPEG", quality=80)


def thick_png(digit: np.ndarray) -> bytes:
    """A digit drawn with a marker: strokes several times MNIST's width, dark on white."""
    big = scaled(digit, 200).filter(ImageFilter.MaxFilter(15))
    return encode(Image.fromarray(255 - np.asarray(big)), "PNG")


def stripes(width: int, height: int) -> Image.Image:
    pixels = np.zeros((height, width), np.uint8)
    pixels[:, ::2] = 255
    return Image.fromarray(pixels)


# Valid pictures at the edges of what the digit finder meets: no background at all, a single row, stripes.
ODD_PICTURES = {
    "one-pixel": Image.new("L", (1, 1), 0),
    "a-row-of-stripes": stripes(500, 1),
    "a-column-of-noise": Image.fromarray(np.random.default_rng(0).integers(0, 256, (500, 1), dtype=np.uint8)),
    "a-thin-strip-of-ink": Image.new("RGB", (200, 3), (20, 20, 20)),
    "fine-stripes": stripes(64, 64).convert("1"),
}


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def dark_on_white(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(255 - np.asarray(scaled(digit, 112))).convert("RGB")


# Files that are odd in their metadata or colour mode, not in their pixels: each is read as the plain file is.
def lab_tiff(digit: np.ndarray) -> bytes:
    """A CIELab TIFF (what some scanners and Photoshop write), which Pillow converts to no other mode."""
    return encode(dark_on_white(digit).convert("LAB"), "TIFF")


def png_with_unreadable_exif(digit: np.ndarray) -> bytes:
    """A PNG whose eXIf chunk does not hold the TIFF structure EXIF is, as a careless tool writes it."""
    plain = encode(dark_on_white(digit), "PNG")
    header_end = 8 + 25  # the signature and the IHDR chunk
    return plain[:header_end] + png_chunk(b"eXIf", b"XX*\x00\x08\x00\x00\x00") + plain[header_end:]


def webp_with_unreadable_exif(digit: np.ndarray) -> bytes:
    return encode(dark_on_white(digit), "WEBP", lossless=True, exif=b"not EXIF at all")


ODD_FILES = {
    "cielab-tiff": lab_tiff,
    "png-exif-not-tiff": png_with_unreadable_exif,
    "webp-exif-not-tiff": webp_with_unreadable_exif,
}


def palette_png_without_palette() -> bytes:
    """Colour type 3 (palette indexes) with no PLTE chunk: a broken file."""
    header = struct.pack(">IIBBBBB", 8, 8, 8, 3, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 72)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def progressive_jpeg(digit: np.ndarray) -> bytes:
    return encode(dark_on_white(digit), "JPEG", quality=90, progressive=True)


def jpeg_of_many_scans(digit: np.ndarray, scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated until the file holds `scans` of them: a few bytes more per
    scan, a whole image's decoding more per scan."""
    data = progressive_jpeg(digit)
    last_scan = data.rindex(b"\xff\xda")
    body, end = data[last_scan:-2], data[-2:]  # the last scan, and the end-of-image marker
    return data[:last_scan] + body * (scans - data.count(b"\xff\xda") + 1) + end
