"""The studio window's state (glue's habit): plain data and a change signal for each part.

Widgets read it and call the controller; they never talk to each other or to the models.
It holds numpy arrays and the core's results, never Qt images: a widget converts what it
paints. Every change goes through a setter, which announces it, and only when the value
really changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core.analysis.attributes import Attributes
from studio.core.generator.choices import DEFAULT
from studio.core.generator.latent import mix, z_for_seed
from studio.core.surrogates.privacy import DEFAULT_PRIVACY, privacy_preset
from studio.core.surrogates.registry import IN_CONTEXT, MORPHABLE
from studio.ui.comparison_state import ComparisonState

if TYPE_CHECKING:  # the engine pulls in torch: keep it off the window's start-up path
    from studio.core.analysis.analyzer import FaceAnalysis, ImageAnalysis
    from studio.core.analysis.images import LoadedImage
    from studio.core.metrics.comparison import Comparison
    from studio.core.morphable.surrogate import Surrogate3D
    from studio.core.surrogates.engine import SurrogateResult
    from studio.core.surrogates.incontext import ContextRequest, ContextResult

IDENTITY_FIELDS = frozenset({"seed_a", "seed_b", "mix", "mode", "locked"})
OPTIONS3D_FIELDS = frozenset({"identity3d", "mode3d", "background3d", "view3d"})


@dataclass(frozen=True)
class ContextPhoto:
    """The photo with its faces replaced, and what it was made from: a result made for
    another photo or face is recognised and dropped."""

    result: ContextResult
    display: tuple[np.ndarray, float]  # small copy to paint, scale
    image: LoadedImage
    face: FaceAnalysis  # the face the sliders edit (first in the list replaced)
    request: ContextRequest
    ms: float
    order: tuple[int, ...]  # the photo's face numbers (from 0) in the order replaced

    def notes(self) -> list[str]:
        """What the view must say about it: faces blurred instead, limited edits; faces
        numbered as the photo view numbers them."""
        def renumber(text: str) -> str:
            return re.sub(r"^face (\d+):", lambda m: f"face {self.order[int(m[1]) - 1] + 1}:",
                          text)

        lines = [f"face {f.index + 1}: {f.reason}" for f in self.result.faces if not f.replaced]
        return [renumber(line) for line in [*lines, *self.result.notes]]


class StudioState(QObject):
    image_changed = Signal()  # a new photo (or none), with its display copy
    analysis_changed = Signal()  # faces found in it (or the same faces, now described)
    face_changed = Signal()  # which face is chosen; always after image_changed
    targets_changed = Signal()  # slider values
    identity_changed = Signal()  # seeds, mix, mode, lock
    surrogate_changed = Signal()  # a new surrogate image
    surrogate3d_changed = Signal()  # a new 3D render (or none)
    options3d_changed = Signal()  # identity kind, mode, background or view of the 3D panel
    context_view_changed = Signal()  # the photo view shows the original or the in-context photo
    context_changed = Signal()  # a new in-context photo (or none)
    generator_changed = Signal()  # which shipped generator draws the surrogates
    privacy_changed = Signal()  # the in-context privacy preset (surrogates.privacy)
    timings_changed = Signal()  # how long the last analysis, surrogate, measure, render took
    busy_changed = Signal(str, bool)  # an event, not state: what, busy
    message = Signal(str, str)  # an event, not state: level ("info" | "error"), text

    def __init__(self) -> None:
        super().__init__()
        self.path: str | None = None
        self.image: LoadedImage | None = None
        self.display: tuple[np.ndarray, float] | None = None  # small copy to paint, scale
        self.analysis: ImageAnalysis | None = None
        self.face_index: int | None = None
        self.targets: Attributes = Attributes.defaults()
        self.seed_a, self.seed_b = 1, 2
        self.mix = 0.0
        self.mode = "slerp"
        self.locked = False
        self.surrogate: SurrogateResult | None = None
        # The chosen face and the measures of every method's surrogate: what the metric
        # panels show.
        self.compared = ComparisonState()
        # What each method's measures in ``compared`` are of (a surrogate, a render, an
        # in-context photo), set before they are announced.
        self.measured: dict[str, object] = {}
        # The 3D panel: "seed" (the GAN's identity seed), "mean" or "reconstruction".
        self.identity3d = "seed"
        self.mode3d = "textured"
        self.background3d = "plain"
        self.view3d = (0.0, 0.0, 1.0)  # azimuth, elevation (degrees), zoom
        self.surrogate3d: Surrogate3D | None = None
        # The photo view: the original, or the photo with the surrogate faces in it.
        self.context_shown = False
        self.context: ContextPhoto | None = None
        self.timings: dict[str, float] = {}
        self.generator_key = DEFAULT.key  # generator.choices: the one drawing
        self.privacy = DEFAULT_PRIVACY  # surrogates.privacy: how the in-context faces are made

    # -- derived -------------------------------------------------------------------
    @property
    def measured3d(self) -> Surrogate3D | None:
        """The render the 3D measures are of (the benchmarks wait for the one shown)."""
        return self.measured.get(MORPHABLE)  # type: ignore[return-value]

    @property
    def face(self) -> FaceAnalysis | None:
        if self.analysis is None or self.face_index is None:
            return None
        if not 0 <= self.face_index < len(self.analysis.faces):
            return None
        return self.analysis.faces[self.face_index]

    def z(self) -> np.ndarray:
        """The generator's latent: seed A, or ``mix`` of the way to seed B."""
        return mix(z_for_seed(self.seed_a), z_for_seed(self.seed_b), self.mix, self.mode)

    # -- setters that announce the change -----------------------------------------
    def set_image(self, path: str | None, image: LoadedImage | None,
                  analysis: ImageAnalysis | None,
                  display: tuple[np.ndarray, float] | None = None) -> None:
        """A new photo and its faces; the first face is chosen. ``display``: a small copy
        to paint and its scale (made in a worker); without it the photo itself is painted.
        The GAN surrogate stays: it does not depend on the photo, and shows until the new
        face's one replaces it."""
        if path == self.path and image is self.image and analysis is self.analysis:
            return
        self.path, self.image, self.analysis = path, image, analysis
        if display is None and image is not None:
            display = (image.rgb, 1.0)
        self.display = display
        self.face_index = 0 if analysis and analysis.faces else None
        self.image_changed.emit()
        self.analysis_changed.emit()
        self._set_surrogate3d(None)  # it was rendered from the previous photo
        self.set_context(None)  # so was this
        self.compared.set_face(self.face)
        self.face_changed.emit()  # also when neither photo has a face: the photo changed

    def set_descriptors(self, analysis: ImageAnalysis) -> None:
        """The same faces, now with identity descriptors (made once the encoder loaded)."""
        if analysis is self.analysis:
            return
        self.analysis = analysis
        self.analysis_changed.emit()
        self.compared.set_face(self.face)  # measured again, now that it can be

    def set_face(self, index: int) -> None:
        if self.analysis and 0 <= index < len(self.analysis.faces) and index != self.face_index:
            self.face_index = index
            self.compared.set_face(self.face)  # the measures were of the previous face
            self.face_changed.emit()

    def set_targets(self, **values: float) -> None:
        new = replace(self.targets, **values)
        if new != self.targets:
            self.targets = new
            self.targets_changed.emit()

    def _assign(self, values: dict, fields: frozenset[str]) -> bool:
        unknown = set(values) - fields
        if unknown:
            raise TypeError(f"not a field of this setter: {', '.join(sorted(unknown))}")
        changed = False
        for key, value in values.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
                changed = True
        return changed

    def set_identity(self, **values) -> None:
        """``seed_a``, ``seed_b``, ``mix``, ``mode``, ``locked``."""
        if self._assign(values, IDENTITY_FIELDS):
            self.identity_changed.emit()

    def set_generator(self, key: str) -> None:
        if key != self.generator_key:
            self.generator_key = key
            self.generator_changed.emit()

    def set_privacy(self, name: str) -> None:
        """The in-context privacy preset; an unknown name is a StudioError."""
        name = privacy_preset(name).name
        if name != self.privacy:
            self.privacy = name
            self.privacy_changed.emit()

    def set_timing(self, **ms: float) -> None:
        """How long a stage took, e.g. ``set_timing(analysis=120.0)``."""
        new = {**self.timings, **ms}
        if new != self.timings:
            self.timings = new  # a new dict: a listener may hold the old one
            self.timings_changed.emit()

    def set_surrogate(self, result: SurrogateResult) -> None:
        if result is self.surrogate:
            return
        self.surrogate = result
        self.surrogate_changed.emit()
        self.set_timing(generate=result.generate_ms)

    def set_measures(self, method: str, made: object, comparison: Comparison) -> None:
        """``made`` (what ``method`` made) measured against the chosen face; the caller
        has checked that it is still what is shown."""
        self.measured[method] = made
        self.compared.set_comparison(method, comparison)

    # -- the 3D panel -----------------------------------------------------------------
    def set_options3d(self, **values) -> None:
        """``identity3d``, ``mode3d``, ``background3d``, ``view3d``."""
        if self._assign(values, OPTIONS3D_FIELDS):
            self.options3d_changed.emit()

    def _set_surrogate3d(self, result: Surrogate3D | None) -> None:
        if result is not self.surrogate3d:
            self.surrogate3d = result
            self.surrogate3d_changed.emit()

    def set_surrogate3d(self, result: Surrogate3D) -> None:
        self._set_surrogate3d(result)
        self.set_timing(render3d=result.render_ms)

    # -- the photo in context -------------------------------------------------------------
    def set_context_shown(self, shown: bool) -> None:
        if bool(shown) != self.context_shown:
            self.context_shown = bool(shown)
            self.context_view_changed.emit()

    def set_context(self, photo: ContextPhoto | None) -> None:
        """A new in-context photo (kept until the next, even for another face of the same
        photo); one made for another photo or face is dropped. ``None``: no longer valid."""
        if photo is not None and (photo.image is not self.image or photo.face is not self.face):
            return
        if photo is self.context:
            return
        self.context = photo
        if photo is None:
            self.compared.set_comparison(IN_CONTEXT, None)  # it measured what is gone
        self.context_changed.emit()
        if photo is not None:
            self.set_timing(context=photo.ms)
