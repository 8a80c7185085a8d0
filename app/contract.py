"""The names the exported SavedModel is known by and its folder layout: the one thing training and serving agree on.

Both halves import it: the serving half as its own module, the training job to export what the service reads. Light
on purpose (no TensorFlow, no Keras, nothing else of app), so the training job imports nothing more of serving.
"""

from pathlib import Path

NUM_CLASSES = 10
IMAGE_SIDE = 28
SIGNATURE_NAME = "serving_default"
INPUT_NAME = "images"  # float32 [N, 28, 28], raw pixels 0-255, background 0, ink 255
OUTPUT_NAME = "probabilities"  # float32 [N, 10], each row sums to 1
DIGIT_SCORE_NAME = "digit_score"  # optional float32 [N]: probability in [0, 1] that the image shows a digit at all
NOT_A_DIGIT_BELOW = 0.5  # a digit_score under this means "not a digit"
SIGNATURE_OUTPUTS = frozenset({OUTPUT_NAME, DIGIT_SCORE_NAME})  # `probabilities` required, `digit_score` optional
CANARY_FILE = "assets.extra/canary.npz"  # in a version folder: images uint8 [K, 28, 28], labels, probabilities


def version_of(name: str) -> int | None:
    """The version a folder's name gives: a positive integer written plainly ("7"; not "007", "+7" or "٧", which
    would name a version its folder is not found under); None for any other name."""
    if not name.isdecimal() or name != str(int(name)):
        return None
    return int(name) or None


def version_numbers(model_dir: Path) -> list[int]:
    """The versions under `model_dir`, ascending: folders named by a positive integer, as TensorFlow Serving reads
    them (anything else, such as an export's hidden staging folder, is not a version)."""
    if not model_dir.is_dir():
        return []
    return sorted(v for p in model_dir.iterdir() if p.is_dir() and (v := version_of(p.name)) is not None)
