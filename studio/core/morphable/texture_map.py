"""Unwrap a photographed face into the canonical mesh's UV layout (piecewise affine).

Every texel is assigned once to the mesh triangle that covers it in UV space, with its
barycentric coordinates; a face's texture is then one ``cv2.remap`` of the photo through
the same barycentric mix of that face's landmark positions, the piecewise-affine warp
without a per-triangle loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np


@dataclass(frozen=True)
class UvRaster:
    size: int
    triangle: np.ndarray  # (T, T) int: covering triangle, -1 outside the mesh
    bary: np.ndarray  # (T, T, 3) barycentric weights of its three vertices

    @property
    def inside(self) -> np.ndarray:
        return self.triangle >= 0

    @cached_property
    def nearest_inside(self) -> np.ndarray:
        """(T*T,) flat index of the nearest texel inside the mesh, for every texel (itself
        where inside): computed once, so filling a texture's outside is one gather."""
        inside = self.inside
        outside = (~inside).astype(np.uint8)
        if not inside.any():
            return np.arange(inside.size)
        _, labels = cv2.distanceTransformWithLabels(outside, cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
        flat = np.flatnonzero(inside)
        index_of = np.zeros(int(labels.max()) + 1, np.int64)
        index_of[labels.ravel()[flat]] = flat
        return index_of[labels.ravel()]


def rasterize_uv(uv: np.ndarray, triangles: np.ndarray, size: int) -> UvRaster:
    """Which triangle covers each texel centre (v = 0 is the top row)."""
    tri_of = np.full((size, size), -1, np.int32)
    bary = np.zeros((size, size, 3), np.float32)
    pts = np.asarray(uv, np.float64) * size - 0.5  # texel centres at integer + 0.5
    for f, (i, j, k) in enumerate(triangles):
        a, b, c = pts[i], pts[j], pts[k]
        x0, y0 = np.floor(np.minimum(np.minimum(a, b), c)).astype(int)
        x1, y1 = np.ceil(np.maximum(np.maximum(a, b), c)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
        if x1 < x0 or y1 < y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        m = np.array([[b[0] - a[0], c[0] - a[0]], [b[1] - a[1], c[1] - a[1]]])
        det = np.linalg.det(m)
        if abs(det) < 1e-12:
            continue
        inv = np.linalg.inv(m)
        dx, dy = xs - a[0], ys - a[1]
        l2 = inv[0, 0] * dx + inv[0, 1] * dy
        l3 = inv[1, 0] * dx + inv[1, 1] * dy
        l1 = 1 - l2 - l3
        hit = (l1 >= -1e-6) & (l2 >= -1e-6) & (l3 >= -1e-6)
        tri_of[ys[hit], xs[hit]] = f
        bary[ys[hit], xs[hit]] = np.stack([l1[hit], l2[hit], l3[hit]], axis=-1)
    return UvRaster(size, tri_of, bary)


def unwrap(rgb: np.ndarray, landmarks: np.ndarray, raster: UvRaster,
           triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, T, 3) uint8 texture of this face and a (T, T) visibility weight in [0, 1].

    Texels on triangles that face away from the camera get weight 0 (hidden by the head).
    """
    pts = np.asarray(landmarks, np.float64)[:, :3]
    inside = raster.inside
    tri = triangles[np.where(inside, raster.triangle, 0)]  # (T, T, 3) vertex ids
    xy = (raster.bary[..., :, None] * pts[tri][..., :2]).sum(axis=-2)
    map_x = np.where(inside, xy[..., 0], -1).astype(np.float32)
    map_y = np.where(inside, xy[..., 1], -1).astype(np.float32)
    texture = _remap_face(rgb, map_x, map_y, inside)
    # Facing: image-space normal of each triangle; the camera looks along +z (into the
    # screen), so a visible triangle's normal points to -z.
    v = pts[triangles]
    normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(normal, axis=1) + 1e-9
    facing = np.clip(-normal[:, 2] / length, 0, 1)
    # The canonical triangles wind one way; take whichever sign most triangles agree on.
    if np.median(normal[:, 2]) > 0:
        facing = np.clip(normal[:, 2] / length, 0, 1)
    weight = np.where(inside, facing[np.where(inside, raster.triangle, 0)], 0.0)
    return texture, weight.astype(np.float32)


def _remap_face(rgb: np.ndarray, map_x: np.ndarray, map_y: np.ndarray,
                inside: np.ndarray) -> np.ndarray:
    """``cv2.remap`` of the face's own box of the photo only: OpenCV refuses a source of
    32767 px or more on a side (a panorama), and the face needs no more. Shifting the maps
    by whole pixels leaves the result exactly as a remap of the whole photo; texels outside
    the mesh get the photo's corner, as a remap of the whole photo gave them."""
    h, w = rgb.shape[:2]
    if not inside.any():
        return np.broadcast_to(rgb[0, 0], (*map_x.shape, 3)).copy()
    xs, ys = map_x[inside], map_y[inside]
    x0 = int(np.clip(np.floor(xs.min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(xs.max()) + 2, x0 + 1, w))
    y0 = int(np.clip(np.floor(ys.min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(ys.max()) + 2, y0 + 1, h))
    box = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    texture = cv2.remap(box, np.where(inside, map_x - x0, -1).astype(np.float32),
                        np.where(inside, map_y - y0, -1).astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    texture[~inside] = rgb[0, 0]
    return texture


def fill_outside(texture: np.ndarray, raster: UvRaster) -> np.ndarray:
    """Extend colours past the mesh's UV islands (each outside texel takes its nearest
    inside texel's colour), so bilinear sampling at triangle edges never pulls in black.
    One gather: an inpaint here cost 4 ms of every slider repaint."""
    channels = texture.shape[2:]
    return texture.reshape(-1, *channels)[raster.nearest_inside].reshape(texture.shape)


def interpolate(raster: UvRaster, triangles: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(T, T, C) per-texel mix of per-vertex ``values`` (N, C), through each texel's
    covering triangle and barycentrics (0 outside the mesh)."""
    inside = raster.inside
    tri = triangles[np.where(inside, raster.triangle, 0)]  # (T, T, 3)
    out = (raster.bary[..., :, None] * np.asarray(values)[tri]).sum(axis=-2)
    out[~inside] = 0
    return out
