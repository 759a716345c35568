"""The render as a guide only: the composite's face softened before the refiner sees it.

The refiner learned from **own-fit** composites, whose texture is the projection of the
very photo it is asked to give back; at use it sees a **new** draw, a random mix of the
model's components. On those it painted brown blotches and half-painted glasses (issue 27).
The issue's third remedy is to give the network the render only as a guide: here the face
inside the mask is blurred (and, in training, given a random smooth tint), so own fits
and new draws look alike to the network where they differ (the fine texture) and it must
paint skin, eyes and teeth itself. One definition for training and use; the at-use
strength is saved in the weights' metadata (``settings.guide_blur``), 0 for weights
trained without it.
"""

from __future__ import annotations

import cv2
import numpy as np

#: In training the blur's sigma is drawn from this range, as a multiple of the at-use one.
TRAIN_SPREAD = (0.5, 1.5)


def blur_sigma(guide_blur: float, side: int) -> float:
    """The Gaussian sigma in pixels of a ``side``-pixel crop (``guide_blur`` is a share
    of the side, so the guide is the same at any crop size)."""
    return guide_blur * side


def as_guide(composite: np.ndarray, mask: np.ndarray, sigma: float,
             tint: np.ndarray | None = None) -> np.ndarray:
    """``composite`` (S, S, 3) uint8 with its face (``mask`` > 127) blurred by ``sigma``
    pixels and shifted by ``tint`` ((S, S, 3) float grey levels, training only); every
    pixel outside the mask as it was. ``sigma`` <= 0 and no tint: unchanged."""
    if sigma <= 0 and tint is None:
        return composite
    face = composite.astype(np.float32)
    if sigma > 0:
        face = cv2.GaussianBlur(face, (0, 0), sigma)
    if tint is not None:
        face = face + tint
    inside = (mask > 127)[..., None]
    return np.where(inside, np.clip(face + 0.5, 0, 255), composite).astype(np.uint8)


def random_tint(rng: np.random.Generator, side: int, amplitude: float) -> np.ndarray:
    """A smooth random colour field ((side, side, 3) float, about +-``amplitude`` grey
    levels): a 3x3 grid of colours brought up bicubically, like the low-frequency shading
    a random texture draw carries."""
    grid = rng.normal(0.0, amplitude / 2, (3, 3, 3)).astype(np.float32)
    grid += rng.normal(0.0, amplitude / 4, (1, 1, 1)).astype(np.float32)  # luma shift
    return cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
