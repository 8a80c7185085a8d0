"""MNIST's own kind of file, a plain 8-bit grayscale PNG, read without Pillow's general path; and a PNG's declared
size read from its header. Anything unusual returns None, and the caller takes the general path (app.imaging).

The one hand-made decoder of the service, kept for its measured gain (docs/benchmark.md); tests/test_imaging.py
checks it gives the same pixels as Pillow on thousands of files saved in different ways.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def declared_png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG's header states it (fixed offsets: no decoding); None for other data."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def declared_gray_png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG whose header states 8-bit grayscale, without interlacing (MNIST's own kind of file);
    None for other data."""
    size = declared_png_size(data)
    return None if size is None or data[24:29] != GRAY_8BIT_HEADER else size


# Chunks a plain grayscale PNG may carry that do not change what its pixels mean: text, resolution, time stamp.
# Anything else (tRNS transparency, eXIf orientation, colour profiles, APNG frames...) takes the general path.
PLAIN_PNG_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"tIME"})
# IHDR after width and height: bit depth 8, grayscale, deflate, filter method 0, no interlacing.
GRAY_8BIT_HEADER = bytes([8, 0, 0, 0, 0])


def plain_png_pixels(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The pixels of an 8-bit grayscale, non-interlaced PNG with valid chunks (MNIST's own kind of file), or None
    for anything else, including any doubt, so that the general path (app.imaging.decode) gives its usual answer
    or error.

    For a small file Pillow's general path spends far more time in Python (plugin set-up, chunk reader, tile loader,
    EXIF check) than in decoding; this walks the chunks itself and hands the image data to Pillow's own PNG decoder
    ("zip"), which undoes every PNG filter type. Same pixels; docs/benchmark.md has the cost of both.
    """
    size = declared_gray_png_size(data)
    if size is None:
        return None
    width, height = size
    if not 0 < width * height <= max_pixels:
        return None
    image_data: list[bytes] = []
    position = 8
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind, end = data[position + 4 : position + 8], position + 8 + length
        if end + 4 > len(data) or struct.unpack_from(">I", data, end)[0] != zlib.crc32(data[position + 4 : end]):
            return None
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            image_data.append(data[position + 8 : end])
        elif kind not in PLAIN_PNG_CHUNKS and position != 8:  # the first chunk is the IHDR checked above
            return None
        position = end + 4
    else:
        return None  # no IEND: a truncated file
    try:
        image = Image.frombytes("L", (width, height), b"".join(image_data), "zip", "L")
    except ValueError:  # corrupt or too little image data
        return None
    return np.frombuffer(image.tobytes(), np.uint8).reshape(height, width)
