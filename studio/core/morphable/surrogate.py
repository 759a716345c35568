"""3D surrogates: the original's expression and pose on another identity, rendered offscreen.

The render uses the original's crop framing (studio.core.analysis.framing), so the 3D surrogate,
the GAN surrogate and the original's crop line up in the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from studio.core.analysis.attributes import Attributes
from studio.core.analysis.calibration import load_calibration
from studio.core.analysis.framing import CropFrame, crop
from studio.core.analysis.landmarks import BLENDSHAPE_NAMES
from studio.core.morphable.extras import ModelExtras
from studio.core.morphable.model import Fit, MorphableModel, rotation_from_angles
from studio.core.morphable.render import MeshRenderer, View
from studio.core.morphable.texture_map import fill_outside, rasterize_uv, unwrap

#: "reconstruction" rebuilds the original's own identity (shape and texture): for checking
#: the fit only, never a surrogate.
RECONSTRUCTION = "reconstruction"
BACKGROUNDS = ("plain", "blurred")
PLAIN_GREY = (118, 120, 126)
#: Blendshapes a joy edit may move.
EDITABLE = np.array([n.startswith(("mouth", "cheek")) for n in BLENDSHAPE_NAMES])


@dataclass(frozen=True)
class Request3D:
    """What to draw: an identity (a seed, 0 for the model's mean face, or RECONSTRUCTION),
    target attributes (None: the original's), and how to show it. A drawn identity is set
    along the gender axis to the target P(male) (``gender``), as the in-context surrogate's
    is: without it the 3D surrogate kept gender at chance (51.6%). ``grey``: the render in
    grey, for a grayscale photo."""

    identity: int | str = 0
    targets: Attributes | None = None
    mode: str = "textured"
    background: str = "plain"
    view: View = field(default_factory=View)
    size: int = 256
    gender: bool = True
    grey: bool = False


@dataclass(frozen=True)
class Surrogate3D:
    image: np.ndarray  # (size, size, 3) uint8
    request: Request3D
    expression: np.ndarray  # (52,) what was rendered
    fit_nme: float
    fit_ms: float
    render_ms: float

    @property
    def is_reconstruction(self) -> bool:
        return self.request.identity == RECONSTRUCTION


def joy_edit(blendshapes: np.ndarray, joy: float, iterations: int = 6) -> np.ndarray:
    """The smallest change of the mouth and cheek blendshapes that makes the studio's joy
    logistic read ``joy``: a step along the logistic's own weights, repeated while scores
    pinned at 0 or 1 drop out. (Moving only the two smile scores failed one edit in four;
    this misses about one in seventy.) Eyes and brows are left alone."""
    cal = load_calibration()
    w = cal.joy_coef
    p = min(max(joy, 1e-3), 1 - 1e-3)
    target = float(np.log(p / (1 - p)))
    out = np.asarray(blendshapes, np.float64).copy()
    for _ in range(iterations):
        gap = target - (float(w @ out) + cal.joy_intercept)
        if abs(gap) < 1e-3:
            break
        pinned = ((out <= 0) & (np.sign(w) * gap < 0)) | ((out >= 1) & (np.sign(w) * gap > 0))
        wf = np.where(EDITABLE & ~pinned, w, 0.0)
        if float(wf @ wf) < 1e-9:
            break
        out = np.clip(out + gap * wf / float(wf @ wf), 0.0, 1.0)
    return out


class Surrogate3DMaker:
    """Fits faces to the morphable model and renders surrogates; safe from any thread (the
    renderer serialises GL work on its own thread)."""

    def __init__(self, model: MorphableModel | None = None,
                 renderer: MeshRenderer | None = None) -> None:
        self.model = model or MorphableModel.load()
        self.renderer = renderer or MeshRenderer()
        self._raster = rasterize_uv(self.model.uv, self.model.triangles,
                                    self.model.mean_texture.shape[0])
        self._extras: ModelExtras | None = None

    @property
    def extras(self) -> ModelExtras:
        """The model's gender axis (``extras``), loaded when first needed."""
        if self._extras is None:
            self._extras = ModelExtras.load()
        return self._extras

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> Surrogate3DMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fit(self, landmarks: np.ndarray, blendshapes: np.ndarray,
            rgb: np.ndarray | None = None) -> tuple[Fit, float]:
        """Shape fit, plus the photo's texture coefficients when ``rgb`` is given (new
        identities are then kept away from the original's texture too)."""
        t0 = time.perf_counter()
        fit = self.model.fit(landmarks, blendshapes)
        if rgb is not None:
            tex, weight = unwrap(rgb, landmarks, self._raster, self.model.triangles)
            fit = replace(fit, texture=self.model.project_texture(tex, weight))
        return fit, (time.perf_counter() - t0) * 1e3

    def make(self, rgb: np.ndarray, landmarks: np.ndarray, blendshapes: np.ndarray,
             attributes: Attributes, request: Request3D = Request3D(),
             fit: Fit | None = None) -> Surrogate3D:
        fit_ms = 0.0
        if fit is None or fit.texture is None:
            fit, fit_ms = self.fit(landmarks, blendshapes, rgb)
        model = self.model
        targets = request.targets or attributes
        # Surrogates wear MediaPipe's blendshape scores, which describe the expression apart
        # from the face's shape; the fitted coefficients also soak up some of the original's
        # identity (smile agreement of re-analysed renders 0.965 against 0.947).
        reconstruction = request.identity == RECONSTRUCTION
        expression = np.asarray(fit.expression if reconstruction else blendshapes, np.float64)
        if abs(targets.joy - attributes.joy) >= 1e-3:
            expression = joy_edit(expression, targets.joy)
        delta = rotation_from_angles(targets.yaw - attributes.yaw,
                                     targets.pitch - attributes.pitch,
                                     targets.roll - attributes.roll)
        rotation = delta @ fit.rotation
        if reconstruction:
            identity = fit.identity
            tex, weight = unwrap(rgb, landmarks, self._raster, model.triangles)
            mean = model.texture()
            texture = np.where(weight[..., None] > 0.2, tex, mean)
            texture = fill_outside(texture, self._raster)
        elif int(request.identity) == 0:
            identity, texture = None, model.texture()
        else:
            identity, tex_coef = model.sample_identity(int(request.identity), away_from=fit)
            if request.gender:
                identity, tex_coef = self.extras.gender.apply(identity, tex_coef,
                                                              targets.p_male)
            texture = model.texture(tex_coef)
        vertices = model.posed(fit, identity, expression, rotation)
        frame = CropFrame.from_landmarks(np.asarray(landmarks))
        size = request.size
        k = size / frame.side
        verts = np.empty_like(vertices)
        verts[:, 0] = (vertices[:, 0] - frame.cx) * k + size / 2
        verts[:, 1] = (vertices[:, 1] - frame.cy) * k + size / 2
        verts[:, 2] = vertices[:, 2] * k
        background: np.ndarray | tuple[int, int, int] = PLAIN_GREY
        if request.background == "blurred":
            # So blurred that no identity survives: only the scene's colours are kept.
            small = crop(rgb, frame, size=16)
            background = cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (size, size),
                                    interpolation=cv2.INTER_CUBIC)
        t0 = time.perf_counter()
        image = self.renderer.render(verts, model.triangles, uv=model.uv, texture=texture,
                                     mode=request.mode, background=background,
                                     view=request.view, size=size)
        render_ms = (time.perf_counter() - t0) * 1e3
        if request.grey:
            image = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        return Surrogate3D(image, request, expression, fit.nme, fit_ms, render_ms)
