"""Group pictures composed from held-out faces, and how many of their faces an
anonymiser left untouched: the recall benchmark (``benchmarks/bench_recall.py``).

Faces come from the test splits only (UTKFace's every 23rd photo, celeba-id's test
identities), each with its true face box from the landmarker on the source photo. They
are pasted at 16-400 px, rotated by up to ±30°, anywhere (half off the border too), on
backgrounds of real photo texture with no face in it (scikit-image's public-domain
photographs). A face is *left untouched* when the mean absolute change inside its box
is under 2 grey levels (``surrogates.unfitted.UNTOUCHED_LEVELS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Size bins of the report (face width, pixels): [lo, hi).
SIZE_BINS = ((0, 20), (20, 40), (40, 100), (100, 10_000))
BACKGROUNDS = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
               "brick", "grass", "gravel", "coins", "moon")


@dataclass(frozen=True)
class SourceFace:
    rgb: np.ndarray  # the held-out photo
    box: tuple[float, float, float, float]  # its face's landmark box


@dataclass
class GroupPicture:
    rgb: np.ndarray
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def widths(self) -> list[float]:
        return [b[2] - b[0] for b in self.boxes]


def source_faces(n: int, seed: int = 0) -> list[SourceFace]:
    """``n`` held-out faces with their boxes (photos where no face is found are passed)."""
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import FaceLandmarker, largest_face
    from studio.core.datasets import celeba_id, celeba_split, utk_split, utkface

    rng = np.random.default_rng(seed)
    utk = [it.path for it in utk_split(utkface(), "test")]
    celeba = [it.path for it in celeba_split(celeba_id(), "test")]
    paths = [*rng.permutation(utk)[: (n * 2) // 3 + 4], *rng.permutation(celeba)[: n // 3 + 4]]
    out = []
    with FaceLandmarker(max_faces=1) as landmarker:
        for path in paths:
            rgb = load_image(path).rgb
            face = largest_face(landmarker.detect(rgb))
            if face is not None:
                out.append(SourceFace(rgb, face.box))
            if len(out) == n:
                break
    return out


def background(name: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.uint8)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=cv2.INTER_LINEAR)


def paste(canvas: np.ndarray, face: SourceFace, width: float, centre: tuple[float, float],
          angle: float) -> tuple[float, float, float, float]:
    """``face`` pasted so its face is ``width`` px wide at ``centre``, turned by
    ``angle`` degrees; returns its face box in the canvas (unclipped)."""
    x0, y0, x1, y1 = face.box
    k = width / max(x1 - x0, 1.0)
    fc = ((x0 + x1) / 2, (y0 + y1) / 2)
    m = cv2.getRotationMatrix2D(fc, angle, k)
    m[:, 2] += np.array(centre) - fc
    h, w = canvas.shape[:2]
    src = face.rgb
    alpha = np.zeros(src.shape[:2], np.float32)
    border = max(1, round(0.04 * min(src.shape[:2])))
    alpha[border:-border, border:-border] = 1
    alpha = cv2.GaussianBlur(alpha, (0, 0), border / 2)
    # Only the canvas region the face lands on is warped (a 20000 px frame stays cheap).
    corners = cv2.transform(np.array([[[0, 0], [src.shape[1], 0], [0, src.shape[0]],
                                       [src.shape[1], src.shape[0]]]], np.float32), m)[0]
    lo = np.floor(corners.min(0)).astype(int).clip(0, [w, h])
    hi = np.ceil(corners.max(0)).astype(int).clip(0, [w, h])
    if (hi - lo).min() <= 0:
        return _box(face.box, m)
    m2 = m.copy()
    m2[:, 2] -= lo
    size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    part = cv2.warpAffine(src, m2, size, flags=interp)
    a = cv2.warpAffine(alpha, m2, size, flags=cv2.INTER_LINEAR)[..., None]
    region = canvas[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
    canvas[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(a * part + (1 - a) * region + 0.5, 0, 255
                                               ).astype(np.uint8)
    return _box(face.box, m)


def _box(box: tuple[float, ...], m: np.ndarray) -> tuple[float, float, float, float]:
    """The axis-aligned box of a face box turned by ``m``, kept at the face's width (a
    turned face is no wider than it was)."""
    x0, y0, x1, y1 = box
    c = m @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0])
    k = float(np.hypot(m[0, 0], m[0, 1]))
    hw, hh = k * (x1 - x0) / 2, k * (y1 - y0) / 2
    return (float(c[0] - hw), float(c[1] - hh), float(c[0] + hw), float(c[1] + hh))


def compose(faces: list[SourceFace], rng: np.random.Generator, size: tuple[int, int],
            count: int, widths: tuple[float, float] = (16, 400)) -> GroupPicture:
    """A ``size`` (width, height) picture with ``count`` faces that do not overlap."""
    w, h = size
    canvas = background(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], h, w, rng)
    picture = GroupPicture(canvas)
    for _ in range(count * 30):
        if len(picture.boxes) == count:
            break
        width = float(np.exp(rng.uniform(np.log(widths[0]), np.log(min(widths[1], w / 2)))))
        # Centres up to a third of a face past the border: some faces are cut in half.
        cx = rng.uniform(-0.3 * width, w + 0.3 * width)
        cy = rng.uniform(-0.3 * width, h + 0.3 * width)
        probe = (cx - 0.7 * width, cy - 0.9 * width, cx + 0.7 * width, cy + 0.9 * width)
        if any(_hits(probe, b) for b in picture.boxes):
            continue
        face = faces[rng.integers(len(faces))]
        box = paste(canvas, face, width, (cx, cy), float(rng.uniform(-30, 30)))
        picture.boxes.append(box)
    return picture


def _hits(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    pad = 0.3 * (b[2] - b[0])
    return not (a[2] < b[0] - pad or a[0] > b[2] + pad or a[3] < b[1] - pad or a[1] > b[3] + pad)


def visible(box: tuple[float, ...], shape: tuple[int, ...]) -> float:
    """Share of the box inside the picture."""
    h, w = shape[:2]
    iw = max(0.0, min(box[2], w) - max(box[0], 0))
    ih = max(0.0, min(box[3], h) - max(box[1], 0))
    return iw * ih / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


@dataclass
class RecallTally:
    """Faces per size bin: how many there were and how many were changed."""

    total: dict[tuple[int, int], int] = field(default_factory=lambda: dict.fromkeys(SIZE_BINS, 0))
    changed: dict[tuple[int, int], int] = field(
        default_factory=lambda: dict.fromkeys(SIZE_BINS, 0))
    untouched_20: int = 0  # faces of 20 px or more left untouched

    def add(self, picture: GroupPicture, out: np.ndarray) -> None:
        from studio.core.surrogates.unfitted import untouched

        for box, width in zip(picture.boxes, picture.widths, strict=True):
            if visible(box, picture.rgb.shape) < 0.4:
                continue  # mostly off the picture: nothing there to find
            key = next(b for b in SIZE_BINS if b[0] <= width < b[1])
            same = untouched(picture.rgb, out, box)
            self.total[key] += 1
            self.changed[key] += not same
            self.untouched_20 += same and width >= 20

    def recall(self, key: tuple[int, int]) -> float:
        return self.changed[key] / self.total[key] if self.total[key] else float("nan")


def tally(pictures: list[GroupPicture], anonymise: Callable[[np.ndarray], np.ndarray]
          ) -> RecallTally:
    out = RecallTally()
    for picture in pictures:
        out.add(picture, anonymise(picture.rgb))
    return out
