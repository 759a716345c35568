"""A new outline for an in-context face (``ContextRequest.outline``, the strict privacy
preset): the new identity's own jaw, cheeks and brow line instead of the original's.

With the outline kept, the mesh's outermost ring stays on the original's silhouette, so
the face's shape is the original's. With a new one (``"new"``), the new identity reaches
the edge, and the face is enlarged about its centre until its outline lies outside the
original's everywhere, so no old jaw or cheek shows beside it; the refiner then works
inside the new face's mask, as for any face.

``"new-ring"`` also grows the mask past both outlines by a ring, filled from the blurred
context around it, for the refiner to paint (its training opened such rings on half its
samples: ``refiner.training.open_ring``, which grows them as ``refiner.crops.grow_mask``
does here). At the shipped step (3,131) it paints the ring
as a visible halo band, so the strict preset does not use it; it is kept to be measured
again as the refiner trains on (``benchmarks/ablate_privacy.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.analysis.face_regions import FACE_OVAL
from studio.core.refiner.crops import CropBox, grow_mask
from studio.core.refiner.model import FaceToRefine

OUTLINES = ("keep", "new", "new-ring")
#: The new face is enlarged about its centre until its outline lies this share of the
#: face's size outside the original's everywhere (the clone mask, eroded by 3% of the
#: width, still covers the old jaw and cheeks), by at most MAX_COVER.
COVER_MARGIN, MAX_COVER = 0.05, 1.25
#: What lies under a new face is filled from the context at this many pixels across at
#: most (``clear_original``).
INPAINT_SIDE = 96
#: How far past the new face and the original's oval the mask grows (share of the
#: refiner's box side; its training grew masks by up to 12% of the box).
RING = 0.04
#: The ring is filled with the photo blurred by this share of the box side (the training's
#: ``ring_blur``).
RING_BLUR = 0.05
#: The refiner's change fades out over this share of the box side inside the grown mask's
#: edge, so the painted ring meets the untouched context without a line.
FEATHER = 0.02


def covering(new: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``new`` (468, 3) image-space vertices, enlarged about their oval's centre so the
    oval encloses ``original``'s oval (its outline landmarks or vertices) with a margin."""
    ring = list(FACE_OVAL)
    centre = new[ring, :2].mean(0)
    r_new = np.linalg.norm(new[ring, :2] - centre, axis=1)
    r_old = np.linalg.norm(np.asarray(original, np.float64)[ring, :2] - centre, axis=1)
    scale = float(np.clip(np.max(r_old / np.maximum(r_new, 1e-6)) + COVER_MARGIN, 1.0,
                          MAX_COVER))
    out = new.copy()
    out[:, :2] = (new[:, :2] - centre) * scale + centre
    out[:, 2] = new[:, 2] * scale
    return out


def clear_original(photo: np.ndarray, landmarks: np.ndarray, hard: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` with everything under the new face's clone mask (``hard``, which covers
    the original's oval) filled from the context around it, and the (H, W) bool mask of
    what was filled. The new face's feathered edge then fades into the context, not into
    the original's jaw and cheeks (seen at 100%: a pale rim of the old skin round the new
    face). Filled at INPAINT_SIDE pixels across at most: the fill is smooth, and a large
    face costs no more."""
    box = CropBox.around(landmarks, 1.6)
    x0, y0, x1, y1 = box.clipped(photo.shape)
    region = (hard[y0:y1, x0:x1] > 0).astype(np.uint8) * 255
    window = np.ascontiguousarray(photo[y0:y1, x0:x1])
    h, w = region.shape
    f = min(1.0, INPAINT_SIDE / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
    hole = cv2.dilate(cv2.resize(region, size, interpolation=cv2.INTER_NEAREST),
                      np.ones((3, 3), np.uint8))
    filled = cv2.resize(cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    out = photo.copy()
    inside = region > 0
    out[y0:y1, x0:x1][inside] = filled[inside]
    cleared = np.zeros(photo.shape[:2], bool)
    cleared[y0:y1, x0:x1] = inside
    return out, cleared


def oval_mask(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) uint8, 255 inside the original face's oval (its outline landmarks)."""
    pts = np.round(np.asarray(landmarks, np.float64)[list(FACE_OVAL), :2]).astype(np.int32)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [pts], 255)
    return mask


def open_outline(photo: np.ndarray, hard: np.ndarray, landmarks: np.ndarray
                 ) -> tuple[np.ndarray, FaceToRefine, np.ndarray]:
    """``photo`` (with the new face drawn inside ``hard``) with a ring around the new face
    and the original's oval opened (blurred), the face the refiner is to paint there, and
    the (H, W) bool mask of every pixel the refiner may now change."""
    box = CropBox.around(landmarks)
    x0, y0, x1, y1 = box.clipped(photo.shape)
    radius = max(1, round(RING * box.side))
    both = np.maximum(hard, oval_mask(photo.shape, landmarks))[y0:y1, x0:x1]
    # Grown by the ring as the refiner's training grew masks, but filled from the context
    # alone: a blur of the whole crop (the training's fill) smeared the new face's skin
    # into the ring as a pale halo.
    window = np.ascontiguousarray(photo[y0:y1, x0:x1])
    grown = grow_mask(np.ascontiguousarray(both), radius)
    outside = (grown <= 127).astype(np.float32)
    sigma = RING_BLUR * box.side
    weight = cv2.GaussianBlur(outside, (0, 0), sigma)[..., None]
    context = cv2.GaussianBlur(window.astype(np.float32) * outside[..., None], (0, 0), sigma)
    opened = np.clip(context / np.maximum(weight, 1e-3) + 0.5, 0, 255).astype(np.uint8)
    ring = (grown > 127) & (hard[y0:y1, x0:x1] == 0)
    out = photo.copy()
    out[y0:y1, x0:x1][ring] = opened[ring]
    full = np.zeros(photo.shape[:2], np.uint8)
    full[y0:y1, x0:x1] = grown
    face = FaceToRefine.of(landmarks, full)
    feather = max(1.0, FEATHER * box.side)
    inside = cv2.erode(grown, np.ones((3, 3), np.uint8)).astype(np.float32) / 255
    weight = cv2.GaussianBlur(inside, (0, 0), feather) * (grown > 127)
    face = FaceToRefine(face.box, weight.astype(np.float32), face.mask)
    return out, face, full > 0
