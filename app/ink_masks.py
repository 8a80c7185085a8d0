"""Measures of a binary ink mask, and the odd window sizes OpenCV's filters take: shared by the digit finder
(app.digit_finding) and the form rules (app.printed_forms)."""

from __future__ import annotations

import cv2
import numpy as np


def odd(value: float) -> int:
    return max(3, int(value) | 1)


def ink_distance(mask: np.ndarray) -> np.ndarray:
    """Each ink pixel's distance to the nearest background pixel (0 on the background). OpenCV gives the largest
    float where a mask has no background at all; no distance in a picture exceeds its diagonal, so that is the cap."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return np.minimum(distance, float(np.hypot(*mask.shape)))


def stroke_width(mask: np.ndarray) -> float:
    """About the width of the pen's strokes: twice a high percentile of the distance to the nearest background (the
    thickest parts are the pen's: a form's printed lines, often most of the ink, are thinner)."""
    distance = ink_distance(mask)
    inside = distance[distance > 0]
    return 2.0 * float(np.percentile(inside, 90)) if inside.size else 0.0
