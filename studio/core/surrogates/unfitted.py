"""The rule every output obeys: each face found leaves the studio changed.

A face is replaced where it can be fitted. A face the recall detector found where no
landmarks could be fitted is blurred when it is small (under ``compositing.MIN_FACE_PX``,
where a blur leaves nothing to recognise) and otherwise masked with a solid fill, or
blurred if the user chose so (``UNFITTED_POLICIES``). Last, ``guard`` looks at every face
box of the output: one whose pixels barely moved is masked, and said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from studio.core.analysis.search_settings import UNFITTED_POLICIES
from studio.core.errors import StudioError
from studio.core.surrogates.compositing import MIN_FACE_PX

#: A face whose box changed by less than this (mean absolute grey levels) is untouched.
UNTOUCHED_LEVELS = 2.0
#: Boxes are grown by this factor before they are blurred or masked (as deface does), so
#: the hairline and chin go too.
GROW = 1.3
MASK_GREY = 0


@dataclass(frozen=True)
class FaceFate:
    """What became of one face found in a photo, and why."""

    kind: str  # replaced | blurred | masked
    reason: str


def check_policy(policy: str) -> str:
    if policy not in UNFITTED_POLICIES:
        raise StudioError(f"unfitted faces: use {' or '.join(UNFITTED_POLICIES)}, not "
                         f"{policy!r}")
    return policy


def _ellipse(shape: tuple[int, ...], box: Sequence[float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(shape[:2], np.uint8)
    centre = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    axes = (max(1, round(GROW * (x1 - x0) / 2)), max(1, round(GROW * (y1 - y0) / 2)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask > 0


def blur_box(rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The face in ``box`` blurred past recognition (σ a quarter of its size)."""
    inside = _ellipse(rgb.shape, box)
    size = max(box[2] - box[0], box[3] - box[1])
    blurred = cv2.GaussianBlur(rgb, (0, 0), max(2.0, 0.25 * size))
    out = rgb.copy()
    out[inside] = blurred[inside]
    return out


def mask_box(rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    out = rgb.copy()
    out[_ellipse(rgb.shape, box)] = MASK_GREY
    return out


def cover_unfitted(rgb: np.ndarray, boxes: Sequence[Sequence[float]], policy: str
                   ) -> tuple[np.ndarray, list[FaceFate]]:
    """Faces found but not fitted: blurred when small, else as ``policy`` says."""
    check_policy(policy)
    out, fates = rgb, []
    for box in boxes:
        size = max(box[2] - box[0], box[3] - box[1])
        if size < MIN_FACE_PX:
            out = blur_box(out, box)
            fates.append(FaceFate("blurred", f"{size:.0f} px, too small to fit: blurred"))
        elif policy == "blur":
            out = blur_box(out, box)
            fates.append(FaceFate("blurred", f"{size:.0f} px, no landmarks fitted: blurred "
                                             "(--unfitted blur)"))
        else:
            out = mask_box(out, box)
            fates.append(FaceFate("masked", f"{size:.0f} px, no landmarks fitted: masked"))
    return (out if out is not rgb else rgb.copy()), fates


def untouched(original: np.ndarray, out: np.ndarray, box: Sequence[float]) -> bool:
    """True when the face in ``box`` is (nearly) as it was."""
    h, w = original.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return False
    a = original[y0:y1, x0:x1].astype(np.int16)
    b = out[y0:y1, x0:x1].astype(np.int16)
    return float(np.abs(a - b).mean()) < UNTOUCHED_LEVELS


def guard(original: np.ndarray, out: np.ndarray, boxes: Sequence[Sequence[float]]
          ) -> tuple[np.ndarray, list[int]]:
    """``out`` with every face box that is still untouched masked; the indexes masked."""
    masked = [i for i, box in enumerate(boxes) if untouched(original, out, box)]
    for i in masked:
        out = mask_box(out, boxes[i])
    return out, masked
