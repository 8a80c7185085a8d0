"""Scoring a SavedModel on the evaluation sets, offline, through the service's own preprocessing (app.imaging).

The signature's `digit_score` output is optional: with it, the negatives' "not a digit" recall and each digit set's
false-alarm rate are measured too; without it (versions 1-4), every image counts as a digit answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import DIGIT_SCORE_NAME, INPUT_NAME, NOT_A_DIGIT_BELOW, OUTPUT_NAME, SIGNATURE_NAME, version_numbers
from app.imaging import ImageError, preprocess
from evalsets.make import DIGIT_SETS, NEGATIVES, read_set

CONFIDENT = 0.9
BATCH = 256

Signature = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Answers:
    """The model's answer for each file of a set; a file the service refuses (a 4xx) has refused=True."""

    labels: list[int | None]
    kinds: list[str]
    refused: np.ndarray  # bool [N]
    probabilities: np.ndarray  # float32 [N, 10], zeros where refused
    digit_score: np.ndarray | None  # float32 [N], or None when the model has no such output


def version_folder(model: Path) -> Path:
    """A version folder as given, or a model folder's newest version."""
    if model.name.isdigit():
        return model
    versions = version_numbers(model)
    if not versions:
        raise FileNotFoundError(f"no version folder under {model}")
    return model / str(versions[-1])


def load_signature(version: Path) -> tuple[Signature, bool]:
    """The serving signature as a NumPy function, and whether it has the digit_score output."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(version)).signatures[SIGNATURE_NAME]

    def call(images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = serve(**{INPUT_NAME: tf.constant(images, dtype=tf.float32)})
        return {name: value.numpy() for name, value in outputs.items()}

    return call, DIGIT_SCORE_NAME in serve.structured_outputs


def answer(folder: Path, signature: Signature, has_score: bool) -> Answers:
    entries = read_set(folder)
    inputs = np.zeros((len(entries), 28, 28), dtype=np.float32)
    refused = np.zeros(len(entries), dtype=bool)
    for i, (path, _, _) in enumerate(entries):
        try:
            inputs[i] = preprocess(path.read_bytes())
        except ImageError:
            refused[i] = True
    outputs = [signature(inputs[start : start + BATCH]) for start in range(0, len(inputs), BATCH)]
    probabilities = np.concatenate([o[OUTPUT_NAME] for o in outputs])
    probabilities[refused] = 0
    score = np.concatenate([o[DIGIT_SCORE_NAME] for o in outputs]).reshape(-1) if has_score else None
    return Answers([e[1] for e in entries], [e[2] for e in entries], refused, probabilities, score)


def flagged(answers: Answers) -> np.ndarray:
    """Images the service would not call a digit: refused, or a digit_score under the threshold."""
    low = answers.digit_score < NOT_A_DIGIT_BELOW if answers.digit_score is not None else False
    return answers.refused | low


def digit_figures(answers: Answers) -> dict[str, Any]:
    truth = np.asarray(answers.labels)
    right = (answers.probabilities.argmax(axis=1) == truth) & ~answers.refused
    figures: dict[str, Any] = {
        "images": len(truth),
        "accuracy": float(right.mean()),
        "refused": int(answers.refused.sum()),
    }
    if answers.digit_score is not None:
        figures["false_alarm_rate"] = float(flagged(answers).mean())
    return figures


def negative_figures(answers: Answers) -> dict[str, Any]:
    confident = (answers.probabilities.max(axis=1) > CONFIDENT) & ~flagged(answers)
    not_digit = flagged(answers)
    kinds = np.asarray(answers.kinds)
    by_kind = {
        kind: {
            "images": int((kinds == kind).sum()),
            "not_a_digit_recall": float(not_digit[kinds == kind].mean()),
            "confident_digit_answers": float(confident[kinds == kind].mean()),
        }
        for kind in sorted(set(answers.kinds))
    }
    return {
        "images": len(kinds),
        "not_a_digit_recall": float(not_digit.mean()),
        "confident_digit_answers": float(confident.mean()),
        "refused": int(answers.refused.sum()),
        "by_kind": by_kind,
    }


def evaluate(sets: Path, model: Path) -> dict[str, Any]:
    version = version_folder(model)
    signature, has_score = load_signature(version)
    results: dict[str, Any] = {"model": str(version), "digit_score": has_score, "sets": {}}
    for spec in DIGIT_SETS:
        results["sets"][spec.name] = digit_figures(answer(sets / spec.name, signature, has_score))
        results["sets"][spec.name]["description"] = spec.description
    results["sets"][NEGATIVES] = negative_figures(answer(sets / NEGATIVES, signature, has_score))
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table: one row per set, then the negatives by kind."""
    lines = [
        f"Model `{results['model']}` (digit_score output: {'yes' if results['digit_score'] else 'no'}).",
        "",
        "| set | images | digit accuracy | flagged not a digit | refused (4xx) | confident (>0.9) digit answers |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    blank = "–"
    for name, f in results["sets"].items():
        if name == NEGATIVES:
            continue
        alarm = f"{f['false_alarm_rate']:.3f}" if "false_alarm_rate" in f else blank
        lines.append(f"| {name} | {f['images']} | {f['accuracy']:.3f} | {alarm} | {f['refused']} | {blank} |")
    neg = results["sets"][NEGATIVES]
    rows = [(NEGATIVES, neg), *((f"… {kind}", k) for kind, k in neg["by_kind"].items())]
    for name, f in rows:
        refused = neg["refused"] if name == NEGATIVES else blank
        recall, confident = f["not_a_digit_recall"], f["confident_digit_answers"]
        lines.append(f"| {name} | {f['images']} | {blank} | {recall:.3f} | {refused} | {confident:.3f} |")
    return "\n".join(lines) + "\n"
