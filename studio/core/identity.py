"""The dlib ResNet 128-d face descriptor and the distance between two faces."""

from __future__ import annotations

import threading

import numpy as np

from studio.core.assets import third_party_file
from studio.core.dlib_shape import dlib_shape

#: dlib's threshold: descriptors closer than this are taken as the same person.
SAME_PERSON_THRESHOLD = 0.6


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two 128-d descriptors (dlib's metric)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def same_person(a: np.ndarray, b: np.ndarray) -> bool:
    return identity_distance(a, b) < SAME_PERSON_THRESHOLD


class IdentityEncoder:
    def __init__(self) -> None:
        import dlib

        self._net = dlib.face_recognition_model_v1(
            str(third_party_file("dlib_face_recognition_resnet_model_v1.dat"))
        )
        self._lock = threading.Lock()

    def descriptor(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        shape = dlib_shape(landmarks)
        with self._lock:
            vec = self._net.compute_face_descriptor(np.ascontiguousarray(rgb), shape)
        return np.asarray(vec, dtype=np.float32)
