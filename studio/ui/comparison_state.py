"""What the expression and identity panels show: one original face and how its surrogates
measure against it. The studio window's state and the curation window's state each hold
one, and the two metric panels bind to it, so that neither panel knows which window it
is in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from studio.core.analysis.analyzer import FaceAnalysis
    from studio.core.metrics.comparison import Comparison

HISTORY = 40  # identity distances kept for the history plot


def _with(history: list[float], comparison: Comparison | None) -> list[float]:
    """A new list (listeners may hold the old one) with the comparison's distance."""
    if comparison is None or comparison.distance is None:
        return history
    return [*history, comparison.distance][-HISTORY:]


class ComparisonState(QObject):
    face_changed = Signal()  # another original face (or none)
    comparison_changed = Signal()  # the GAN surrogate's measures (and their history)
    comparison3d_changed = Signal()  # the 3D surrogate's measures (and their history)
    comparison_ctx_changed = Signal()  # the in-context surrogate's measures (and history)

    def __init__(self) -> None:
        super().__init__()
        self.face: FaceAnalysis | None = None
        self.comparison: Comparison | None = None
        self.comparison3d: Comparison | None = None
        self.comparison_ctx: Comparison | None = None  # the face cut from the in-context photo
        self.distances: list[float] = []  # recent GAN surrogates' identity distances
        self.distances3d: list[float] = []
        self.distances_ctx: list[float] = []

    def set_face(self, face: FaceAnalysis | None) -> None:
        """Another original: what measured the previous one no longer applies."""
        if face is self.face:
            return
        had = (self.comparison is not None, self.comparison3d is not None,
               self.comparison_ctx is not None)
        self.face, self.comparison, self.comparison3d, self.comparison_ctx = face, None, None, None
        self.face_changed.emit()
        for signal, had_one in zip((self.comparison_changed, self.comparison3d_changed,
                                    self.comparison_ctx_changed), had, strict=True):
            if had_one:
                signal.emit()

    def set_comparison(self, comparison: Comparison | None) -> None:
        """A newly measured GAN surrogate; its distance joins the history."""
        if comparison is not self.comparison:
            self.comparison = comparison
            self.distances = _with(self.distances, comparison)
            self.comparison_changed.emit()

    def set_comparison3d(self, comparison: Comparison | None) -> None:
        if comparison is not self.comparison3d:
            self.comparison3d = comparison
            self.distances3d = _with(self.distances3d, comparison)
            self.comparison3d_changed.emit()

    def set_comparison_ctx(self, comparison: Comparison | None) -> None:
        """The in-context photo's face, measured; ``None`` once it no longer matches the
        sliders (it is made only while the in-context view is shown)."""
        if comparison is not self.comparison_ctx:
            self.comparison_ctx = comparison
            self.distances_ctx = _with(self.distances_ctx, comparison)
            self.comparison_ctx_changed.emit()

    def show(self, face: FaceAnalysis | None, comparison: Comparison | None = None,
             comparison3d: Comparison | None = None,
             comparison_ctx: Comparison | None = None) -> None:
        """A stored candidate, measured again: shown, but not part of the live history."""
        changed = (face is not self.face, comparison is not self.comparison,
                   comparison3d is not self.comparison3d,
                   comparison_ctx is not self.comparison_ctx)
        self.face, self.comparison = face, comparison
        self.comparison3d, self.comparison_ctx = comparison3d, comparison_ctx
        for signal, change in zip((self.face_changed, self.comparison_changed,
                                   self.comparison3d_changed, self.comparison_ctx_changed),
                                  changed, strict=True):
            if change:
                signal.emit()
