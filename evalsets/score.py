"""Scoring a SavedModel on the evaluation sets, offline, as the service answers: its own preprocessing
(app.imaging) and its own reading of the model's outputs (app.model), so "not a digit" means `is_digit: false`.

The signature's `digit_score` output is optional: without it (versions 1-4), every image with ink counts as a digit
answer, and the false-alarm rates are not given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import version_numbers, version_of
from app.imaging import ImageError, preprocess
from app.model import DigitModel, Predictions
from evalsets.make import DIGIT_SETS, NEGATIVES, read_set

CONFIDENT = 0.9
BATCH = 256


@dataclass(frozen=True)
class Answers:
    """The model's answer for each file of a set; a file the service refuses (a 4xx) has refused=True."""

    labels: list[int | None]
    kinds: list[str]
    refused: np.ndarray  # bool [N]
    probabilities: np.ndarray  # float32 [N, 10], zeros where refused
    is_digit: np.ndarray  # bool [N], False where refused
    has_digit_score: bool


def version_folder(model: Path) -> Path:
    """A version folder as given, or a model folder's newest version."""
    if version_of(model.name) is not None:
        return model
    versions = version_numbers(model)
    if not versions:
        raise FileNotFoundError(f"no version folder under {model}")
    return model / str(versions[-1])


def load_model(version: Path) -> DigitModel:
    return DigitModel(version.parent, version.parent.name, int(version.name))


def answer(folder: Path, model: DigitModel) -> Answers:
    entries = read_set(folder)
    inputs = np.zeros((len(entries), 28, 28), dtype=np.float32)
    refused = np.zeros(len(entries), dtype=bool)
    for i, (path, _, _) in enumerate(entries):
        try:
            inputs[i] = preprocess(path.read_bytes())
        except ImageError:
            refused[i] = True
    records = np.concatenate([model.predict(inputs[start : start + BATCH]) for start in range(0, len(inputs), BATCH)])
    predictions = Predictions.from_records(records, model.has_digit_score)
    probabilities = np.where(refused[:, None], 0, predictions.probabilities)
    is_digit = predictions.is_digit & ~refused
    labels = [e[1] for e in entries]
    return Answers(labels, [e[2] for e in entries], refused, probabilities, is_digit, model.has_digit_score)


def flagged(answers: Answers) -> np.ndarray:
    """Images the service would not call a digit: refused (a 4xx), or answered with is_digit false."""
    return ~answers.is_digit


def digit_figures(answers: Answers) -> dict[str, Any]:
    truth = np.asarray(answers.labels)
    right = (answers.probabilities.argmax(axis=1) == truth) & ~answers.refused
    figures: dict[str, Any] = {
        "images": len(truth),
        "accuracy": float(right.mean()),
        "refused": int(answers.refused.sum()),
    }
    if answers.has_digit_score:
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
    loaded = load_model(version)
    results: dict[str, Any] = {"model": str(version), "digit_score": loaded.has_digit_score, "sets": {}}
    for spec in DIGIT_SETS:
        results["sets"][spec.name] = digit_figures(answer(sets / spec.name, loaded))
        results["sets"][spec.name]["description"] = spec.description
    results["sets"][NEGATIVES] = negative_figures(answer(sets / NEGATIVES, loaded))
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
