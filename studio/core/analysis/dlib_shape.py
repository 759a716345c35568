"""dlib's five alignment points, taken from MediaPipe's landmarks.

dlib's own HOG detector misses turned faces and tight crops, and its 5-point predictor
needs a box like that detector's. On 189 UTKFace faces the MediaPipe landmarks below sat
within 2.6-4.3% of the inter-ocular distance of dlib's predicted points (mean), so the
chips for gender and identity are aligned from MediaPipe directly.
"""

from __future__ import annotations

import numpy as np

#: MediaPipe indices for dlib's 5 points: one eye's outer and inner corner, the other
#: eye's outer and inner corner, the base of the nose.
DLIB5_FROM_MEDIAPIPE = (263, 382, 33, 155, 2)


def dlib_shape(landmarks: np.ndarray):  # -> dlib.full_object_detection
    """A dlib ``full_object_detection`` built from a face's 478 landmarks (pixels)."""
    import dlib

    pts = landmarks[list(DLIB5_FROM_MEDIAPIPE), :2]
    xy = landmarks[:, :2]
    x0, y0 = np.floor(xy.min(axis=0)).astype(int)
    x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    parts = dlib.points([dlib.point(round(x), round(y)) for x, y in pts])
    return dlib.full_object_detection(rect, parts)


def face_chip(rgb: np.ndarray, landmarks: np.ndarray, size: int, padding: float) -> np.ndarray:
    """dlib's aligned face chip (size x size RGB); parts beyond the image come out black."""
    import dlib

    details = dlib.get_face_chip_details(dlib_shape(landmarks), size, padding)
    return np.ascontiguousarray(dlib.extract_image_chip(np.ascontiguousarray(rgb), details))
