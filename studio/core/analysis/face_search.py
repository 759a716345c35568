"""Every face of a photo: the landmarker's own search, the recall detector's boxes, and
landmarks fitted again on each box the landmarker missed, in the box's own crop.

A box that no fit explains stays in the result as an ``UnfittedFace``: it is blurred or
masked downstream, never left as it was (``surrogates.unfitted``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from studio.core.analysis.detector import THRESHOLD, FaceBox, FaceDetector
from studio.core.analysis.landmarks import DetectedFace, Detection, box_overlap, merge_faces

#: A landmark box and a detector box sharing this much of the smaller are one face.
MATCH_OVERLAP = 0.4
#: A missed face is fitted in a crop this many times its box, at about CROP_FACE pixels
#: across (MediaPipe's detector wants a face a third of its frame, not 18 px).
CROP_CONTEXT = 3.0
CROP_FACE = 110
#: A box of LARGE_BOX px or more that no fit explains is masked only when scored at least
#: LARGE_BOX_SCORE: a real face that large is fitted, or scored high; the edge of a cup
#: beside a face, scored 0.204, was masked as a face.
LARGE_BOX = 48
LARGE_BOX_SCORE = 0.4
#: A smaller box cut by the photo's border counts unfitted from this score: half a face
#: cannot be fitted, and scores lower. Of the candidates (0.08-0.2) the detector gave at
#: the border of 88 composed group pictures (benchmarks/bench_recall.py, seeds 7, 11, 25,
#: 31), the faces scored 0.14-0.20 and the texture 0.08-0.11; a 28 px face cut by the
#: bottom border, scored 0.199, was the one face >= 20 px left untouched (seed 25).
BORDER_SCORE = 0.12
#: A box this share of its width or less from the border is cut by it.
BORDER_MARGIN = 0.1
#: Large crops are shrunk to at most this side before fitting.
CROP_MAX = 640


@dataclass(frozen=True)
class UnfittedFace:
    """A face the detector found where no landmarks could be fitted."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def width(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def cut_by_border(box: FaceBox, shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    x0, y0, x1, y1 = box.box
    m = BORDER_MARGIN * box.width
    return x0 <= m or y0 <= m or x1 >= w - m or y1 >= h - m


def counts_unfitted(box: FaceBox, shape: tuple[int, ...]) -> bool:
    """Whether a box no fit explains is a face to cover: a small box from THRESHOLD
    (from BORDER_SCORE where the border cuts it), a large one only from LARGE_BOX_SCORE."""
    if box.size >= LARGE_BOX:
        return box.score >= LARGE_BOX_SCORE
    return box.score >= (BORDER_SCORE if cut_by_border(box, shape) else THRESHOLD)


def matches(box: FaceBox, face: DetectedFace) -> bool:
    return box_overlap(box.box, face.box) >= MATCH_OVERLAP


def fit_in_crop(landmarker, rgb: np.ndarray, box: FaceBox) -> DetectedFace | None:
    """Landmarks of the face in ``box``, fitted on its own crop (upscaled or shrunk so the
    face is about CROP_FACE pixels), in photo pixels; None when no fit lands on the box."""
    h, w = rgb.shape[:2]
    cx, cy = (box.box[0] + box.box[2]) / 2, (box.box[1] + box.box[3]) / 2
    side = max(CROP_CONTEXT * box.size, 8.0)
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = round(cx + side / 2), round(cy + side / 2)
    crop = rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    crop = cv2.copyMakeBorder(crop, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w),
                              cv2.BORDER_REPLICATE)
    k = min(CROP_FACE / max(box.size, 1.0), CROP_MAX / crop.shape[0])
    size = max(8, round(crop.shape[1] * k)), max(8, round(crop.shape[0] * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    small = np.ascontiguousarray(cv2.resize(crop, size, interpolation=interp))
    sx, sy = crop.shape[1] / size[0], crop.shape[0] / size[1]
    best, best_overlap = None, MATCH_OVERLAP
    for face in landmarker.frame(small):
        moved = face.moved(sx, sy, x0, y0)
        overlap = box_overlap(box.box, moved.box)
        if overlap >= best_overlap:
            best, best_overlap = moved, overlap
    return best


def find_faces(landmarker, detector: FaceDetector, rgb: np.ndarray, min_face: float
               ) -> tuple[Detection, list[UnfittedFace]]:
    """The landmarker's faces, plus those only the detector saw (fitted in their crops
    where possible; a low-scored box only when fitted); faces found by either source are
    merged."""
    detection = landmarker.find(rgb)
    faces = list(detection.faces)
    unfitted: list[UnfittedFace] = []
    for box in detector.detect(rgb, min_face):
        if any(matches(box, f) for f in faces):
            continue
        fitted = fit_in_crop(landmarker, rgb, box)
        if fitted is not None:
            faces.append(fitted)
        elif counts_unfitted(box, rgb.shape):
            unfitted.append(UnfittedFace(box.box, box.score))
        # a weaker box counts only once fitted
    faces = merge_faces([(f, 0.0) for f in faces])
    return Detection(faces, detection.notes), unfitted
