"""A new face's texture lit as the photo is: the photo's light measured on the fitted
mesh (studio.core.morphable.lighting), the new albedo given synthetic skin detail, then
shaded with that light on the new mesh. All of it in the model's UV layout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from studio.core.analysis.face_regions import BROWS, EYES, OUTER_LIPS
from studio.core.morphable.extras import DETAIL_SIGMA
from studio.core.morphable.lighting import Lighting, estimate
from studio.core.morphable.model import MorphableModel
from studio.core.morphable.render import vertex_normals
from studio.core.morphable.texture_map import UvRaster, interpolate, rasterize_uv

#: Nostrils and the nose's underside (mesh vertices), not skin for the light estimate.
NOSTRILS = (79, 166, 75, 60, 20, 238, 241, 125, 19, 354, 461, 458, 250, 290, 305, 392, 309)
SKIN_TONES = ("match", "model")
#: Shading is kept within this range of the face's median shading.
SHADE_RANGE = (0.45, 1.35)


def camera_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit vertex normals of image-space vertices (x right, y down, z away), in camera
    axes (x right, y up, z towards the viewer), facing the viewer."""
    v = np.asarray(vertices, np.float64)
    return vertex_normals(np.column_stack([v[:, 0], -v[:, 1], -v[:, 2]]), triangles)


@dataclass
class UvLayout:
    """The model's UV raster and which texels are skin (for measuring light and adding
    detail): not eyes, brows, lips or nostrils, and faded out towards the mesh's edge."""

    model: MorphableModel

    @cached_property
    def raster(self) -> UvRaster:
        m = self.model
        return rasterize_uv(m.uv, m.triangles, m.mean_texture.shape[0])

    @cached_property
    def skin(self) -> np.ndarray:
        size = self.raster.size
        mask = np.zeros((size, size), np.uint8)
        for ring in (*EYES, *BROWS, OUTER_LIPS):
            pts = np.round(self.model.uv[list(ring)] * size - 0.5).astype(np.int32)
            cv2.fillPoly(mask, [cv2.convexHull(pts)], 255)
        nose = np.round(self.model.uv[list(NOSTRILS)] * size - 0.5).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(nose)], 255)
        mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
        inside = self.raster.inside.astype(np.float32)
        edge = cv2.erode(inside, np.ones((7, 7), np.uint8))
        fade = cv2.GaussianBlur(edge, (0, 0), 2.0) * inside
        return (fade * (mask == 0)).astype(np.float32)

    @cached_property
    def _tone(self) -> np.ndarray:
        """(3, Kt): how each texture coefficient moves the mean skin colour."""
        w = self.skin[None, :, :, None]
        return ((self.model.texture_basis * w).sum((1, 2)) / max(float(w.sum()), 1e-6)).T

    def with_tone(self, coefficients: np.ndarray, like: np.ndarray, strength: float = 1.0
                  ) -> np.ndarray:
        """``coefficients`` changed as little as possible (least norm) so that their mean
        skin colour is that of ``like`` (another face's coefficients): the new face's
        colouring (lips, brows, shading of the features) then belongs with its skin tone,
        not only its average. ``strength`` < 1 goes part of the way."""
        b = self._tone
        gap = b @ (np.asarray(like) - np.asarray(coefficients))
        return coefficients + strength * (b.T @ np.linalg.solve(b @ b.T, gap))

    def texel_normals(self, vertices: np.ndarray) -> np.ndarray:
        n = interpolate(self.raster, self.model.triangles,
                        camera_normals(vertices, self.model.triangles))
        length = np.linalg.norm(n, axis=-1, keepdims=True)
        return n / np.where(length > 1e-9, length, 1.0)


def photo_lighting(layout: UvLayout, tex: np.ndarray, visible: np.ndarray,
                   fitted_vertices: np.ndarray) -> Lighting:
    """The photo's light on this face: its unwrapped skin (``texture_map.unwrap``'s texture
    and visibility) against the model's mean albedo on the fitted mesh's normals, with one
    robust pass that drops what does not fit (hair over the brow, a hand, glasses' shadows)."""
    model = layout.model
    observed = tex.reshape(-1, 3).astype(np.float64) / 255
    albedo = model.mean_texture.reshape(-1, 3).astype(np.float64)
    normals = layout.texel_normals(fitted_vertices).reshape(-1, 3)
    weight = (visible * layout.skin).ravel().astype(np.float64)
    light = estimate(normals, observed, albedo, weight)
    error = np.abs(observed - albedo * light.shade(normals)).mean(1)
    spread = np.median(error[weight > 0]) if (weight > 0).any() else 0.0
    return estimate(normals, observed, albedo, weight * (error < 3 * spread + 0.02))


def skin_detail(detail: np.ndarray, skin: np.ndarray, seed: int, gain: float = 0.6
                ) -> np.ndarray:
    """(T, T) synthetic fine detail: seeded band-pass noise with the training faces' local
    strength, on skin only. Nothing in it comes from any one face. The strength is capped
    at the skin's typical level, so that the training men's moustaches and stubble (the
    strongest detail above the lip) do not paint a shadow on every face."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(detail.shape).astype(np.float32)
    band = cv2.GaussianBlur(noise, (0, 0), 0.5) - cv2.GaussianBlur(noise, (0, 0), DETAIL_SIGMA)
    band /= max(float(band.std()), 1e-6)
    cap = float(np.percentile(detail[skin > 0.5], 50)) if (skin > 0.5).any() else 0.0
    return band * np.minimum(detail, cap) * skin * gain


def shaded_texture(albedo: np.ndarray, normals: np.ndarray, light: Lighting,
                   detail: np.ndarray | None = None) -> np.ndarray:
    """(T, T, 3) uint8: albedo (float [0, 1]) with detail added to its brightness, shaded."""
    a = albedo.astype(np.float32)
    if detail is not None:
        lum = a.mean(-1, keepdims=True)
        a = a * (1 + detail[..., None] / np.maximum(lum, 0.05))
    shade = light.shade(normals).astype(np.float32)
    # A highlight or a shadow the second-order terms overshoot (a shiny nose, a face lit
    # from one side) is limited to a plausible range about the face's typical shading.
    typical = np.median(shade.reshape(-1, 3), axis=0)
    shade = np.clip(shade, SHADE_RANGE[0] * typical, SHADE_RANGE[1] * typical)
    shaded = a * shade
    return np.clip(np.round(shaded * 255), 0, 255).astype(np.uint8)


def match_tone(albedo: np.ndarray, reference: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """``albedo`` rescaled per channel so that its mean skin colour is ``reference``'s."""
    w = skin[..., None]
    mean_a = (albedo * w).sum((0, 1)) / max(float(w.sum()), 1e-6)
    mean_r = (reference * w).sum((0, 1)) / max(float(w.sum()), 1e-6)
    return albedo * (mean_r / np.maximum(mean_a, 1e-6))
