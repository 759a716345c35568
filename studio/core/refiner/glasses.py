"""Training pairs whose photo wears glasses, found so they can be left out.

The render never has glasses, but a photo's glasses show their arms outside the mask. In
training, a context with arms always came with a target with rims, so the refiner learned
to paint rims and nose pads from the arms: at use it half-painted glasses on new faces
(dark lines, brown blotches; issue 27). Left out, the refiner sees arms beside bare faces
and leaves the face bare: the glasses removed, not half-painted.

The cue is the bridge of the glasses: horizontal edges across the nose between the eyes,
where skin has almost none. The pair's own composite (the same face's render, same pose)
is the reference, so a nose's own shape and shading cancel out. Measured by eye on 256
training pairs: the top 32 by this score held 16 of the shard's ~20 faces with glasses, the
next 32 held 3; the rest of the top were turned faces, heavy make-up and deep wrinkles.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The bridge's part of the refiner's 128 px crop (rows, columns): between and just
#: above the eyes, as ``refiner.crops`` frames a face.
BRIDGE = (slice(36, 56), slice(54, 74))
CROP = 128


def _edges(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32),
                            (0, 0), 0.8)
    return (np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)),
            np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)))


def bridge_score(real: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float:
    """How much more horizontal edge the photo has across the nose bridge than its own
    render, over the photo's mean edge inside the face (so contrast does not count)."""
    if real.shape[0] != CROP:
        real, composite, mask = (cv2.resize(a, (CROP, CROP)) for a in (real, composite, mask))
    real_y, real_x = _edges(real)
    comp_y, _ = _edges(composite)
    inside = mask > 127
    norm = (real_y[inside].mean() + real_x[inside].mean()) / 2 + 1.0 if inside.any() else 1.0
    return float((real_y[BRIDGE].mean() - comp_y[BRIDGE].mean()) / norm)


def likely_glasses(real: np.ndarray, composite: np.ndarray, mask: np.ndarray,
                   share: float) -> np.ndarray:
    """(N,) bool: the ``share`` of pairs with the highest bridge score."""
    scores = np.array([bridge_score(r, c, m) for r, c, m in zip(real, composite, mask,
                                                                 strict=True)])
    if share <= 0 or not len(scores):
        return np.zeros(len(scores), bool)
    return scores >= np.quantile(scores, 1.0 - share)
