"""The in-context surrogate: every face of a photo replaced inside the photo itself.

For each face: the morphable model's fit (pose, identity, expression), a new identity
drawn away from the original and set along the gender axis to the requested P(male), the
photo's own light measured on the fitted mesh and put on the new albedo, a render at the
photo's resolution, eyes and mouth painted from nobody, then Poisson cloning into the
photo. The hair, ears, neck, clothes and background stay (``context="keep"``) or are
blurred away (``"blur"``). Which numbers of the original cross into the new face is
written in docs/privacy.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import cv2
import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.attributes import Attributes
from studio.core.analysis.face_regions import FACE_OVAL
from studio.core.errors import StudioError
from studio.core.morphable.extras import GENDER_EMPHASIS, ModelExtras
from studio.core.morphable.lighting import Lighting
from studio.core.morphable.model import Fit, MorphableModel, rotation_from_angles
from studio.core.morphable.relight import (
    SKIN_TONES,
    TONES,
    UvLayout,
    light_shape,
    match_tone,
    photo_lighting,
    photo_tone,
    shaded_texture,
    skin_detail,
)
from studio.core.morphable.render import MeshRenderer
from studio.core.morphable.surrogate import joy_edit
from studio.core.morphable.texture_map import fill_outside, unwrap
from studio.core.refiner.model import FaceToRefine, load_refiner
from studio.core.surrogates import compositing
from studio.core.surrogates.face_paint import paint_eyes, paint_mouth
from studio.core.surrogates.outline import OUTLINES, clear_original, covering, open_outline

#: The largest side a face is rendered at; larger faces are rendered at this and resized.
MAX_RENDER = 1024
#: Faces are drawn at twice their size (antialiasing the texture) up to this side, and
#: never below their own size. The texture is 128 px, so a larger draw adds no detail
#: (edges have 4x multisampling): a 300 px face drawn at 384 px rather than 660 px took
#: ~7 ms off each slider repaint.
SUPERSAMPLE_UP_TO = 384
#: Blue and green irises only on faces whose photo shows a skin tone in this bucket of
#: ``relight.TONES`` or lighter: the two darker fifths got them one time in four, and a
#: blue iris in a brown face read as painted. Only the broad tone decides (2 bits).
LIGHT_IRISES_FROM = 2
#: Pose edits beyond these (degrees: yaw, pitch, roll) would uncover the original face
#: around the new one, so they are clamped, and the result says so.
MAX_TURN = (15.0, 12.0, 15.0)
#: How far a new identity's colouring is moved towards the original's skin tone (1: all
#: the way; its mean colour is matched exactly in any case).
TONE_STRENGTH = 0.5
#: The photo's light and tint at scales coarser than this share of the face's width are
#: carried onto the new face (0: not at all).
LOW_FREQUENCY = 0.2
#: Poisson cloning at the seam. Off: where a face borders a bright wall, cloning pulled
#: the wall's colour into the face (a brown face came out pale), while the low-frequency
#: match and a feathered edge measured the same on realism, smile and identity (150
#: held-out UTKFace faces) without that failure.
POISSON = False
#: The photo's measured fine noise includes its skin's own texture, so only this share of
#: it (at most MAX_GRAIN grey levels) is added to the new face as grain.
GRAIN_SHARE = 0.5
MAX_GRAIN = 4.0
#: Identities are drawn with the model's full variance: shrinking them towards the mean
#: made every face the same average face to the identity network.
SPREAD = 1.0
#: ``ContextRequest.identity``: drawn away from the original, or from the model alone.
IDENTITIES = ("away", "free")


@dataclass(frozen=True)
class ContextRequest:
    """How to replace the faces: ``seed`` picks the identities (face i gets seed + 7919 i),
    ``targets`` edit the first face's attributes (None: keep the original's)."""

    seed: int = 1
    targets: Attributes | None = None
    context: str = "keep"
    skin: str = "match"
    #: The learned last step (``refiner``): False gives the unrefined composite.
    refine: bool = True
    #: "keep": the original's silhouette; "new": the new identity's, over the original's;
    #: "new-ring": that, and a ring past both painted by the refiner (``surrogates.outline``).
    outline: str = "keep"
    #: "keep", or "blur": the hair, ears and neck around each face blurred, the rest of
    #: the photo kept (``compositing.blur_head``).
    hair: str = "keep"
    #: "away": every identity pushed to the far side of the mean face from the original's
    #: (``MorphableModel.sample_identity``), which every output of one person then shares;
    #: "free": the first draw from the model alone (a redraw the read-back asks for is
    #: pushed away as before).
    identity: str = "away"

    def __post_init__(self) -> None:
        for name, choices in (("context", compositing.CONTEXTS), ("skin", SKIN_TONES),
                              ("outline", OUTLINES), ("hair", compositing.HAIRS),
                              ("identity", IDENTITIES)):
            value = getattr(self, name)
            if value not in choices:
                raise StudioError(f"{name} must be one of {', '.join(choices)}, "
                                  f"not {value!r}")


@dataclass(frozen=True)
class Redraw:
    """Another try at one face (studio.core.surrogates.verified): the ``draw``-th identity
    of its seed, at least ``margin`` standard deviations past the mean face from the
    original (MorphableModel.sample_identity), a joy target that corrects what the previous
    try was read as (None: the original's expression), and how far along the gender axis
    the face is set (extras.GENDER_EMPHASIS); its own outline (None: the request's)."""

    draw: int = 0
    margin: float | None = 1.0  # None: not pushed away (``ContextRequest.identity``)
    joy: float | None = None
    gender_emphasis: float = GENDER_EMPHASIS
    outline: str | None = None

    def outline_of(self, request: ContextRequest) -> str:
        return self.outline or request.outline


@dataclass(frozen=True)
class PreparedFace:
    """What a face's replacement needs from the original, measured once (the sliders then
    only re-render): the fit and the photo's light on it."""

    face: FaceAnalysis
    fit: Fit | None  # None: too small to fit, blurred instead
    light: Lighting | None
    tone: np.ndarray | None = None  # (3,) its skin colour as the photo shows it


@dataclass(frozen=True)
class FaceOutcome:
    index: int
    replaced: bool  # False: blurred instead
    reason: str
    seed: int | None


@dataclass(frozen=True)
class ContextResult:
    image: np.ndarray  # (H, W, 3) uint8, the photo's size
    changed: np.ndarray = field(repr=False)  # (H, W) bool: the pixels that may differ
    faces: list[FaceOutcome] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: (H, W) bool: where a new face was drawn (the faces' clone masks, before any blur
    #: of the context); what the refiner may change.
    rendered: np.ndarray | None = field(default=None, repr=False)

    @property
    def replaced(self) -> int:
        return sum(f.replaced for f in self.faces)


def face_seed(seed: int, index: int, draw: int = 0) -> int:
    """The identity seed of face ``index`` of a photo, on its ``draw``-th draw."""
    return seed + 7919 * index + 104729 * draw


def _silhouette_weights(model: MorphableModel) -> np.ndarray:
    """(468,) how much of the new identity each vertex takes: none on the face's outline
    (so the new face ends where the original did, with no seam or double jaw), all of it
    from a tenth of the UV square inside."""
    uv = model.uv
    oval = uv[list(FACE_OVAL)]
    d = np.min(np.linalg.norm(uv[:, None, :] - oval[None, :, :], axis=-1), axis=1)
    return np.clip((d - 0.015) / 0.1, 0.0, 1.0)


class InContextMaker:
    """Replaces faces in photos; safe from any thread (the renderer serialises GL work)."""

    def __init__(self, model: MorphableModel | None = None, extras: ModelExtras | None = None,
                 renderer: MeshRenderer | None = None, refine: bool = True) -> None:
        """``refine``: load the refiner (``studio.core.refiner``); where its file is missing
        or unreadable the faces go unrefined and every result says so."""
        self.model = model or MorphableModel.load()
        self.extras = extras or ModelExtras.load()
        self.renderer = renderer or MeshRenderer()
        self.layout = UvLayout(self.model)
        self.refiner, self.refiner_note = (load_refiner() if refine
                                           else (None, "the refiner is off"))

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> InContextMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def _weights(self) -> np.ndarray:
        return _silhouette_weights(self.model)[:, None]

    # -- per face ---------------------------------------------------------------------
    def prepare(self, rgb: np.ndarray, face: FaceAnalysis) -> PreparedFace:
        if compositing.face_width(face.landmarks) < compositing.MIN_FACE_PX:
            return PreparedFace(face, None, None)
        # One unwrap of the face serves both its texture coefficients and its light.
        tex, visible = unwrap(rgb, face.landmarks, self.layout.raster, self.model.triangles)
        fit = replace(self.model.fit(face.landmarks, face.blendshapes),
                      texture=self.model.project_texture(tex, visible))
        fitted = self.model.posed(fit, fit.identity, fit.expression)
        light = photo_lighting(self.layout, tex, visible, fitted)
        return PreparedFace(face, fit, light, photo_tone(self.layout, tex, visible))

    def make(self, rgb: np.ndarray, faces: list[FaceAnalysis],
             request: ContextRequest = ContextRequest(),
             prepared: list[PreparedFace] | None = None,
             redraws: dict[int, Redraw] | None = None) -> ContextResult:
        """Every face replaced (or, too small to fit, blurred); the photo is not modified.
        ``redraws`` (by face index) ask for another try at some faces."""
        t0 = time.perf_counter()
        prepared = prepared or [self.prepare(rgb, f) for f in faces]
        t1 = time.perf_counter()
        out = np.ascontiguousarray(rgb).copy()
        changed = np.zeros(rgb.shape[:2], bool)
        rendered = np.zeros(rgb.shape[:2], bool)
        keep = np.zeros(rgb.shape[:2], np.float32)
        outcomes: list[FaceOutcome] = []
        notes: list[str] = []
        grey = compositing.is_grayscale(rgb)
        drawn: list[FaceToRefine] = []
        widest = 0.0
        for i, p in enumerate(prepared):
            width = compositing.face_width(p.face.landmarks)
            widest = max(widest, width)
            if p.fit is None or p.light is None:
                out, mask = compositing.blur_face(out, p.face.landmarks)
                changed |= mask
                keep = np.maximum(keep, mask.astype(np.float32))
                outcomes.append(FaceOutcome(i, False, f"face {width:.0f} px wide, too small "
                                            "to fit: blurred", None))
                continue
            redraw = (redraws or {}).get(i, Redraw())
            seed = face_seed(request.seed, i, redraw.draw)
            targets = request.targets if i == 0 else None
            face_rgb, coverage, clamped = self._render_face(out, p, seed, targets, request,
                                                            grey, redraw)
            if clamped:
                notes.append(f"face {i + 1}: the pose edit was limited to ±{MAX_TURN[0]:.0f}° "
                             f"yaw, ±{MAX_TURN[1]:.0f}° pitch and ±{MAX_TURN[2]:.0f}° roll, "
                             "beyond which the original face would show around the new one")
            hard, soft = compositing.face_masks(coverage, width)
            outline = redraw.outline_of(request)
            if outline != "keep":  # nothing of the old face under the new edge
                out, cleared = clear_original(out, p.face.landmarks, hard)
                face_rgb = np.where(coverage[..., None] > 0, face_rgb, out)
                changed |= cleared
            out = compositing.blend(out, face_rgb, hard, soft, POISSON)
            changed |= hard > 0
            rendered |= hard > 0
            keep = np.maximum(keep, soft)
            outcomes.append(FaceOutcome(i, True, "replaced", seed))
            if outline == "new-ring":  # a ring past both outlines, painted
                out, opened, ring = open_outline(out, hard, p.face.landmarks)
                changed |= ring
                if request.refine and self.refiner is not None:
                    drawn.append(opened)
            elif request.refine and self.refiner is not None:
                drawn.append(FaceToRefine.of(p.face.landmarks, hard))
        if request.refine and self.refiner is None and any(o.replaced for o in outcomes):
            notes.append(self.refiner_note)
        for face in drawn:  # the learned last step, inside each drawn face only
            out = self.refiner.refine(out, face)
        if drawn and grey:
            g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
            out[rendered] = g[rendered][:, None]
        if request.context == "blur" and prepared:
            out = compositing.blur_context(out, keep, widest)
            changed[:] = True
        elif request.hair == "blur":
            for p in prepared:
                out, around = compositing.blur_head(out, keep, p.face.landmarks)
                changed |= around
        if grey:
            notes.append("grayscale photo: the new faces are grey too")
        t2 = time.perf_counter()
        return ContextResult(out, changed, outcomes, tuple(notes),
                             {"prepare": (t1 - t0) * 1e3, "replace": (t2 - t1) * 1e3},
                             rendered)

    def new_identity(self, fit: Fit, seed: int, p_male: float, redraw: Redraw
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Shape and texture coefficients of the face drawn in place of ``fit``: away from
        it, then set along the gender axis and, to the joy it is drawn with (``redraw.joy``),
        along the smile axis (the refiner's training pairs override this)."""
        away = redraw.margin is not None
        identity, tex_coef = self.model.sample_identity(
            seed, spread=SPREAD, away_from=fit if away else None,
            margin=redraw.margin if away else 0.0)
        identity, tex_coef = self.extras.gender.apply(identity, tex_coef, p_male,
                                                      redraw.gender_emphasis)
        if self.extras.smile is not None and redraw.joy is not None:
            tex_coef = self.extras.smile.apply(tex_coef, redraw.joy)
        return identity, tex_coef

    def _render_face(self, photo: np.ndarray, p: PreparedFace, seed: int,
                     targets: Attributes | None, request: ContextRequest, grey: bool,
                     redraw: Redraw) -> tuple[np.ndarray, np.ndarray, bool]:
        """The photo with the new face drawn over it, and the render's coverage (H, W)."""
        model, fit, face, skin = self.model, p.fit, p.face, request.skin
        assert fit is not None and p.light is not None
        attrs = face.attributes
        expression = np.asarray(face.blendshapes, np.float64)
        rotation, clamped = fit.rotation, False
        p_male = attrs.p_male if np.isfinite(attrs.p_male) else 0.5
        if targets is not None:
            if abs(targets.joy - attrs.joy) >= 1e-3:
                expression = joy_edit(expression, targets.joy)
            turn = np.array([targets.yaw - attrs.yaw, targets.pitch - attrs.pitch,
                             targets.roll - attrs.roll])
            limited = np.clip(turn, -np.array(MAX_TURN), np.array(MAX_TURN))
            clamped = bool(np.any(np.abs(limited - turn) > 1e-6))
            rotation = rotation_from_angles(*limited) @ fit.rotation
            p_male = targets.p_male
        if redraw.joy is not None:
            expression = joy_edit(expression, redraw.joy)
        if request.identity == "free" and redraw.draw == 0:
            redraw = replace(redraw, margin=None)
        drawn_joy = redraw.joy if redraw.joy is not None else (
            targets.joy if targets is not None else attrs.joy)
        identity, tex_coef = self.new_identity(fit, seed, p_male, replace(redraw, joy=drawn_joy))
        if skin == "match" and fit.texture is not None:
            tex_coef = self.layout.with_tone(tex_coef, fit.texture, TONE_STRENGTH)
        tone = TONES.snap(p.tone) if skin == "bucket" and p.tone is not None else None
        if tone is not None:  # the colouring (lips, brows) that belongs with that tone; all
            # the way, a dark tone's coefficients mottled the skin (the albedo's rescale
            # below makes up the rest)
            tex_coef = self.layout.with_colour(tex_coef, tone, TONE_STRENGTH)
        new = model.posed(fit, identity, expression, rotation)
        kept = model.posed(fit, fit.identity, expression, rotation)
        if redraw.outline_of(request) == "keep":
            verts = self._weights * new + (1 - self._weights) * kept
        else:  # the new identity's own outline, over the original's
            verts = covering(new, kept)
        # Albedo: the new identity's texture in the photo's skin tone, its bucket's or its own.
        albedo = model.mean_texture + np.tensordot(tex_coef, model.texture_basis, axes=1)
        albedo = np.clip(albedo, 0.02, 1.0)
        light, normals = p.light, self.layout.texel_normals(verts)
        if skin == "match":
            albedo = match_tone(albedo, model.mean_texture, self.layout.skin)
        elif tone is not None:
            # The photo's light is measured against the model's mean albedo, so its colour
            # and level are the skin's own tone times the light's, inseparably: kept, they
            # would carry the original's exact tone past its bucket. Only the light's
            # direction and fall-off cross; the bucket's colour is the albedo's.
            albedo = match_tone(albedo, None, self.layout.skin, colour=tone)
            light = light_shape(light, normals, self.layout.skin)
        else:
            light = light.grey()
        detail = skin_detail(self.extras.detail, self.layout.skin, seed)
        texture = shaded_texture(albedo, normals, light, detail)
        texture = fill_outside(texture, self.layout.raster)
        layer, box = self._render_layer(photo.shape[:2], verts, texture)
        x0, y0, x1, y1 = box
        alpha = layer[..., 3].astype(np.float32) / 255
        under = photo[y0:y1, x0:x1].astype(np.float32)
        region = np.clip(layer[..., :3] + (1 - alpha[..., None]) * under + 0.5, 0, 255)
        region = region.astype(np.uint8)
        local = verts.copy()
        local[:, 0] -= x0
        local[:, 1] -= y0
        tint = light.shade(np.array([0.0, 0.0, 1.0])) * (albedo.mean() / 0.6)
        original = np.asarray(face.landmarks, np.float64).copy()
        original[:, 0] -= x0
        original[:, 1] -= y0
        paint_eyes(region, local, original, tint, seed, light_irises(p.tone))
        paint_mouth(region, local, tint)
        if LOW_FREQUENCY:
            width = compositing.face_width(face.landmarks)
            where = _skin_mask(face.landmarks, region.shape[:2], (x0, y0), width) * (alpha > 0.99)
            reference = under if skin == "match" else compositing.toned_like(under, region, where)
            region = compositing.match_low_frequencies(region, reference.astype(np.uint8), where,
                                                       LOW_FREQUENCY * width)
        grain = compositing.photo_grain(under.astype(np.uint8), alpha > 0.5)
        grain = min(GRAIN_SHARE * grain, MAX_GRAIN)
        if grain > 0.3:
            rng = np.random.default_rng(seed)
            noise = rng.normal(0, grain, region.shape[:2])[..., None]
            region = np.clip(region + noise * (alpha[..., None] > 0), 0, 255).astype(np.uint8)
        if grey:
            g = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
            region = np.repeat(g[..., None], 3, axis=2)
        face_rgb = photo.copy()
        face_rgb[y0:y1, x0:x1] = region
        coverage = np.zeros(photo.shape[:2], np.float32)
        coverage[y0:y1, x0:x1] = alpha
        return face_rgb, coverage, clamped

    def _render_layer(self, shape: tuple[int, int], verts: np.ndarray, texture: np.ndarray
                      ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The face rendered (RGBA, premultiplied) over its own box of the photo."""
        h, w = shape
        lo = np.floor(verts[:, :2].min(0)).astype(int) - 2
        hi = np.ceil(verts[:, :2].max(0)).astype(int) + 2
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], w), min(hi[1], h)
        side = max(int(max(hi - lo)), 1)
        # Drawn larger than the box (capped) and reduced: the render's own antialiasing.
        size = int(min(MAX_RENDER, max(min(2 * side, SUPERSAMPLE_UP_TO), side)))
        k = size / side
        v = verts.copy()
        v[:, 0] = (v[:, 0] - lo[0]) * k
        v[:, 1] = (v[:, 1] - lo[1]) * k
        v[:, 2] = v[:, 2] * k
        big = self.renderer.render_layer(v, self.model.triangles, uv=self.model.uv,
                                         texture=texture, size=size)
        full = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
        ox, oy = x0 - lo[0], y0 - lo[1]
        return full[oy:oy + (y1 - y0), ox:ox + (x1 - x0)], (x0, y0, x1, y1)


def light_irises(tone: np.ndarray | None) -> bool:
    """Whether a face whose skin the photo shows as ``tone`` may get blue or green irises:
    from ``LIGHT_IRISES_FROM``'s tone bucket up (or where its tone is unknown)."""
    return tone is None or TONES.index(tone) >= LIGHT_IRISES_FROM


def _skin_mask(landmarks: np.ndarray, shape: tuple[int, int], origin: tuple[int, int],
               width: float) -> np.ndarray:
    """(h, w) float: the original face's skin in a box of the photo: inside the oval, off
    the eyes, brows and lips (their colour is the original's, not its light)."""
    from studio.core.analysis.face_regions import BROWS, EYES, OUTER_LIPS

    pts = np.asarray(landmarks, np.float32)[:, :2] - np.float32(origin)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts[list(FACE_OVAL)]).astype(np.int32)], 255)
    grow = max(1, round(0.04 * width))
    for ring in (*EYES, *BROWS, OUTER_LIPS):
        hole = np.zeros(shape, np.uint8)
        cv2.fillPoly(hole, [cv2.convexHull(np.round(pts[list(ring)]).astype(np.int32))], 255)
        mask[cv2.dilate(hole, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0] = 0
    return mask.astype(np.float32) / 255
