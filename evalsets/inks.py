"""What is written on the page: ink masks (float32, 0 = paper, 1 = full ink) of digits and of things that are not.

Digits come from the MNIST test set (never its training images) and from scikit-learn's bundled 8x8 digits (other
writers). Non-digits are font glyphs from the fonts matplotlib ships, handwriting-like letters, shapes (outlines
such as polygons, a heart or a cloud, and figures of strokes such as a spiral or a smiley) and scribbles. Every
parameter is drawn from the generator given, so a set is reproducible from its seed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Letters that cannot pass for a digit in any common hand (no O, I, l, S, Z, B, G, g, q, b, T, t, ...).
LETTERS = "ACEFHKMNPRUVWXYacdefhkmnpruvwxy"

# Handwriting-like capitals as polylines in a unit square (x right, y down).
STROKE_LETTERS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0.1, 1), (0.5, 0), (0.9, 1)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.85, 0), (0.15, 0), (0.15, 1), (0.85, 1)], [(0.15, 0.5), (0.7, 0.5)]],
    "F": [[(0.85, 0), (0.15, 0), (0.15, 1)], [(0.15, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0), (0.15, 1)], [(0.85, 0), (0.85, 1)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.2, 0), (0.2, 1)], [(0.85, 0), (0.2, 0.55), (0.85, 1)]],
    "M": [[(0.1, 1), (0.15, 0), (0.5, 0.6), (0.85, 0), (0.9, 1)]],
    "N": [[(0.15, 1), (0.15, 0), (0.85, 1), (0.85, 0)]],
    "R": [[(0.2, 1), (0.2, 0), (0.7, 0.05), (0.8, 0.25), (0.7, 0.45), (0.2, 0.5), (0.85, 1)]],
    "V": [[(0.1, 0), (0.5, 1), (0.9, 0)]],
    "W": [[(0.05, 0), (0.27, 1), (0.5, 0.35), (0.73, 1), (0.95, 0)]],
    "X": [[(0.1, 0), (0.9, 1)], [(0.9, 0), (0.1, 1)]],
    "Y": [[(0.1, 0), (0.5, 0.5), (0.9, 0)], [(0.5, 0.5), (0.5, 1)]],
    "h": [[(0.2, 0), (0.2, 1)], [(0.2, 0.6), (0.5, 0.45), (0.8, 0.6), (0.8, 1)]],
    "m": [[(0.1, 1), (0.1, 0.4), (0.3, 0.35), (0.5, 0.5), (0.5, 1)], [(0.5, 0.5), (0.7, 0.35), (0.9, 0.45), (0.9, 1)]],
    "w": [[(0.05, 0.3), (0.27, 1), (0.5, 0.5), (0.73, 1), (0.95, 0.3)]],
    "x": [[(0.15, 0.3), (0.85, 1)], [(0.85, 0.3), (0.15, 1)]],
}

# Outlines, drawn closed (and filled at times), and figures of open strokes. No bare line, bracket or tick: turned
# at random, each of those is a 1, a 7 or a 2's tail.
SHAPES = (
    "circle",
    "ellipse",
    "square",
    "rectangle",
    "triangle",
    "star",
    "arrow",
    "cross",
    "heart",
    "pentagon",
    "hexagon",
    "octagon",
    "diamond",
    "house",
    "cloud",
    "crescent",
)
FIGURES = ("spiral", "plus", "smiley")
JITTER_KNOTS = 12


def upscale(ink: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A small ink mask enlarged so its longer side is `side`, with a randomly chosen interpolation."""
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA][int(rng.integers(3))]
    return np.clip(cv2.resize(ink.astype(np.float32), size, interpolation=method), 0, 1)


def mnist_digit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


@cache
def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 1,797 digits (8x8, 0-16) by writers other than MNIST's, and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


@cache
def font_files() -> tuple[Path, ...]:
    """The Latin text fonts matplotlib ships (DejaVu and STIX), so no system font is needed."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return tuple(sorted(p for p in folder.glob("*.ttf") if p.name.startswith(("DejaVuS", "STIXGeneral"))))


def text_mask(text: str, font: Path, size: int, stroke: int = 0) -> np.ndarray:
    """Rendered text as an ink mask cropped to its ink, padded by a few pixels."""
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text, stroke_width=stroke)
    image = Image.new("L", (int(right - left) + 8, int(bottom - top) + 8), 0)
    ImageDraw.Draw(image).text((4 - left, 4 - top), text, fill=255, font=face, stroke_width=stroke, stroke_fill=255)
    return np.asarray(image, dtype=np.float32) / 255.0


def font_letter(rng: np.random.Generator) -> np.ndarray:
    fonts = font_files()
    letter = LETTERS[int(rng.integers(len(LETTERS)))]
    return text_mask(letter, fonts[int(rng.integers(len(fonts)))], int(rng.integers(40, 120)), int(rng.integers(0, 3)))


def polyline_canvas(
    strokes: list[np.ndarray], rng: np.random.Generator, side: int = 96, thickness: int | None = None
) -> np.ndarray:
    """Strokes given in [0, 1] coordinates drawn anti-aliased with a pen of random width."""
    canvas = np.zeros((side, side), dtype=np.uint8)
    width = thickness or int(rng.integers(4, 14))
    margin = side * 0.15
    for stroke in strokes:
        points = np.round((margin + stroke * (side - 2 * margin)) * 16).astype(np.int32)
        cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, 255, width, cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def jittered(points: list[tuple[float, float]], rng: np.random.Generator, shear: float) -> np.ndarray:
    """The points moved a little, as a hand draws them, and sheared. A long curve wavers smoothly between
    JITTER_KNOTS moved points rather than point by point, which would make it a scribble."""
    array = np.asarray(points, dtype=np.float64)
    knots = min(len(array), JITTER_KNOTS)
    moves = rng.normal(0, 0.04, (knots, 2))
    if knots < len(array):
        along = np.linspace(0, knots - 1, len(array))
        moves = np.column_stack([np.interp(along, np.arange(knots), moves[:, i]) for i in range(2)])
    array = array + moves
    array[:, 0] += shear * (0.5 - array[:, 1])
    return np.clip(array, -0.1, 1.1)


def stroke_letter(rng: np.random.Generator) -> np.ndarray:
    names = sorted(STROKE_LETTERS)
    shape = STROKE_LETTERS[names[int(rng.integers(len(names)))]]
    shear = float(rng.uniform(-0.35, 0.35))
    return polyline_canvas([jittered(s, rng, shear) for s in shape], rng)


def star_points(tips: int, inner: float) -> list[tuple[float, float]]:
    angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 2 * tips + 1)
    radii = np.where(np.arange(2 * tips + 1) % 2 == 0, 0.5, 0.5 * inner)
    return [(0.5 + r * np.cos(a), 0.5 + r * np.sin(a)) for r, a in zip(radii, angles, strict=True)]


def shape_outline(name: str, rng: np.random.Generator) -> list[tuple[float, float]]:
    """The outline of a named shape as a closed polyline in the unit square."""
    turn = np.linspace(0, 2 * np.pi, 60)
    if name in ("circle", "ellipse"):
        squash = 1.0 if name == "circle" else float(rng.uniform(0.35, 0.7))
        return [(0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * squash * np.sin(t)) for t in turn]
    if name == "heart":
        return [
            (0.5 + 0.03 * 16 * np.sin(t) ** 3, 0.45 - 0.03 * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t)))
            for t in turn
        ]
    if name == "star":
        return star_points(int(rng.integers(5, 8)), float(rng.uniform(0.35, 0.55)))
    if name in ("pentagon", "hexagon", "octagon"):
        corners = np.linspace(-np.pi / 2, 1.5 * np.pi, {"pentagon": 5, "hexagon": 6, "octagon": 8}[name] + 1)
        return [(0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in corners]
    if name == "diamond":
        half = float(rng.uniform(0.3, 0.5))
        return [(0.5, 0), (0.5 + half, 0.5), (0.5, 1), (0.5 - half, 0.5), (0.5, 0)]
    if name == "house":
        eaves = float(rng.uniform(0.3, 0.5))
        return [(0, eaves), (0.5, 0), (1, eaves), (1, 1), (0, 1), (0, eaves)]
    if name == "cloud":
        radii = 0.38 + 0.12 * np.abs(np.sin(int(rng.integers(5, 9)) * turn / 2))  # 5-8 bumps
        return list(zip(0.5 + radii * np.cos(turn), 0.5 + 0.7 * radii * np.sin(turn), strict=True))
    if name == "crescent":
        inner = float(rng.uniform(0.2, 0.35))  # how far the inner circle is moved: a fat crescent, no bracket
        outer = [(0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * np.sin(t)) for t in np.linspace(0.6, 2 * np.pi - 0.6, 40)]
        back = [(0.5 + inner + 0.45 * np.cos(t), 0.5 + 0.45 * np.sin(t)) for t in np.linspace(2 * np.pi - 1.2, 1.2, 30)]
        return [*outer, *back, outer[0]]
    if name == "triangle":
        return [(0.5, 0), (1, 1), (0, 1), (0.5, 0)]
    if name == "arrow":
        return [(0, 0.4), (0.6, 0.4), (0.6, 0.15), (1, 0.5), (0.6, 0.85), (0.6, 0.6), (0, 0.6), (0, 0.4)]
    if name == "cross":
        arm = [(0.4, 0), (0.6, 0), (0.6, 0.4), (1, 0.4), (1, 0.6), (0.6, 0.6), (0.6, 1), (0.4, 1), (0.4, 0.6)]
        return [*arm, (0, 0.6), (0, 0.4), (0.4, 0.4), (0.4, 0)]
    height = 1.0 if name == "square" else float(rng.uniform(0.35, 0.65))
    top = (1 - height) / 2
    return [(0, top), (1, top), (1, top + height), (0, top + height), (0, top)]


def figure_strokes(name: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """The strokes of a named figure of open strokes in the unit square."""
    if name == "spiral":
        turns = float(rng.uniform(2, 3.5))
        t = np.linspace(0, 2 * np.pi * turns, 120)
        r = 0.5 * t / t[-1]
        return [list(zip(0.5 + r * np.cos(t), 0.5 + r * np.sin(t), strict=True))]
    if name == "smiley":
        t = np.linspace(0, 2 * np.pi, 60)
        mouth = np.linspace(0.2 * np.pi, 0.8 * np.pi, 20)
        return [
            list(zip(0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * np.sin(t), strict=True)),
            [(0.33, 0.35), (0.35, 0.37)],
            [(0.65, 0.35), (0.67, 0.37)],
            list(zip(0.5 + 0.28 * np.cos(mouth), 0.5 + 0.28 * np.sin(mouth), strict=True)),
        ]
    return [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]]  # a plus: two strokes, not a cross's outline


def shape(rng: np.random.Generator) -> np.ndarray:
    """An outline (filled at times) or a figure of open strokes, jittered, sheared and turned at random."""
    names = SHAPES + FIGURES
    name = names[int(rng.integers(len(names)))]
    outline = name in SHAPES
    strokes = [shape_outline(name, rng)] if outline else figure_strokes(name, rng)
    shear = float(rng.uniform(-0.15, 0.15))
    angle = float(rng.uniform(0, 2 * np.pi))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = [(jittered(stroke, rng, shear) - 0.5) @ rotation.T * 0.8 + 0.5 for stroke in strokes]
    drawn = polyline_canvas(turned, rng)
    if outline and rng.random() < 0.35:  # filled
        points = np.round(14.4 + turned[0] * (96 - 28.8)).astype(np.int32)
        filled = np.zeros((96, 96), dtype=np.uint8)
        cv2.fillPoly(filled, [points.reshape(-1, 1, 2)], 255, cv2.LINE_AA)
        drawn = np.maximum(drawn, filled.astype(np.float32) / 255.0)
    return drawn


def scribble(rng: np.random.Generator) -> np.ndarray:
    """One to three smooth random strokes, or a zig-zag hatching."""
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.3:
            count = int(rng.integers(4, 12))
            xs = np.linspace(0, 1, count) + rng.normal(0, 0.03, count)
            ys = np.where(np.arange(count) % 2 == 0, 0.1, 0.9) + rng.normal(0, 0.1, count)
            strokes.append(np.column_stack([xs, ys]))
            continue
        steps = rng.normal(0, 0.25, (int(rng.integers(6, 25)), 2))
        path = np.cumsum(steps, axis=0)
        kernel = np.ones(3) / 3  # smooth the walk into a pen movement
        path = np.column_stack([np.convolve(path[:, i], kernel, mode="valid") for i in range(2)])
        span = np.ptp(path, axis=0).max() or 1.0
        strokes.append((path - path.min(axis=0)) / span)
    return polyline_canvas(strokes, rng)
