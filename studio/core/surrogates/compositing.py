"""Putting a rendered face into its photo: the mask, the seam, the grain, the fallbacks.

Poisson (seamless) cloning takes the new face's gradients and the photo's own colour at
the mask's edge, so skin tone and light meet at the seam without a line; a feathered
alpha then hides the clone's last pixel. Pixels outside the mask are never touched.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

#: Below this landmark-box width (pixels) a face is too small to fit; it is blurred.
MIN_FACE_PX = 24
CONTEXTS = ("keep", "blur")
#: ``ContextRequest.hair``: the hair, ears and neck around a face kept, or blurred.
HAIRS = ("keep", "blur")
#: The head around a face that ``blur_head`` blurs: an ellipse about the face's oval,
#: raised by this share of its height, with semi-axes these shares of its width and height.
HEAD_RAISE, HEAD_AXES = 0.15, (0.85, 0.85)


def face_width(landmarks: np.ndarray) -> float:
    xy = np.asarray(landmarks)[:, :2]
    return float(np.ptp(xy[:, 0]))


def is_grayscale(rgb: np.ndarray) -> bool:
    """A photo whose channels (nearly) agree everywhere: a grey face must go into it."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 40_000)))
    s = rgb[::step, ::step].astype(np.int16)
    return bool(np.abs(s[..., 0] - s[..., 1]).mean() < 2
                and np.abs(s[..., 1] - s[..., 2]).mean() < 2)


def photo_grain(rgb: np.ndarray, mask: np.ndarray) -> float:
    """The photo's pixel noise inside ``mask`` (a robust σ of its finest high-pass)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    high = grey - cv2.GaussianBlur(grey, (0, 0), 1.0)
    vals = high[mask > 0]
    if vals.size < 50:
        return 0.0
    return float(1.4826 * np.median(np.abs(vals - np.median(vals))))


def face_masks(coverage: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The clone mask (uint8, the rendered face eroded) and the feathered alpha inside it.

    Eroded and blurred on the rendered part's box only, grown by the reach of both (zeros
    there, as around it): the same masks (the feather to a float's last bit), where a
    12-megapixel photo's slider repaint spent 0.9 s of its 1.3 s CPU eroding and blurring
    the empty rest of the frame."""
    erode = max(1, round(0.03 * width))
    feather = max(1.0, 0.025 * width)
    drawn = coverage > 0.5
    hard = np.zeros(coverage.shape, np.uint8)
    soft = np.zeros(coverage.shape, np.float32)
    rows, cols = np.flatnonzero(drawn.any(1)), np.flatnonzero(drawn.any(0))
    if len(rows) == 0:
        return hard, soft
    grow = erode + 2 + int(np.ceil(4 * feather)) + 2  # both erosions, the blur's kernel
    y0, y1 = max(rows[0] - grow, 0), min(rows[-1] + grow + 1, coverage.shape[0])
    x0, x1 = max(cols[0] - grow, 0), min(cols[-1] + grow + 1, coverage.shape[1])
    part = drawn[y0:y1, x0:x1].astype(np.uint8) * 255
    part = cv2.erode(part, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                     (2 * erode + 1, 2 * erode + 1)))
    feathered = cv2.GaussianBlur(cv2.erode(part, np.ones((3, 3), np.uint8)).astype(np.float32)
                                 / 255, (0, 0), feather)
    hard[y0:y1, x0:x1] = part
    soft[y0:y1, x0:x1] = feathered * (part > 0)
    return hard, soft


def match_low_frequencies(render: np.ndarray, photo: np.ndarray, weight: np.ndarray,
                          sigma: float) -> np.ndarray:
    """``render`` plus the photo's low-frequency difference from it (a normalised
    convolution over ``weight``, the skin the two share): light falloff, exposure and tint
    of the photo carried over at scales far too coarse to carry a face's features."""
    h, wd = weight.shape
    # So coarse a blur loses nothing at a quarter of the blur's width: done small and
    # brought back up (a 300 px face: 20 ms at full size).
    step = max(1, int(sigma / 4))
    small = (max(1, wd // step), max(1, h // step))
    diff = (photo.astype(np.float32) - render.astype(np.float32)) * weight[..., None]
    w = cv2.GaussianBlur(cv2.resize(weight.astype(np.float32), small,
                                    interpolation=cv2.INTER_AREA), (0, 0), sigma / step)
    d = cv2.GaussianBlur(cv2.resize(diff, small, interpolation=cv2.INTER_AREA), (0, 0),
                         sigma / step)
    corr = d / np.maximum(w, 1e-3)[..., None] * np.clip(w / 0.05, 0, 1)[..., None]
    corr = cv2.resize(corr, (wd, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(render.astype(np.float32) + corr + 0.5, 0, 255).astype(np.uint8)


def blend(photo: np.ndarray, face: np.ndarray, hard: np.ndarray, soft: np.ndarray,
          poisson: bool = True) -> np.ndarray:
    """``face`` (the photo with the render over it) cloned into ``photo`` inside ``hard``,
    then mixed by ``soft``; a copy of ``photo`` elsewhere."""
    out = photo.copy()
    ys, xs = np.nonzero(hard)
    if len(xs) == 0:
        return out
    h, w = hard.shape
    pad = 8
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    y0 = max(ys.min() - pad, 0)
    y1 = min(ys.max() + pad + 1, h)
    dst = cv2.copyMakeBorder(photo[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(face[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m = cv2.copyMakeBorder(hard[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_CONSTANT, 0)
    bx, by, bw, bh = cv2.boundingRect(m)
    cloned = face[y0:y1, x0:x1]  # alpha blending, or a mask too degenerate to clone
    if poisson:
        with contextlib.suppress(cv2.error):
            cloned = cv2.seamlessClone(src, dst, m, (bx + bw // 2, by + bh // 2),
                                       cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    a = soft[y0:y1, x0:x1, None]
    region = photo[y0:y1, x0:x1].astype(np.float32)
    mixed = cloned.astype(np.float32) * a + region * (1 - a)
    out[y0:y1, x0:x1] = np.where(a > 0, np.clip(mixed + 0.5, 0, 255), region).astype(np.uint8)
    return out


def blur_face(photo: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A face too small to fit, blurred beyond recognition inside its grown hull; returns
    the image and the (H, W) mask of what changed."""
    xy = np.asarray(landmarks, np.float32)[:, :2]
    centre = xy.mean(0)
    hull = cv2.convexHull((xy - centre) * 1.25 + centre)
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 255)
    sigma = max(2.0, 0.2 * face_width(landmarks))
    blurred = cv2.GaussianBlur(photo, (0, 0), sigma)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), max(1.0, sigma / 4))
    soft = (soft * (mask > 0))[..., None]
    out = np.clip(blurred * soft + photo * (1 - soft) + 0.5, 0, 255).astype(np.uint8)
    return np.where(soft > 0, out, photo), mask > 0


def blur_context(photo: np.ndarray, keep: np.ndarray, width: float) -> np.ndarray:
    """Everything but the new faces (``keep``, float [0, 1]) blurred so strongly that hair,
    ears and background carry no identity."""
    sigma = max(4.0, 0.15 * width)
    blurred = cv2.GaussianBlur(photo, (0, 0), sigma).astype(np.float32)
    k = keep[..., None].astype(np.float32)
    return np.clip(photo * k + blurred * (1 - k) + 0.5, 0, 255).astype(np.uint8)


def toned_like(photo: np.ndarray, render: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``photo`` (float) scaled per channel so its mean over ``weight`` is the render's:
    its light's fall-off and shadows without its skin's own tone (``skin="model"``)."""
    w = weight[..., None].astype(np.float32)
    total = max(float(w.sum()), 1e-3)
    mean_photo = (photo.astype(np.float32) * w).sum((0, 1)) / total
    mean_render = (render.astype(np.float32) * w).sum((0, 1)) / total
    gain = mean_render / np.maximum(mean_photo, 1.0)
    return np.clip(photo.astype(np.float32) * gain, 0, 255)


def blur_head(photo: np.ndarray, keep: np.ndarray, landmarks: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The hair, ears and neck around one face (a head-sized ellipse about its oval)
    blurred as ``blur_context`` blurs, the new face (``keep``) and the rest of the photo
    kept; returns the image and the (H, W) mask of what changed."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    w, h = hi - lo
    centre = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 - HEAD_RAISE * h)
    axes = (HEAD_AXES[0] * w, HEAD_AXES[1] * h)
    region = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(region, (round(centre[0]), round(centre[1])),
                (max(1, round(axes[0])), max(1, round(axes[1]))), 0, 0, 360, 255, -1)
    soft = cv2.GaussianBlur(region.astype(np.float32) / 255, (0, 0),
                            max(1.0, 0.05 * float(w)))
    blurred = blur_context(photo, np.maximum(keep, 1 - soft), float(w))
    return blurred, (soft > 1e-3) & (keep < 1)


def hull_mask(shape: tuple[int, ...], landmarks: np.ndarray, offset: tuple[int, int] = (0, 0)
              ) -> np.ndarray:
    """(H, W) float32, 1 inside the landmarks' convex hull (shifted by ``-offset``)."""
    xy = np.asarray(landmarks, np.float32)[:, :2] - np.asarray(offset, np.float32)
    mask = np.zeros(shape[:2], np.float32)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(xy)).astype(np.int32), 1.0)
    return mask


def paste_crop(photo: np.ndarray, landmarks: np.ndarray, face: np.ndarray) -> np.ndarray:
    """``face``, a surrogate drawn in the canonical crop frame of the face at ``landmarks``
    (GAN and 3D surrogates), warped back to the face's place (the inverse of ``crop``'s
    affine) and cloned into a copy of ``photo`` inside the landmarks' hull, as the
    in-context faces are. Only a window around the face is worked on, so a large photo
    costs no more than a small one."""
    from studio.core.analysis.framing import CropFrame, crop_matrix

    lm = np.asarray(landmarks, np.float64)
    width = face_width(lm)
    h, w = photo.shape[:2]
    pad = int(0.2 * width) + 16  # the feather and the clone's border fit in
    x0, y0 = (max(int(np.floor(v)) - pad, 0) for v in lm[:, :2].min(0))
    x1, y1 = int(min(np.ceil(lm[:, 0].max()) + pad, w)), int(min(np.ceil(lm[:, 1].max()) + pad, h))
    if x1 <= x0 or y1 <= y0:
        return photo.copy()
    m = crop_matrix(CropFrame.from_landmarks(lm), face.shape[0])
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # window pixels -> crop pixels
    drawn = cv2.warpAffine(np.ascontiguousarray(face), m, (x1 - x0, y1 - y0),
                           flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    hard, soft = face_masks(hull_mask(drawn.shape, lm, (x0, y0)), width)
    out = photo.copy()
    out[y0:y1, x0:x1] = blend(photo[y0:y1, x0:x1], drawn, hard, soft)
    return out
