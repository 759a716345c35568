"""The small state object every widget binds to (glue's habit): data plus change signals.

Widgets read it and call the controller; they never talk to each other or to the models.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from studio.core.analysis.attributes import Attributes
from studio.core.generator.latent import slerp, z_for_seed
from studio.ui.images import display_image

if TYPE_CHECKING:  # the engine pulls in torch: keep it off the window's start-up path
    from studio.core.analysis.analyzer import FaceAnalysis, ImageAnalysis
    from studio.core.analysis.images import LoadedImage
    from studio.core.metrics.comparison import Comparison
    from studio.core.morphable.surrogate import Surrogate3D
    from studio.core.surrogates.engine import ComparisonResult, SurrogateResult

NEUTRAL = Attributes(0.5, 0.5, 0.0, 0.0, 0.0)
HISTORY = 40  # identity distances kept for the history plot


class StudioState(QObject):
    image_changed = Signal()  # a new photo (or none)
    analysis_changed = Signal()  # faces found in it
    face_changed = Signal()  # which face is chosen
    targets_changed = Signal()  # slider values
    identity_changed = Signal()  # seeds, mix, mode, lock
    surrogate_changed = Signal()  # a new surrogate image
    comparison_changed = Signal()  # its expression and identity measures
    surrogate3d_changed = Signal()  # a new 3D render
    comparison3d_changed = Signal()  # its expression and identity measures
    options3d_changed = Signal()  # identity kind, mode, background or view of the 3D panel
    busy_changed = Signal(str, bool)  # what, busy
    message = Signal(str, str)  # level ("info" | "error"), text

    def __init__(self) -> None:
        super().__init__()
        self.path: str | None = None
        self.image: LoadedImage | None = None
        self.display: tuple[QImage, float] | None = None  # small copy to paint, scale
        self.analysis: ImageAnalysis | None = None
        self.face_index: int | None = None
        self.targets: Attributes = NEUTRAL
        self.seed_a, self.seed_b = 1, 2
        self.mix = 0.0
        self.mode = "slerp"
        self.locked = False
        self.surrogate: SurrogateResult | None = None
        self.comparison: Comparison | None = None
        self.distances: list[float] = []
        self.distances3d: list[float] = []
        # The 3D panel: "seed" (the GAN's identity seed), "mean" or "reconstruction".
        self.identity3d = "seed"
        self.mode3d = "textured"
        self.background3d = "plain"
        self.view3d = (0.0, 0.0, 1.0)  # azimuth, elevation (degrees), zoom
        self.surrogate3d: Surrogate3D | None = None
        self.comparison3d: Comparison | None = None
        self.measured3d: Surrogate3D | None = None  # the render comparison3d measured
        self.timings: dict[str, float] = {}

    # -- derived -------------------------------------------------------------------
    @property
    def face(self) -> FaceAnalysis | None:
        if self.analysis is None or self.face_index is None:
            return None
        if not 0 <= self.face_index < len(self.analysis.faces):
            return None
        return self.analysis.faces[self.face_index]

    def z(self) -> np.ndarray:
        a, b = z_for_seed(self.seed_a), z_for_seed(self.seed_b)
        if self.mix <= 0:
            return a
        if self.mode == "linear":
            return ((1 - self.mix) * a + self.mix * b).astype(np.float32)
        return slerp(a, b, self.mix).astype(np.float32)

    # -- setters that announce the change -----------------------------------------
    def set_image(self, path: str | None, image: LoadedImage | None,
                  analysis: ImageAnalysis | None,
                  display: tuple[QImage, float] | None = None) -> None:
        """``display``: a paintable copy and its scale, made in a worker; without it the
        photo itself is converted here."""
        self.path, self.image, self.analysis = path, image, analysis
        if display is None and image is not None:
            display = (display_image(image.rgb), 1.0)
        self.display = display
        self.face_index = 0 if analysis and analysis.faces else None
        self.surrogate = None
        self.comparison = None
        self.surrogate3d = None
        self.comparison3d = None
        self.image_changed.emit()
        self.analysis_changed.emit()
        self.face_changed.emit()

    def set_descriptors(self, analysis: ImageAnalysis) -> None:
        """The same faces, now with identity descriptors (made once the encoder loaded)."""
        self.analysis = analysis
        self.comparison = None
        self.comparison3d = None
        self.analysis_changed.emit()
        self.comparison_changed.emit()
        self.comparison3d_changed.emit()

    def set_face(self, index: int) -> None:
        if self.analysis and 0 <= index < len(self.analysis.faces) and index != self.face_index:
            self.face_index = index
            self.comparison = None  # it measured the previous face
            self.comparison3d = None
            self.face_changed.emit()
            self.comparison_changed.emit()
            self.comparison3d_changed.emit()

    def set_targets(self, **values: float) -> None:
        new = replace(self.targets, **values)
        if new != self.targets:
            self.targets = new
            self.targets_changed.emit()

    def _assign(self, values: dict) -> bool:
        changed = False
        for key, value in values.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
                changed = True
        return changed

    def set_identity(self, **values) -> None:
        if self._assign(values):
            self.identity_changed.emit()

    def set_surrogate(self, result: SurrogateResult) -> None:
        self.surrogate = result
        self.timings["generate"] = result.generate_ms
        self.surrogate_changed.emit()

    def set_comparison(self, result: ComparisonResult) -> None:
        if result.surrogate is not self.surrogate or result.comparison.original is not self.face:
            return  # measured for a surrogate or face that is no longer shown
        self.comparison = result.comparison
        if result.comparison.distance is not None:
            self.distances = [*self.distances, result.comparison.distance][-HISTORY:]
        self.timings["compare"] = result.compare_ms
        self.comparison_changed.emit()

    # -- the 3D panel -----------------------------------------------------------------
    def set_options3d(self, **values) -> None:
        if self._assign(values):
            self.options3d_changed.emit()

    def set_surrogate3d(self, result: Surrogate3D) -> None:
        self.surrogate3d = result
        self.timings["render3d"] = result.render_ms
        self.surrogate3d_changed.emit()

    def set_comparison3d(self, result: Surrogate3D, comparison: Comparison) -> None:
        if result is not self.surrogate3d or comparison.original is not self.face:
            return  # measured for a render or face that is no longer shown
        self.comparison3d = comparison
        self.measured3d = result
        if comparison.distance is not None:
            self.distances3d = [*self.distances3d, comparison.distance][-HISTORY:]
        self.comparison3d_changed.emit()

    def show_candidate(self, analysis: ImageAnalysis, comparison: Comparison,
                       method: str) -> None:
        """The curation view: one original face and one stored, re-measured candidate."""
        self.analysis, self.face_index = analysis, 0
        self.comparison = comparison if method == "gan" else None
        self.comparison3d = comparison if method == "3d" else None
        self.face_changed.emit()
        self.comparison_changed.emit()
        self.comparison3d_changed.emit()
