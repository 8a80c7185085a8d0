"""Non-digits of kinds that neither the training job nor the other evaluation sets draw, scored by one or more models.

The negatives set and the training non-digits come from the same generators (evalsets.inks, on other random
streams), so the negatives set says how well a model tells the kinds it was trained on. Uploads come from other
hands and fonts; this set measures how the digit score carries over to kinds it was never shown: letters in the
Computer Modern fonts, Lissajous figures, printed textures and handwritten words, each in the evaluation sets' scenes.

Run: .venv/bin/python -m evalsets.unseen --out /tmp/unseen --model models/mnist/13 --model models/mnist/12
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np

from evalsets import inks, make

Ink = Callable[[np.random.Generator], np.ndarray]
COMPUTER_MODERN = ("cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")
STREAM = 2000  # apart from the evaluation sets' streams (0-5) and the training job's (1000)


@cache
def computer_modern_fonts() -> tuple[Path, ...]:
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return tuple(folder / name for name in COMPUTER_MODERN)


def computer_modern_letter(rng: np.random.Generator) -> np.ndarray:
    fonts = computer_modern_fonts()
    letter = inks.LETTERS[int(rng.integers(len(inks.LETTERS)))]
    font = fonts[int(rng.integers(len(fonts)))]
    return inks.text_mask(letter, font, int(rng.integers(40, 120)), int(rng.integers(3)))


def lissajous(rng: np.random.Generator) -> np.ndarray:
    """A Lissajous figure whose two frequencies differ (equal ones draw an ellipse, a 0)."""
    slow = int(rng.integers(1, 5))
    fast = slow + int(rng.integers(1, 3))
    turn = np.linspace(0, 2 * np.pi, 300)
    points = np.column_stack([0.5 + 0.5 * np.sin(slow * turn + rng.uniform(0, 3)), 0.5 + 0.5 * np.sin(fast * turn)])
    return inks.polyline_canvas([points], rng)


def texture(rng: np.random.Generator) -> np.ndarray:
    """Stripes, a chequerboard or a grid of dots at a random angle and pitch."""
    side = 96
    rows, cols = np.mgrid[:side, :side].astype(np.float32)
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(0.15, 0.5)
    across = np.sin((cols * np.cos(angle) + rows * np.sin(angle)) * frequency)
    along = np.sin((rows * np.cos(angle) - cols * np.sin(angle)) * frequency)
    pattern = [across > 0, (across > 0) ^ (along > 0), (across > 0.6) & (along > 0.6)][int(rng.integers(3))]
    return pattern.astype(np.float32)


def handwritten_word(rng: np.random.Generator) -> np.ndarray:
    """Two or three of the pen-drawn letters side by side, as one word."""
    names = sorted(inks.STROKE_LETTERS)
    shear, count = float(rng.uniform(-0.3, 0.3)), int(rng.integers(2, 4))
    strokes = []
    for place in range(count):
        for stroke in inks.STROKE_LETTERS[names[int(rng.integers(len(names)))]]:
            points = inks.jittered(stroke, rng, shear)
            strokes.append(np.column_stack([(points[:, 0] + 1.2 * place) / (1.2 * count), 0.3 + points[:, 1] / count]))
    return inks.polyline_canvas(strokes, rng, side=192, thickness=int(rng.integers(4, 12)))


KINDS: dict[str, Ink] = {
    "Computer Modern letter": computer_modern_letter,
    "Lissajous figure": lissajous,
    "texture": texture,
    "handwritten word": handwritten_word,
}


def unseen_items(count: int, seed: int) -> list[make.Item]:
    """`count` non-digits, the kinds in turn, each drawn into one of the evaluation sets' scenes."""
    items: list[make.Item] = []
    for number in range(count):
        rng = np.random.default_rng([seed, STREAM, number])
        kind = list(KINDS)[number % len(KINDS)]
        scene = make.INK_SCENES[int(rng.integers(len(make.INK_SCENES)))]
        data, ext = scene(KINDS[kind](rng), rng)
        items.append((data, ext, None, kind))
    return items


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalsets.unseen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the set (rewritten)")
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        metavar="DIR",
        help="a version folder, or a model folder for its newest version; repeat to compare (default models/mnist)",
    )
    parser.add_argument("--count", type=int, default=400, help="images (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="the set is a function of this seed (default 0)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from evalsets.score import answer, load_model, negative_figures, version_folder

    make.write_set(args.out, unseen_items(args.count, args.seed))
    for model in args.model or [Path("models/mnist")]:
        version = version_folder(model)
        figures = negative_figures(answer(args.out, load_model(version)))
        kinds = ", ".join(f"{kind} {k['not_a_digit_recall']:.3f}" for kind, k in figures["by_kind"].items())
        print(f"{version}: not a digit {figures['not_a_digit_recall']:.3f} ({kinds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
