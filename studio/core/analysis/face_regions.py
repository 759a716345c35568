"""Named rings of MediaPipe face-mesh landmarks, in drawing order (polygons).

The index lists are MediaPipe's face-mesh topology (Apache-2.0), ordered around each
contour so that they can be filled as polygons; the in-context surrogate draws eyes and
the mouth into them and masks the face with the oval.
"""

from __future__ import annotations

import numpy as np

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109)
#: The two eye openings (image-left first for a frontal face), along the lid margins.
EYES = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
        (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466))
BROWS = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46),
         (300, 293, 334, 296, 336, 285, 295, 282, 283, 276))
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82,
              81, 80, 191)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37,
              39, 40, 185)
#: Mouth corners and the middle of the upper and lower inner lip: the mouth's frame.
MOUTH_FRAME = (78, 308, 13, 14)
#: Iris centres, each followed by four points on the iris rim (478-landmark models only).
IRISES = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))


def ring(landmarks: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """(n, 2) float32 image points of one ring."""
    return np.asarray(landmarks, np.float32)[list(indices), :2]


def iris_for_eye(landmarks: np.ndarray, eye: tuple[int, ...]) -> tuple[np.ndarray, float] | None:
    """Centre and radius of the iris inside this eye, or None without iris landmarks."""
    pts = np.asarray(landmarks, np.float64)
    if len(pts) < 478:
        return None
    centre = pts[list(eye), :2].mean(0)
    best = min(IRISES, key=lambda ir: float(np.linalg.norm(pts[ir[0], :2] - centre)))
    rim = pts[list(best[1:]), :2]
    return pts[best[0], :2], float(np.linalg.norm(rim - pts[best[0], :2], axis=1).mean())
