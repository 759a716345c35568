"""What people de-identify faces with today: blur, pixelation and a black mask.

They are the evaluation's baselines and ``studio anonymize``'s naive methods (here, beside
the surrogates, so that both can reach them). Each works on the face region only (the hull of the
landmarks, grown a little to take in the forehead and jaw), so the rest of the photo stays,
as in a newsroom edit.
"""

from __future__ import annotations

import cv2
import numpy as np

#: MediaPipe face-mesh points around both eyes and brows: the "eye bar" of a censor mask.
EYE_BAND = [33, 133, 159, 145, 263, 362, 386, 374, 70, 105, 107, 300, 334, 336, 46, 276,
            130, 359, 226, 446]


def face_width(landmarks: np.ndarray) -> float:
    xy = np.asarray(landmarks)[:, :2]
    return float(np.ptp(xy[:, 0]))


def face_region(shape: tuple[int, ...], landmarks: np.ndarray, grow: float = 0.12
                ) -> np.ndarray:
    """A float mask in [0, 1], 1 on the face: the landmarks' hull scaled about its centre."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    centre = xy.mean(axis=0)
    hull = cv2.convexHull(((xy - centre) * (1 + grow) + centre).astype(np.float32))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 255)
    return mask.astype(np.float32) / 255.0


def _composite(rgb: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.clip(edited * m + rgb * (1 - m), 0, 255).round().astype(np.uint8)


def blur(rgb: np.ndarray, landmarks: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """Gaussian blur of the face with sigma a fraction of the face's width."""
    sigma = max(0.5, sigma_fraction * face_width(landmarks))
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return _composite(rgb, blurred.astype(np.float32), face_region(rgb.shape, landmarks))


def pixelate(rgb: np.ndarray, landmarks: np.ndarray, blocks: int) -> np.ndarray:
    """Mosaic of about ``blocks`` squares across the face's width."""
    mask = face_region(rgb.shape, landmarks)
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return rgb.copy()
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(1.0, (x1 - x0) / blocks)
    crop = rgb[y0:y1, x0:x1]
    small = cv2.resize(crop, (max(1, round((x1 - x0) / side)), max(1, round((y1 - y0) / side))),
                       interpolation=cv2.INTER_AREA)
    mosaic = rgb.astype(np.float32).copy()
    mosaic[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0),
                                      interpolation=cv2.INTER_NEAREST)
    return _composite(rgb, mosaic, (mask > 0).astype(np.float32))


def black_mask(rgb: np.ndarray, landmarks: np.ndarray, part: str) -> np.ndarray:
    """Black over the eyes (a censor bar, ``part="eyes"``) or the whole face."""
    if part == "eyes":
        pts = np.asarray(landmarks, np.float64)[EYE_BAND, :2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        pad = 0.15 * (x1 - x0)
        mask = np.zeros(rgb.shape[:2], np.float32)
        mask[max(0, round(y0 - pad)):round(y1 + pad), max(0, round(x0 - pad)):round(x1 + pad)] = 1
    elif part == "face":
        mask = (face_region(rgb.shape, landmarks) > 0).astype(np.float32)
    else:
        raise ValueError(f"part must be 'eyes' or 'face', not {part!r}")
    return _composite(rgb, np.zeros(rgb.shape, np.float32), mask)
