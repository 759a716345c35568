"""The refiner's framing: a square box around a face's landmarks, cut out at the network's
size and the network's change put back at the photo's size. One definition for the
training pairs and for use, so both see faces framed alike."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The network's side in pixels, and the box's side over the landmark box's longer side.
CROP_SIZE = 128
CROP_SCALE = 1.25


@dataclass(frozen=True)
class CropBox:
    """A square of the photo, ``side`` pixels from (``x0``, ``y0``); it may reach past
    the photo's border (those pixels are the border's, repeated)."""

    x0: int
    y0: int
    side: int

    @classmethod
    def around(cls, landmarks: np.ndarray, scale: float = CROP_SCALE) -> CropBox:
        xy = np.asarray(landmarks, np.float64)[:, :2]
        lo, hi = xy.min(0), xy.max(0)
        side = max(round(scale * float(np.max(hi - lo))), 8)
        cx, cy = (lo + hi) / 2
        return cls(round(cx - side / 2), round(cy - side / 2), side)

    def clipped(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The part inside a photo of ``shape``: (x0, y0, x1, y1)."""
        h, w = shape[:2]
        return (max(self.x0, 0), max(self.y0, 0), min(self.x0 + self.side, w),
                min(self.y0 + self.side, h))


def cut(image: np.ndarray, box: CropBox, size: int = CROP_SIZE,
        interpolation: int | None = None, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """``image`` (H, W[, C]) inside ``box``, resized to ``size``; area-averaged when
    shrinking so a large face is not aliased. Past the photo's edge: its border pixels
    repeated (a mask takes ``cv2.BORDER_CONSTANT``: nothing is there)."""
    h, w = image.shape[:2]
    pad = (max(0, -box.y0), max(0, box.y0 + box.side - h), max(0, -box.x0),
           max(0, box.x0 + box.side - w))
    x0, y0, x1, y1 = box.clipped(image.shape)
    region = image[y0:y1, x0:x1]
    if any(pad):
        region = cv2.copyMakeBorder(region, *pad, border, value=0)
    if interpolation is None:
        interpolation = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interpolation)


#: Where the box reaches past the photo, the network sees the border's pixels repeated in
#: streaks and paints coloured blots beside them (seen on held-out faces that touch the
#: photo's edge, at step 3,131): its change fades in over this share of the box from the
#: photo's edge.
EDGE_FADE = 0.08


def edge_fade(box: CropBox, shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) weights of the box's part inside the photo: 0 at a photo edge the box
    reaches past, 1 from EDGE_FADE of the box inwards; 1 everywhere for a box inside."""
    x0, y0, x1, y1 = box.clipped(shape)
    h, w = shape[:2]
    ramp = max(1.0, EDGE_FADE * box.side)
    ys, xs = np.arange(y0, y1, dtype=np.float32), np.arange(x0, x1, dtype=np.float32)
    fy = np.ones_like(ys)
    fx = np.ones_like(xs)
    if box.y0 < 0:
        fy = np.minimum(fy, (ys + 0.5) / ramp)
    if box.y0 + box.side > h:
        fy = np.minimum(fy, (h - ys - 0.5) / ramp)
    if box.x0 < 0:
        fx = np.minimum(fx, (xs + 0.5) / ramp)
    if box.x0 + box.side > w:
        fx = np.minimum(fx, (w - xs - 0.5) / ramp)
    return np.clip(np.outer(fy, fx), 0.0, 1.0)


def paste_change(photo: np.ndarray, change: np.ndarray, weight: np.ndarray,
                 box: CropBox) -> np.ndarray:
    """``photo`` plus ``change`` ((size, size, 3) float, grey levels) brought to the box's
    size, times ``weight`` (0..1, the shape of the box's part inside the photo) faded in
    from any photo edge the box reaches past (``edge_fade``); a copy, the same as
    ``photo`` wherever the weight is 0."""
    up = cv2.resize(change.astype(np.float32), (box.side, box.side),
                    interpolation=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = box.clipped(photo.shape)
    part = up[y0 - box.y0:y1 - box.y0, x0 - box.x0:x1 - box.x0]
    out = photo.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    wgt = (weight.astype(np.float32) * edge_fade(box, photo.shape))[..., None]
    out[y0:y1, x0:x1] = np.clip(region + wgt * part + 0.5, 0, 255).astype(np.uint8)
    return out


def grow_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) uint8 ``mask`` grown by ``radius`` pixels (an elliptical dilation): the ring
    the refiner learned to paint a new outline in, in training and at use alike."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, k)
