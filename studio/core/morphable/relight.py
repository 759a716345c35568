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
#: ``match``: the photo's skin colour; ``model``: the drawn identity's own; ``bucket``: the
#: photo's skin colour snapped to one of a few tones (``TONES``).
SKIN_TONES = ("match", "model", "bucket")
#: ``bucket``'s skin tones: the luma (Rec. 601) at which one ends and the next begins, and
#: the one colour each gives every face in it: the quintiles of the photo's skin colour
#: (``photo_tone``) over the morphable model's build faces and each quintile's mean
#: colour (``benchmarks/tone_buckets.py`` prints them: 822 colour photos, every 4th build
#: image; training photos only, no test face). log2 of their number is all the tone that
#: crosses (2.3 bits).
TONE_EDGES = (0.442, 0.537, 0.603, 0.673)
TONE_COLOURS = ((0.481, 0.322, 0.261), (0.634, 0.444, 0.361), (0.709, 0.525, 0.441),
                (0.765, 0.588, 0.520), (0.853, 0.711, 0.650))
#: Rec. 601 luma weights: a skin colour's brightness, the one number the buckets cut.
LUMA = np.array([0.299, 0.587, 0.114])
#: Shading is kept within this range of the face's median shading.
SHADE_RANGE = (0.45, 1.35)


def camera_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit vertex normals of image-space vertices (x right, y down, z away), in camera
    axes (x right, y up, z towards the viewer), facing the viewer."""
    v = np.asarray(vertices, np.float64)
    return vertex_normals(np.column_stack([v[:, 0], -v[:, 1], -v[:, 2]]), triangles)


@dataclass(frozen=True)
class ToneBuckets:
    """Skin tones cut into buckets by brightness (luma): where one ends and the next
    begins, and the one colour each bucket gives every face in it."""

    edges: np.ndarray  # (N - 1,) luma between buckets, rising
    colours: np.ndarray  # (N, 3) each bucket's mean skin colour, [0, 1]

    def index(self, colour: np.ndarray) -> int:
        return int(np.searchsorted(self.edges, float(np.asarray(colour) @ LUMA)))

    def snap(self, colour: np.ndarray) -> np.ndarray:
        """(3,) the colour of the bucket ``colour`` falls in: its broad tone only."""
        return self.colours[self.index(colour)]


TONES = ToneBuckets(np.array(TONE_EDGES), np.array(TONE_COLOURS))


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

    def skin_colour(self, coefficients: np.ndarray | None) -> np.ndarray:
        """(3,) the mean skin colour of texture coefficients (None: the mean face's)."""
        mean = skin_mean(self.model.mean_texture, self.skin)
        return mean if coefficients is None else mean + self._tone @ np.asarray(coefficients)

    def with_tone(self, coefficients: np.ndarray, like: np.ndarray, strength: float = 1.0
                  ) -> np.ndarray:
        """``coefficients`` changed as little as possible (least norm) so that their mean
        skin colour is that of ``like`` (another face's coefficients): the new face's
        colouring (lips, brows, shading of the features) then belongs with its skin tone,
        not only its average. ``strength`` < 1 goes part of the way."""
        return self.with_colour(coefficients, self.skin_colour(like), strength)

    def with_colour(self, coefficients: np.ndarray, colour: np.ndarray,
                    strength: float = 1.0) -> np.ndarray:
        """``with_tone`` towards a skin colour (3,) rather than another face's."""
        b = self._tone
        gap = np.asarray(colour) - self.skin_colour(coefficients)
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


def photo_tone(layout: UvLayout, texture: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(3,) a face's skin colour as its photo shows it, lit as it is: the mean of its
    unwrapped skin (``texture_map.unwrap``'s uint8 texture and visibility). Not the texture
    coefficients' colour: their projection counts unseen texels as the mean face's and
    halved the spread of skin tones (luma s.d. 0.077 against 0.139 on 120 UTKFace
    training faces)."""
    return skin_mean(texture.astype(np.float32) / 255, layout.skin * visible)


def skin_mean(texture: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(3,) a texture's (T, T, 3) mean over the skin weights (T, T)."""
    w = skin[..., None]
    return (texture * w).sum((0, 1)) / max(float(w.sum()), 1e-6)


def match_tone(albedo: np.ndarray, reference: np.ndarray | None, skin: np.ndarray,
               colour: np.ndarray | None = None) -> np.ndarray:
    """``albedo`` rescaled per channel so that its mean skin colour is ``reference``'s
    (a texture), or ``colour`` (3,)."""
    target = colour if colour is not None else skin_mean(reference, skin)
    return albedo * (target / np.maximum(skin_mean(albedo, skin), 1e-6))


def light_shape(light: Lighting, normals: np.ndarray, skin: np.ndarray) -> Lighting:
    """``light`` without its colour and level: grey, scaled to a mean shade of 1 over the
    skin of a face with these texel normals (T, T, 3); its direction and fall-off stay."""
    grey = light.grey()
    level = float(skin_mean(grey.shade(normals), skin).mean())
    return Lighting(grey.coefficients / max(level, 1e-6), grey.residual)
