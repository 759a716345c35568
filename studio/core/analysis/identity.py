"""The dlib ResNet 128-d face descriptor and the distance between two faces.

dlib aligns the 150x150 chip; the network itself runs in PyTorch (analysis.dlib_resnet,
equal to dlib's own to 1e-6) because the dlib wheel has no BLAS and took ~170 ms a face.
"""

from __future__ import annotations

import numpy as np

from studio.core.analysis.dlib_shape import dlib_shape

#: dlib's threshold: descriptors closer than this are taken as the same person.
SAME_PERSON_THRESHOLD = 0.6
CHIP_SIZE = 150
CHIP_PADDING = 0.25  # dlib's default for compute_face_descriptor


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two 128-d descriptors (dlib's metric)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def same_person(a: np.ndarray, b: np.ndarray) -> bool:
    return identity_distance(a, b) < SAME_PERSON_THRESHOLD


def identity_chip(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The aligned 150x150 chip dlib's network expects."""
    import dlib

    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), dlib_shape(landmarks),
                                         CHIP_SIZE, CHIP_PADDING))


class IdentityEncoder:
    def __init__(self, threads: int | None = None) -> None:
        from studio.core.analysis.dlib_resnet import DlibFaceEncoder

        self._encoder = DlibFaceEncoder(threads=threads)

    def descriptor(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self._encoder.descriptors(identity_chip(rgb, landmarks))[0]

    def descriptors_of_chips(self, chips: np.ndarray) -> np.ndarray:
        return self._encoder.descriptors(chips)
