"""The canonical face framing shared by training crops, the original's crop in the app and
the surrogate: translation and scale only, never rotation, so roll stays in the picture."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 64
#: Crop side and centre in units of the landmarks' 3D RMS radius, which does not change
#: with head rotation. 3.3 radii frame a GENKI-4K face as GENKI's own crops do.
CROP_SIDE_RADII = 3.3
CROP_RAISE_RADII = 0.15


@dataclass(frozen=True)
class CropFrame:
    """Where the canonical crop sits in the source image (pixels)."""

    cx: float
    cy: float
    side: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> CropFrame:
        centroid = landmarks.mean(axis=0)
        radius = float(np.sqrt(((landmarks - centroid) ** 2).sum(axis=1).mean()))
        return cls(float(centroid[0]), float(centroid[1] - CROP_RAISE_RADII * radius),
                   CROP_SIDE_RADII * radius)


def crop(rgb: np.ndarray, frame: CropFrame, size: int = CROP_SIZE,
         rotate_deg: float = 0.0) -> np.ndarray:
    """The canonical square crop, resized to ``size``; borders are mirrored.

    ``rotate_deg`` turns the image content clockwise about the crop centre (used for the
    label-consistent roll augmentation: the roll label grows by the same angle).
    """
    m = crop_matrix(frame, size, rotate_deg)
    interp = cv2.INTER_AREA if size < frame.side else cv2.INTER_CUBIC
    return cv2.warpAffine(rgb, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def crop_matrix(frame: CropFrame, size: int = CROP_SIZE, rotate_deg: float = 0.0
                ) -> np.ndarray:
    """The (2, 3) affine map from source pixels to the crop's pixels: what ``crop`` warps
    by, and what a face drawn in the crop is warped back into its photo by (inverted)."""
    m = cv2.getRotationMatrix2D((frame.cx, frame.cy), -rotate_deg, size / frame.side)
    m[0, 2] += size / 2 - frame.cx
    m[1, 2] += size / 2 - frame.cy
    return m


def original_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The original face in the generator's framing, at any display size."""
    return crop(rgb, CropFrame.from_landmarks(landmarks), size=size)
