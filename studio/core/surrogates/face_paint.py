"""Eyes and an open mouth painted onto a rendered face, in the photo's pixels.

The morphable model's texture is an average across thousands of faces, so its eyes are
ghosts and its mouth has no teeth. Both are drawn instead, from nobody: a sclera and an
iris of a seeded colour placed where the original looks (its iris landmarks, carried into
the new eye's frame), and a dark mouth with a row of teeth under the upper lip. Drawn
4x supersampled and clipped to the new face's own lid and lip contours.
"""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.analysis.face_regions import EYES, INNER_LIPS, MOUTH_FRAME, iris_for_eye

SUPER = 4
#: Iris colours (RGB), mostly browns as in most populations; the seed picks one. The
#: last two (blue, green) only where ``light_irises``: on dark skin they are rare, and a
#: blue iris in a brown face read as painted.
IRIS_COLOURS = ((74, 48, 30), (96, 64, 40), (58, 38, 26), (112, 88, 58), (102, 78, 50),
                (66, 44, 32), (84, 104, 126), (72, 96, 74))
BROWN_IRISES = 6
#: An eye whose opening is thinner than this share of its width reads as closed.
CLOSED_EYE = 0.12
#: A mouth whose inner lips part by less than this share of its width is closed.
CLOSED_MOUTH = 0.06


def _canvas(points: np.ndarray, shape: tuple[int, int], margin: float
            ) -> tuple[int, int, int, int] | None:
    x0, y0 = np.floor(points.min(0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(0) + margin).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, shape[1]), min(y1, shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def _poly(points: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    return np.round((points - origin) * SUPER).astype(np.int32)


def _paste(rgb: np.ndarray, box: tuple[int, int, int, int], big: np.ndarray,
           big_mask: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    size = (x1 - x0, y1 - y0)
    small = cv2.resize(big, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    m = cv2.resize(big_mask, size, interpolation=cv2.INTER_AREA).astype(np.float32)[..., None]
    region = rgb[y0:y1, x0:x1].astype(np.float32)
    rgb[y0:y1, x0:x1] = np.clip(small * m + region * (1 - m) + 0.5, 0, 255).astype(np.uint8)


def iris_colour(rng: np.random.Generator, light_irises: bool = True) -> np.ndarray:
    """(3,) float32 RGB of a seeded iris: browns only unless ``light_irises``."""
    palette = IRIS_COLOURS if light_irises else IRIS_COLOURS[:BROWN_IRISES]
    return np.asarray(palette[int(rng.integers(len(palette)))], np.float32)


def paint_eyes(rgb: np.ndarray, new_points: np.ndarray, original: np.ndarray,
               light: np.ndarray, seed: int, light_irises: bool = True) -> int:
    """Draw both eyes of the face whose mesh points are ``new_points`` (image pixels) into
    ``rgb`` in place, looking where ``original`` (478 landmarks, same pixels) looks.
    ``light`` (3,) is the photo's light on a face turned to the camera; ``light_irises``
    allows blue and green irises. Returns how many eyes were drawn (closed eyes are left
    to the lids)."""
    rng = np.random.default_rng(seed)
    iris_rgb = iris_colour(rng, light_irises)
    drawn = 0
    for ring in EYES:
        new = np.asarray(new_points, np.float64)[list(ring), :2]
        old = np.asarray(original, np.float64)[list(ring), :2]
        a, b = new[0], new[8]
        width = float(np.linalg.norm(b - a))
        if width < 2 or cv2.contourArea(new.astype(np.float32)) < CLOSED_EYE * width ** 2 / 2:
            continue
        iris = iris_for_eye(original, ring)
        oa, ob = old[0], old[8]
        old_axis = ob - oa
        old_w = max(float(np.linalg.norm(old_axis)), 1e-6)
        if iris is None:
            centre_uv, radius = np.array([0.5, 0.0]), 0.21 * width
        else:
            rel = iris[0] - oa
            ex = old_axis / old_w
            ey = np.array([-ex[1], ex[0]])
            centre_uv = np.array([rel @ ex, rel @ ey]) / old_w
            radius = iris[1] * width / old_w
        ex = (b - a) / width
        ey = np.array([-ex[1], ex[0]])
        centre = a + (centre_uv[0] * ex + centre_uv[1] * ey) * width
        box = _canvas(new, rgb.shape[:2], radius + 2)
        if box is None:
            continue
        drawn += 1
        x0, y0, x1, y1 = box
        h, w = (y1 - y0) * SUPER, (x1 - x0) * SUPER
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [_poly(new, (x0, y0))], 255)
        big = np.empty((h, w, 3), np.float32)
        big[:] = np.array([236, 228, 220], np.float32) * 0.8
        c = tuple(int(v) for v in np.round((centre - (x0, y0)) * SUPER))
        r = max(round(radius * SUPER), 1)
        # The iris lies inside the square of side 2r around its centre: only that part of
        # the canvas is computed (the slider repaints it; a full canvas is ~6x the pixels).
        sx0, sy0 = max(c[0] - r, 0), max(c[1] - r, 0)
        sx1, sy1 = max(min(c[0] + r + 1, w), sx0), max(min(c[1] + r + 1, h), sy0)
        yy, xx = np.mgrid[sy0:sy1, sx0:sx1]
        dist = np.hypot(xx - c[0], yy - c[1]) / r
        ring_dark = np.clip(1.15 - 0.45 * dist ** 3, 0.55, 1.15)[..., None]
        streaks = 1 + 0.12 * np.sin(np.arctan2(yy - c[1], xx - c[0]) * int(rng.integers(9, 15)))
        iris_px = dist <= 1.0
        square = big[sy0:sy1, sx0:sx1]  # a view: written into ``big``
        square[iris_px] = (iris_rgb * ring_dark * streaks[..., None])[iris_px]
        square[dist <= 0.42] = (18, 16, 16)
        # The upper lid casts a shadow on the eyeball's top.
        top = new[:, 1].min() - y0
        bottom = new[:, 1].max() - y0
        rows = (np.arange(h) / SUPER - top) / max(bottom - top, 1e-6)
        big *= np.clip(0.55 + 0.6 * rows, 0.55, 1.0)[:, None, None]
        hl = (c[0] - r // 3, c[1] - r // 3)
        cv2.circle(big, hl, max(r // 6, 1), (250, 250, 250), -1, cv2.LINE_AA)
        big *= np.clip(light, 0.2, 1.6)[None, None, :]
        mask = cv2.GaussianBlur(opening.astype(np.float32) / 255, (0, 0), SUPER * 0.6)
        _paste(rgb, box, np.clip(big, 0, 255), mask * (opening > 0))
    return drawn


def paint_mouth(rgb: np.ndarray, new_points: np.ndarray, light: np.ndarray) -> bool:
    """Draw a mouth interior with upper teeth inside the inner lips of ``new_points``
    when the mouth is open; returns whether it was."""
    pts = np.asarray(new_points, np.float64)
    left, right, top, bottom = (pts[i, :2] for i in MOUTH_FRAME)
    width = float(np.linalg.norm(right - left))
    gap = float(np.linalg.norm(bottom - top))
    if width < 3 or gap < CLOSED_MOUTH * width:
        return False
    inner = pts[list(INNER_LIPS), :2]
    box = _canvas(inner, rgb.shape[:2], 2)
    if box is None:
        return False
    x0, y0, x1, y1 = box
    h, w = (y1 - y0) * SUPER, (x1 - x0) * SUPER
    opening = np.zeros((h, w), np.uint8)
    cv2.fillPoly(opening, [_poly(inner, (x0, y0))], 255)
    big = np.empty((h, w, 3), np.float32)
    big[:] = (62, 26, 28)
    # Upper teeth: the upper inner lip moved down by a share of the opening, as a band.
    upper = np.array([pts[i, :2] for i in INNER_LIPS[10:] + INNER_LIPS[:1]])
    down = (bottom - top) / max(gap, 1e-6)
    depth = min(0.45 * gap, 0.16 * width)
    band = np.vstack([upper, (upper + down * depth)[::-1]])
    teeth = np.zeros((h, w), np.uint8)
    cv2.fillPoly(teeth, [_poly(band, (x0, y0))], 255)
    xx = (np.arange(w) / SUPER + x0 - (left[0] + right[0]) / 2) / max(width / 2, 1e-6)
    shade = np.clip(1.0 - 0.55 * np.abs(xx) ** 1.5, 0.35, 1.0)
    tooth = 0.08 * width * SUPER
    seams = 1 - 0.12 * np.exp(-((np.mod(np.arange(w) - w / 2 + tooth / 2, tooth)
                                  - tooth / 2) / (0.09 * tooth)) ** 2)
    colour = np.array([206, 198, 182], np.float32)
    # Teeth sit in the lip's shadow at the top and fade into the mouth at their edge.
    top_y = (np.arange(h) / SUPER + y0 - top[1]) / max(depth, 1e-6)
    fall = np.clip(0.75 + 0.45 * top_y - 0.35 * np.clip(top_y - 0.7, 0, None) * 3, 0.4, 1.0)
    t = teeth > 0
    big[t] = (colour[None, None, :] * (shade * seams)[None, :, None]
              * fall[:, None, None])[t]
    big *= np.clip(light, 0.2, 1.6)[None, None, :]
    mask = cv2.GaussianBlur(opening.astype(np.float32) / 255, (0, 0), SUPER * 0.5)
    _paste(rgb, box, np.clip(big, 0, 255), mask * (opening > 0))
    return True
