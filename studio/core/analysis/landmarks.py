"""MediaPipe FaceLandmarker (Tasks API) behind a small, thread-safe, padded interface."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from studio.core.analysis.offline import without_network
from studio.core.assets import third_party_file

F = TypeVar("F")

os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging off the console

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)

#: Images whose short side is below this are padded before detection: MediaPipe's
#: detector misses faces that fill the whole frame, as in tight 64x64 crops.
SMALL_SIDE = 160
#: Pads tried in turn (share of the image size on each side) for small images, and for
#: larger ones where nothing was found. On 400 GENKI-4K test crops, a grey pad of 25%
#: found 93.3% of faces, replicated edges 91.5%; a second, wider pad adds a little.
PAD_FRACTIONS = (0.25, 0.5)
PAD_GREY = 128
#: Faces one MediaPipe search returns at most. Its cost is per face found, so a high
#: limit is free; a photo that reaches it gets a note (Detection.notes).
MAX_FACES = 64
#: MediaPipe's bundled OpenCV asserts in ``cv::remap`` that both sides of the image are
#: under SHRT_MAX (32767), and the failed assertion aborts the whole process (exit 134),
#: which Python cannot catch. Nothing this size or larger is ever handed to it.
MEDIAPIPE_MAX_SIDE = 32766
#: Frames are downscaled to this side before detection (landmarks are scaled back) so
#: that even the widest pad stays under MEDIAPIPE_MAX_SIDE.
DETECT_MAX_SIDE = int(MEDIAPIPE_MAX_SIDE / (1 + 2 * max(PAD_FRACTIONS)))
#: The detector sees the whole frame at 128x128, so in a panorama a face shrinks to a few
#: pixels. Frames longer than this many times their short side are searched in square
#: windows overlapping by half (every face up to half the short side lies whole in one).
PANORAMA_ASPECT = 2.5
MAX_WINDOWS = 64
#: A frame where two or more faces were found, or a face smaller than SMALL_FACE of its
#: long side, is searched again in a 3x3 grid of windows half its size: the detector
#: misses some of the smaller faces of a group photo (found 7 to 12 of 12 UTKFace faces
#: on a 4x3 grid, where the second search finds all 12).
GROUP_WINDOW = 0.5
SMALL_FACE = 0.25
#: Images whose short side is below this are not searched: of 40 GENKI-4K faces shrunk
#: to 10, 8 and 6 px (and padded), 27, 10 and none were found.
MIN_SIDE = 6


@dataclass(frozen=True)
class DetectedFace:
    """One face: 478 landmarks in image pixels, 52 blendshapes, the 4x4 pose matrix."""

    landmarks: np.ndarray  # (478, 3): x, y in pixels of the input image; z in the same scale
    blendshapes: np.ndarray  # (52,) scores in [0, 1], ordered as BLENDSHAPE_NAMES
    transform: np.ndarray  # (4, 4) canonical face model -> camera
    padded: bool  # detection needed padding around the image

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Tight box (x0, y0, x1, y1) around the landmarks, in pixels."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def moved(self, sx: float, sy: float, dx: float, dy: float) -> DetectedFace:
        """The same face in the larger image a frame was cut or shrunk from."""
        pts = self.landmarks * np.array([sx, sy, sx], np.float32)
        pts[:, 0] += dx
        pts[:, 1] += dy
        return DetectedFace(pts, self.blendshapes, self.transform, self.padded)

    def mirrored(self, width: int) -> np.ndarray:
        """Landmark x mirrored for an image of this width (used by tests and flips)."""
        out = self.landmarks.copy()
        out[:, 0] = width - 1 - out[:, 0]
        return out


@dataclass(frozen=True)
class Detection:
    """The faces of one image, left to right, and what the user should know about the search."""

    faces: list[DetectedFace]
    notes: tuple[str, ...] = ()


Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def _spans(length: int, side: int) -> list[tuple[int, int]]:
    """Spans of ``side`` covering ``length``, overlapping by half, the last flush with the end."""
    if side >= length:
        return [(0, length)]
    starts = [*range(0, length - side, max(1, side // 2)), length - side]
    return [(a, a + side) for a in starts]


def panorama_windows(height: int, width: int) -> list[Window]:
    """The whole image, or square windows along a panorama (at most MAX_WINDOWS)."""
    short, long = min(height, width), max(height, width)
    if long <= PANORAMA_ASPECT * short:
        return [(0, 0, width, height)]
    side = max(short, -(-2 * long // (MAX_WINDOWS + 1)))
    spans = _spans(long, side)
    return ([(a, 0, b, height) for a, b in spans] if width >= height
            else [(0, a, width, b) for a, b in spans])


def group_windows(window: Window) -> list[Window]:
    """A 3x3 grid of half-size windows over ``window``, overlapping by half."""
    x0, y0, x1, y1 = window
    xs = _spans(x1 - x0, round((x1 - x0) * GROUP_WINDOW))
    ys = _spans(y1 - y0, round((y1 - y0) * GROUP_WINDOW))
    return [(x0 + a, y0 + c, x0 + b, y0 + d) for a, b in xs for c, d in ys]


def box_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box: 1 when one box holds the other."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if iw > 0 and ih > 0 and smaller > 0 else 0.0


def _margin(box: tuple[float, ...], window: Window, width: int, height: int) -> float:
    """How far a face sits inside its window's cut edges (image borders do not count):
    a face cut by a window edge comes out negative."""
    x0, y0, x1, y1 = window
    gaps = (box[0] - x0 if x0 > 0 else np.inf, x1 - box[2] if x1 < width else np.inf,
            box[1] - y0 if y0 > 0 else np.inf, y1 - box[3] if y1 < height else np.inf)
    return float(min(gaps))


#: Two faces whose boxes overlap this much (of the smaller box) are one face seen twice:
#: in two overlapping windows, or twice by MediaPipe itself, which in a 12-face group
#: photo returned two copies of some faces from one search.
SAME_FACE_OVERLAP = 0.5


def merge_faces(found: list[tuple[DetectedFace, float]]) -> list[DetectedFace]:
    """One copy of each face, left to right, from (face, margin) pairs: the copy farthest
    inside its window is kept."""
    kept: list[DetectedFace] = []
    for face, _ in sorted(found, key=lambda t: -t[1]):
        if all(box_overlap(face.box, k.box) < SAME_FACE_OVERLAP for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: f.box[0])


def largest_face(faces: Sequence[F]) -> F | None:
    """The face with the largest box: the subject of a tight crop or a surrogate."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def connections(kind: str) -> np.ndarray:
    """(K, 2) landmark index pairs for drawing: "contours" or "mesh" (the tessellation)."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    source = C.FACE_LANDMARKS_TESSELATION if kind == "mesh" else C.FACE_LANDMARKS_CONTOURS
    return np.array([(c.start, c.end) for c in source], dtype=np.int32)


def pad_image(rgb: np.ndarray, fraction: float) -> tuple[np.ndarray, int, int]:
    """Pad with plain grey; returns the image and the (top, left) offsets."""
    h, w = rgb.shape[:2]
    py, px = round(h * fraction), round(w * fraction)
    padded = np.pad(rgb, ((py, py), (px, px), (0, 0)), constant_values=PAD_GREY)
    return np.ascontiguousarray(padded), py, px


class FaceLandmarker:
    """Finds every face in an RGB image. One instance per process is enough; calls are locked."""

    def __init__(self, model_path: str | Path | None = None, max_faces: int = MAX_FACES,
                 min_confidence: float = 0.4) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.max_faces = max_faces
        path = Path(model_path) if model_path else third_party_file("face_landmarker.task")
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        # MediaPipe's metrics uploader starts with the task: create it where it has no network.
        self._landmarker = without_network(vision.FaceLandmarker.create_from_options, options)
        self._lock = threading.Lock()
        # MediaPipe closes through a thread pool that Python shuts down before atexit and
        # weakref finalizers run, so an open landmarker printed tracebacks at exit. Close it
        # from a hook that runs before that shutdown (threading's own, as
        # concurrent.futures uses).
        self._finalizer = weakref.finalize(self, self._landmarker.close)
        ref = weakref.ref(self)
        threading._register_atexit(lambda: (lm := ref()) is not None and lm.close())

    def close(self) -> None:
        with self._lock:
            if self._landmarker is not None:
                self._finalizer()
                self._landmarker = None

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, rgb: np.ndarray, top: int, left: int, padded: bool) -> list[DetectedFace]:
        h, w = rgb.shape[:2]
        if max(h, w) > MEDIAPIPE_MAX_SIDE:  # would abort the process: a bug above, not input
            raise ValueError(f"{w}x{h} is too large for MediaPipe")
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        with self._lock:
            if self._landmarker is None:
                raise RuntimeError("FaceLandmarker is closed")
            result = self._landmarker.detect(image)
        faces = []
        for i, marks in enumerate(result.face_landmarks):
            pts = np.array([(p.x * w - left, p.y * h - top, p.z * w) for p in marks],
                           dtype=np.float32)
            shapes = np.array([c.score for c in result.face_blendshapes[i]], dtype=np.float32)
            matrix = np.array(result.facial_transformation_matrixes[i], dtype=np.float64)
            faces.append(DetectedFace(pts, shapes, matrix, padded))
        return faces

    def _frame(self, rgb: np.ndarray, pad: bool = True) -> tuple[list[DetectedFace], bool]:
        """Faces of one frame and whether the face limit was reached. Frames over
        DETECT_MAX_SIDE are shrunk and their landmarks scaled back; small frames, and
        frames where nothing was found, are padded (when ``pad``)."""
        h, w = rgb.shape[:2]
        sx = sy = 1.0
        if max(h, w) > DETECT_MAX_SIDE:
            import cv2

            shrink = DETECT_MAX_SIDE / max(h, w)
            size = (max(1, int(w * shrink)), max(1, int(h * shrink)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            sx, sy = w / size[0], h / size[1]
        rgb = np.ascontiguousarray(rgb)
        small = min(rgb.shape[:2]) < SMALL_SIDE
        faces = [] if small and pad else self._run(rgb, 0, 0, False)
        for fraction in PAD_FRACTIONS if pad else ():
            if faces:
                break
            padded, top, left = pad_image(rgb, fraction)
            faces = self._run(padded, top, left, True)
        full = len(faces) >= self.max_faces
        if sx != 1.0 or sy != 1.0:
            faces = [f.moved(sx, sy, 0.0, 0.0) for f in faces]
        return faces, full

    def _search(self, rgb: np.ndarray, window: Window, pad: bool,
                found: list[tuple[DetectedFace, float]]) -> tuple[bool, bool]:
        """Faces of one window, in image pixels, added to ``found``; returns whether a
        closer look may find more, and whether the face limit was reached."""
        x0, y0, x1, y1 = window
        faces, full = self._frame(rgb[y0:y1, x0:x1], pad)
        h, w = rgb.shape[:2]
        for face in faces:
            moved = face.moved(1.0, 1.0, x0, y0)
            found.append((moved, _margin(moved.box, window, w, h)))
        long = max(x1 - x0, y1 - y0)
        small = any(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) < SMALL_FACE * long
                    for f in faces)
        return len(faces) >= 2 or small, full

    def find(self, rgb: np.ndarray) -> Detection:
        """Every face, in the image's pixels, whatever its size: panoramas are searched in
        windows, group photos again at twice the detail, huge frames shrunk first."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return Detection([], (f"the image is {w}x{h} pixels, too thin to hold a face",))
        found: list[tuple[DetectedFace, float]] = []
        full = False
        for window in panorama_windows(h, w):
            closer, hit = self._search(rgb, window, True, found)
            full |= hit
            side = min(window[2] - window[0], window[3] - window[1])
            if closer and side * GROUP_WINDOW >= SMALL_SIDE:
                for part in group_windows(window):
                    full |= self._search(rgb, part, False, found)[1]
        notes = ((f"more than {self.max_faces} faces in one search: some may be missing",)
                 if full else ())
        return Detection(merge_faces(found), notes)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces, left to right. Small or tightly cropped images are padded first."""
        return self.find(rgb).faces

    def frame(self, rgb: np.ndarray) -> list[DetectedFace]:
        """The faces of one frame in one search (padded when nothing is found): for a
        crop around a face the recall detector found (``analysis.face_search``)."""
        return self._frame(np.ascontiguousarray(rgb, dtype=np.uint8))[0]


class LandmarkerPool:
    """Several landmarkers for several threads. MediaPipe's calls release the GIL, so two
    threads on two cores analyse about 1.5 times as many images as one (studio batch)."""

    def __init__(self, size: int, **options) -> None:
        import queue

        self._all = [FaceLandmarker(**options) for _ in range(size)]
        self._free: queue.Queue[FaceLandmarker] = queue.Queue()
        for landmarker in self._all:
            self._free.put(landmarker)

    def find(self, rgb: np.ndarray) -> Detection:
        landmarker = self._free.get()
        try:
            return landmarker.find(rgb)
        finally:
            self._free.put(landmarker)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        return self.find(rgb).faces

    def frame(self, rgb: np.ndarray) -> list[DetectedFace]:
        landmarker = self._free.get()
        try:
            return landmarker.frame(rgb)
        finally:
            self._free.put(landmarker)

    def close(self) -> None:
        for landmarker in self._all:
            landmarker.close()
