"""The temperature that calibrates the digits' probabilities after training.

A network trained on smoothed targets (training.train.training_targets) gives every digit it reads a probability
near the smoothed target rather than near 1, so a clear digit would be answered with a modest confidence. Dividing
the digits' logits by one temperature, fitted on held-out digits to the answers' likelihood (temperature scaling),
makes the probabilities mean what they say again without changing which digit is most probable.
"""

from __future__ import annotations

import numpy as np

from app.contract import NUM_CLASSES

# The temperatures tried: a log-spaced grid, each about 1 % from the next, from far sharper to far softer.
TEMPERATURES = np.geomspace(0.05, 20.0, 601)


def digit_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """The mean log-probability of each digit's label under the softmax of its digits' logits / `temperature`."""
    scaled = logits[:, :NUM_CLASSES].astype(np.float64) / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_total = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
    return float(np.mean(scaled[np.arange(len(labels)), labels] - log_total))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (of TEMPERATURES) under which held-out digits' labels are most likely: `logits` [N, >= 10]
    (the digits' first), `labels` [N] the digits 0-9. 1.0 when there is nothing to fit on."""
    if len(labels) == 0:
        return 1.0
    likelihoods = [digit_log_likelihood(logits, labels, float(t)) for t in TEMPERATURES]
    return round(float(TEMPERATURES[int(np.argmax(likelihoods))]), 4)
