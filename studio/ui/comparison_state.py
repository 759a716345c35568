"""What the expression and identity panels show: one original face and how its surrogates
measure against it, keyed by method (``surrogates.registry``). The studio window's state
and the curation window's state each hold one, and the two metric panels bind to it, so
that neither panel knows which window it is in, nor which methods there are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from studio.core.analysis.analyzer import FaceAnalysis
    from studio.core.metrics.comparison import Comparison

HISTORY = 40  # identity distances kept for the history plot
NO_HISTORY: list[float] = []  # never changed: a method not measured yet shares it


def _with(history: list[float], comparison: Comparison | None) -> list[float]:
    """A new list (listeners may hold the old one) with the comparison's distance."""
    if comparison is None or comparison.distance is None:
        return history
    return [*history, comparison.distance][-HISTORY:]


class ComparisonState(QObject):
    face_changed = Signal()  # another original face (or none)
    comparison_changed = Signal(str)  # a method's measures (and their history) changed

    def __init__(self) -> None:
        super().__init__()
        self.face: FaceAnalysis | None = None
        self.comparisons: dict[str, Comparison | None] = {}  # by method key
        self.distances: dict[str, list[float]] = {}  # recent identity distances, by method

    def comparison(self, method: str) -> Comparison | None:
        return self.comparisons.get(method)

    def history(self, method: str) -> list[float]:
        """The method's recent distances; replaced (never changed) when one joins."""
        return self.distances.get(method, NO_HISTORY)

    def set_face(self, face: FaceAnalysis | None) -> None:
        """Another original: what measured the previous one no longer applies."""
        if face is self.face:
            return
        had = [m for m, c in self.comparisons.items() if c is not None]
        self.face = face
        self.comparisons = dict.fromkeys(self.comparisons)
        self.face_changed.emit()
        for method in had:
            self.comparison_changed.emit(method)

    def set_comparison(self, method: str, comparison: Comparison | None) -> None:
        """A newly measured surrogate of ``method`` (``None``: what it measured is gone);
        its distance joins the method's history."""
        if comparison is not self.comparisons.get(method):
            self.comparisons[method] = comparison
            self.distances[method] = _with(self.history(method), comparison)
            self.comparison_changed.emit(method)

    def show(self, face: FaceAnalysis | None,
             comparisons: Mapping[str, Comparison | None] | None = None) -> None:
        """A stored candidate, measured again: shown, but not part of the live history."""
        comparisons = comparisons or {}
        new_face = face is not self.face
        changed = [m for m in dict.fromkeys([*self.comparisons, *comparisons])
                   if comparisons.get(m) is not self.comparisons.get(m)]
        self.face = face
        self.comparisons = {m: comparisons.get(m) for m in {**self.comparisons, **comparisons}}
        if new_face:
            self.face_changed.emit()
        for method in changed:
            self.comparison_changed.emit(method)
