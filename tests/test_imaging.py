"""Bytes -> 28x28: every accepted format and mode on real MNIST digits, and every refusal."""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from app.digit_finding import SHEET_SATURATION
from app.imaging import (
    MAX_JPEG_SCANS,
    EmptyImageError,
    ImageTooLargeError,
    Limits,
    UndecodableImageError,
    UnsupportedImageError,
    descreened,
    is_drawing,
    preprocess,
    saturation,
    sniff_format,
    soften,
)
from app.png_short_path import plain_png_pixels
from tests.uploads import (
    ODD_FILES,
    ODD_PICTURES,
    dark_on_white,
    encode,
    jpeg_of_many_scans,
    mnist_png,
    palette_png_without_palette,
    paper_jpeg,
    progressive_jpeg,
    scaled,
    shrunk_canvas,
    transparent_canvas_png,
)
from training.data import Mnist


@pytest.fixture(scope="module")
def seven(mnist: Mnist) -> np.ndarray:
    return mnist.test_images[0]  # the first test image is a 7


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation after a 1-px blur: a one-pixel shift of a thin stroke should not count as a different digit."""

    def blur(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x.astype(np.float32), 1)
        return sum(padded[dy : dy + 28, dx : dx + 28] for dy in range(3) for dx in range(3))

    return float(np.corrcoef(blur(a).ravel(), blur(b).ravel())[0, 1])


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[:28, :28]
    return float((yy * image).sum() / image.sum()), float((xx * image).sum() / image.sum())


def test_mnist_format_passes_through_unchanged(seven: np.ndarray) -> None:
    result = preprocess(mnist_png(seven))
    assert result.dtype == np.float32 and result.shape == (28, 28)
    np.testing.assert_array_equal(result, seven.astype(np.float32))


def test_mnist_files_pass_through_unchanged(mnist: Mnist) -> None:
    """MNIST's own files get the model's own answer: all but a rare odd one (a digit whose faint strokes leave a
    short core) are fed as they are."""
    digits = mnist.test_images[:2000]
    unchanged = sum(np.array_equal(preprocess(mnist_png(digit)), digit.astype(np.float32)) for digit in digits)
    assert unchanged >= 1998


def test_a_drawing_shrunk_whole_to_28_pixels_is_centred_as_mnist(mnist: Mnist) -> None:
    """A 28x28 picture whose digit fills the frame or sits to one side is not MNIST's format: it is found and
    normalised as any upload is (longer side 20 px, centre of mass in the middle)."""
    rng = np.random.default_rng(3)
    for digit in mnist.test_images[:20]:
        upload = shrunk_canvas(digit, rng)
        result = preprocess(upload, softened=False)
        assert not np.array_equal(result, np.asarray(Image.open(io.BytesIO(upload)), np.float32))
        rows, columns = np.nonzero(result)
        assert max(np.ptp(rows), np.ptp(columns)) + 1 in (19, 20, 21)
        assert np.allclose(centre_of_mass(result), (14, 14), atol=1)


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "L", {}),
        ("PNG", "RGB", {}),
        ("PNG", "P", {}),
        ("PNG", "I;16", {}),
        ("JPEG", "L", {"quality": 95}),
        ("JPEG", "RGB", {"quality": 90}),
        ("JPEG", "CMYK", {"quality": 90}),  # what print workflows export
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "L", {}),
        ("TIFF", "F", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("PNG", "1", {}),  # black and white, the greys dithered (Pillow's Floyd-Steinberg dots)
        ("TIFF", "1", {"compression": "group4"}),  # a fax's format
    ],
)
def test_every_format_and_mode_normalises_the_same_digit(seven: np.ndarray, fmt: str, mode: str, options: dict) -> None:
    """Dark-on-white, enlarged: the result is a centred 20-px-tall digit close to the MNIST original."""
    big = Image.fromarray(255 - seven).resize((112, 112), Image.Resampling.BICUBIC)
    image = big.convert("I;16") if mode == "I;16" else big.convert(mode)
    if mode == "I;16":
        image = Image.fromarray((np.asarray(big, dtype=np.uint16) * 257).astype(np.uint16))
    if mode == "F":  # a float image scaled 0-1, as numpy and scientific tools write them
        image = Image.fromarray(np.asarray(big, dtype=np.float32) / 255)
    result = preprocess(encode(image, fmt, **options))
    assert result.shape == (28, 28) and result.max() == pytest.approx(255, abs=1) and result.min() >= 0
    rows = np.flatnonzero(result.max(axis=1) > 30)
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # the longer side scaled to 20 px, as MNIST did
    com = centre_of_mass(result)
    assert abs(com[0] - 14) <= 0.5 and abs(com[1] - 14) <= 0.5
    assert similarity(result, seven) > 0.85


def test_only_a_dithered_picture_is_descreened(seven: np.ndarray) -> None:
    """A dithered black-and-white picture's dots are blurred back into greys; a thresholded one (a scan's or a
    binarised digit's solid strokes, 1 px lines), a greyscale one and a flat one are left as they are."""
    big = Image.fromarray(255 - seven).resize((112, 112), Image.Resampling.BICUBIC)
    on_grey_paper = Image.fromarray((30 + np.asarray(big, dtype=np.float32) * (200 / 255)).astype(np.uint8))
    dithered = np.asarray(on_grey_paper.convert("1").convert("L"), dtype=np.float32)
    smooth = descreened(dithered)
    assert smooth is not dithered and len(np.unique(smooth)) > 2
    paper = smooth[:20, :20]  # a corner of the paper, 230 before it was dithered
    assert abs(float(paper.mean()) - 230) < 15 and float(paper.std()) < float(dithered[:20, :20].std()) / 2
    thresholded = np.where(np.asarray(big) > 127, 255.0, 0.0).astype(np.float32)
    lines = np.full((100, 300), 255.0, dtype=np.float32)
    lines[50, 10:290] = lines[20:80, 10] = lines[20:80, 150] = 0  # a form's box, 1 px wide
    binarised = np.where(seven > 127, 255.0, 0.0).astype(np.float32)
    for picture in (thresholded, lines, binarised, np.asarray(big, dtype=np.float32), np.zeros((50, 50), np.float32)):
        assert descreened(picture) is picture


def test_transparent_canvas_and_paper_photo(seven: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    for data in (transparent_canvas_png(seven, rng), paper_jpeg(seven, rng)):
        result = preprocess(data)
        assert similarity(result, seven) > 0.85


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (40, 30), 0)
    image.info["transparency"] = 0  # palette entry 0 is transparent, as a GIF's or a PNG's tRNS says
    return image


@pytest.mark.parametrize(
    "image, drawing",
    [
        (Image.new("RGBA", (40, 30), (0, 0, 0, 0)), True),
        (Image.new("LA", (40, 30), (0, 0)), True),
        (Image.new("P", (40, 30), 0), False),
        (palette_with_transparency(), True),
        (Image.new("RGBA", (40, 30), (200, 30, 30, 255)), False),
        (Image.new("RGB", (40, 30), (200, 30, 30)), False),
        (Image.new("L", (40, 30), 200), False),
    ],
)
def test_only_a_picture_with_transparent_pixels_is_a_drawing(image: Image.Image, drawing: bool) -> None:
    """A drawing app's export has no sheet or table to look for; an opaque picture with an alpha channel may be."""
    assert is_drawing(image) is drawing


def test_a_colour_keeps_its_saturation_in_a_shadow() -> None:
    """A green table lit and in a shadow at 40 % is as coloured; grey-ish paper lit and shaded is not coloured."""
    lit, shaded = (Image.new("RGB", (40, 30), colour) for colour in [(60, 160, 60), (24, 64, 24)])
    paper, shaded_paper = (Image.new("RGB", (40, 30), colour) for colour in [(230, 225, 218), (92, 90, 87)])
    table = [float(saturation(image).mean()) for image in (lit, shaded)]  # type: ignore[union-attr]
    sheet = [float(saturation(image).mean()) for image in (paper, shaded_paper)]  # type: ignore[union-attr]
    assert abs(table[0] - table[1]) < 2 and min(table) > SHEET_SATURATION
    assert max(sheet) < SHEET_SATURATION / 2
    assert saturation(Image.new("L", (40, 30), 128)) is None


def test_exif_orientation_is_honoured(seven: np.ndarray) -> None:
    """A photo stored sideways with EXIF 'rotate 90 CW' (orientation 6) is read upright."""
    upright = Image.fromarray(255 - seven).resize((112, 112))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    with_exif = preprocess(encode(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes()))
    without = preprocess(encode(stored.convert("RGB"), "JPEG", quality=95))
    reference = preprocess(encode(upright.convert("RGB"), "JPEG", quality=95))
    assert np.abs(with_exif - reference).mean() < np.abs(without - reference).mean() / 3


def test_gif_uses_the_first_frame(seven: np.ndarray, mnist: Mnist) -> None:
    frames = [Image.fromarray(255 - d).resize((56, 56)).convert("P") for d in (seven, mnist.test_images[1])]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    first_only = preprocess(encode(frames[0], "GIF"))
    np.testing.assert_array_equal(preprocess(data), first_only)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyImageError),
        (b"hello, this is text and not an image", UnsupportedImageError),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="5"/></svg>', UnsupportedImageError),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", UnsupportedImageError),
        (gzip.compress(b"x" * 100), UnsupportedImageError),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, UndecodableImageError),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 10, UndecodableImageError),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", UnsupportedImageError),
    ],
    ids=["empty", "text", "svg", "pdf", "gzip", "bad-png", "bad-jpeg", "wav-riff"],
)
def test_refusals(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        preprocess(data)


@pytest.mark.parametrize("make", [*ODD_FILES.values(), progressive_jpeg], ids=[*ODD_FILES, "progressive-jpeg"])
def test_files_odd_in_metadata_or_colour_mode_are_read_as_the_plain_file(seven: np.ndarray, make) -> None:
    """A colour mode Pillow converts to no other (CIELab: read by its lightness), EXIF that is not EXIF (ignored:
    the pixels are upright as stored), a progressive JPEG: the digit as the plain PNG of the same picture gives it."""
    plain = preprocess(encode(dark_on_white(seven), "PNG"))
    assert similarity(preprocess(make(seven)), plain) > 0.97


def test_a_palette_image_without_its_palette_is_undecodable() -> None:
    with pytest.raises(UndecodableImageError, match="no palette"):
        preprocess(palette_png_without_palette())


def test_a_jpeg_of_too_many_scans_is_refused_before_decoding(seven: np.ndarray) -> None:
    """Each scan of a progressive JPEG is a whole decoding of the image and costs the file a few bytes: the count
    is checked first. The limit leaves room for every encoder's progressions (about ten scans)."""
    assert 5 <= progressive_jpeg(seven).count(b"\xff\xda") <= 20
    assert preprocess(jpeg_of_many_scans(seven, MAX_JPEG_SCANS)).any()
    with pytest.raises(ImageTooLargeError, match=f"{MAX_JPEG_SCANS + 1} scans"):
        preprocess(jpeg_of_many_scans(seven, MAX_JPEG_SCANS + 1))


def test_a_float_image_holding_nan_is_refused_saying_so(seven: np.ndarray) -> None:
    pixels = np.where(seven > 0, np.nan, 1.0).astype(np.float32)
    with pytest.raises(UndecodableImageError, match="NaN or infinity"):
        preprocess(encode(Image.fromarray(pixels), "TIFF"))


def test_truncated_png_is_undecodable(seven: np.ndarray) -> None:
    data = encode(Image.fromarray(255 - seven).resize((200, 200)), "PNG")
    with pytest.raises(UndecodableImageError):
        preprocess(data[: len(data) // 2])


@pytest.mark.parametrize(
    "image",
    [Image.new("L", (64, 64), 255), Image.new("RGB", (640, 480), (200, 180, 150)), Image.new("L", (28, 28), 0)],
    ids=["white", "beige-photo", "mnist-black"],
)
def test_blank_image_gives_an_empty_frame(image: Image.Image) -> None:
    """No ink found is not an error: the model is shown an empty frame, which the service answers as no digit."""
    assert preprocess(encode(image, "PNG")).shape == (28, 28)
    assert not preprocess(encode(image, "PNG")).any()


@pytest.mark.parametrize("picture", ODD_PICTURES.values(), ids=ODD_PICTURES.keys())
def test_odd_pictures_give_a_frame_in_mnist_range(picture: Image.Image) -> None:
    """A mask with no background has no finite distance to it, and float rounding can pass 255: neither reaches
    the model."""
    frame = preprocess(encode(picture, "PNG"))
    assert frame.shape == (28, 28) and frame.dtype == np.float32
    assert np.isfinite(frame).all() and frame.min() >= 0 and frame.max() <= 255


def test_softening_blurs_hard_edges_and_keeps_the_darkest_ink_and_the_centre() -> None:
    bar = np.zeros((28, 28), dtype=np.float32)
    bar[6:22, 12:16] = 255.0  # a hard-edged stroke, as a mask leaves it
    soft = soften(bar)
    assert soft.dtype == np.float32 and soft.max() == 255.0 and soft.min() >= 0
    assert 0 < soft[14, 11] < 255 and 0 < soft[14, 12] < 255  # ink beside the edge and at it, in between
    assert np.allclose(centre_of_mass(soft), centre_of_mass(bar), atol=1e-3)
    assert not soften(np.zeros((28, 28), dtype=np.float32)).any()


def test_the_blur_is_the_last_step_and_can_be_left_out(seven: np.ndarray) -> None:
    """The training job reads its scene samples without it; everything else is the same."""
    plain_grayscale = encode(Image.fromarray(255 - np.asarray(scaled(seven, 64))), "PNG")  # the short path
    for upload in (plain_grayscale, paper_jpeg(seven, np.random.default_rng(0))):
        sharp = preprocess(upload, softened=False)
        np.testing.assert_allclose(preprocess(upload), soften(sharp), atol=1e-3)
        assert not np.array_equal(preprocess(upload), sharp)
    mnist_format = mnist_png(seven)
    np.testing.assert_array_equal(preprocess(mnist_format, softened=False), preprocess(mnist_format))


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge size: decoding it would need width*height bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="50000x50000"):
        preprocess(png_declaring(50_000, 50_000))
    with pytest.raises(ImageTooLargeError):
        preprocess(png_declaring(3000, 3000), Limits(max_pixels=1_000_000))


def test_format_is_decided_by_bytes_not_name() -> None:
    assert sniff_format(encode(Image.new("L", (4, 4)), "BMP")) == "BMP"
    assert sniff_format(encode(Image.new("RGB", (4, 4)), "WEBP")) == "WEBP"
    with pytest.raises(UnsupportedImageError):
        sniff_format(b"GIF" + b"not really")


def with_text(**options: object) -> dict[str, object]:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "a scanner")
    return {**options, "pnginfo": info, "dpi": (300, 300)}


@pytest.mark.parametrize(
    "options",
    [{}, {"optimize": True}, {"compress_level": 0}, {"compress_level": 9}, with_text()],
    ids=["default", "optimize", "stored", "level-9", "text-and-dpi"],
)
def test_plain_grayscale_pngs_take_the_short_path_with_the_same_pixels(
    mnist: Mnist, options: dict[str, object]
) -> None:
    """Real test digits (28x28, and enlarged to other sizes, so that every PNG filter type occurs): the chunk walk
    and Pillow's decoder give exactly the pixels Image.open gives."""
    for number, digit in enumerate(mnist.test_images[:60]):
        image = Image.fromarray(digit) if number % 2 else scaled(digit, 28 + 7 * number)
        data = encode(image, "PNG", **options)
        pixels = plain_png_pixels(data, Limits().max_pixels)
        assert pixels is not None, f"image {number} took the general path"
        np.testing.assert_array_equal(pixels, np.asarray(Image.open(io.BytesIO(data))))


def exif_png(digit: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    return encode(Image.fromarray(digit), "PNG", exif=exif.tobytes())


def interlaced_png(digit: np.ndarray) -> bytes:
    """The header says Adam7 (Pillow does not write interlaced PNGs; the header alone must send it elsewhere)."""
    data = encode(Image.fromarray(digit), "PNG")
    return data[:8] + chunk(b"IHDR", data[16:28] + b"\x01") + data[33:]


@pytest.mark.parametrize(
    "make",
    [
        lambda digit: encode(Image.fromarray(digit).convert("RGB"), "PNG"),
        lambda digit: encode(Image.fromarray(digit).convert("P"), "PNG"),
        lambda digit: encode(Image.fromarray(digit.astype(np.uint16) * 257), "PNG"),
        interlaced_png,
        lambda digit: encode(Image.fromarray(digit), "PNG", transparency=0),
        exif_png,
        lambda digit: encode(Image.fromarray(digit), "PNG")[:-20],  # cut off before IEND
        lambda digit: encode(Image.fromarray(digit), "PNG").replace(b"IEND", b"IEND\x00", 1),  # bad CRC
        lambda digit: png_declaring(28, 28),  # valid chunks, too little image data
        lambda digit: encode(Image.fromarray(digit), "JPEG"),
    ],
    ids=[
        "rgb",
        "palette",
        "16-bit",
        "interlaced",
        "transparency",
        "exif",
        "truncated",
        "bad-crc",
        "short-data",
        "jpeg",
    ],
)
def test_anything_else_takes_the_general_path(seven: np.ndarray, make) -> None:
    assert plain_png_pixels(make(seven), Limits().max_pixels) is None


def test_the_general_path_still_answers_what_the_short_path_declines(seven: np.ndarray) -> None:
    """A grayscale PNG's EXIF orientation is honoured, and a PNG with too little data is refused as undecodable."""
    upright = preprocess(mnist_png(seven))
    np.testing.assert_array_equal(preprocess(exif_png(np.rot90(seven))), upright)  # stored turned 90 degrees left
    with pytest.raises(UndecodableImageError):
        preprocess(png_declaring(28, 28))
    with pytest.raises(ImageTooLargeError):
        preprocess(mnist_png(seven), Limits(max_pixels=28 * 27))
