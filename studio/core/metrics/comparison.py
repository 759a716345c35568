"""Expression preservation and identity similarity between an original and a surrogate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis, FaceAnalyzer
from studio.core.analysis.attributes import same_gender
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.landmarks import largest_face


@dataclass(frozen=True)
class Comparison:
    """What the side-by-side panels show for one surrogate."""

    original: FaceAnalysis
    surrogate: FaceAnalysis | None  # None: no face found in the surrogate
    distance: float | None  # dlib distance; None when either descriptor is missing

    @property
    def surrogate_found(self) -> bool:
        return self.surrogate is not None

    @property
    def same_person(self) -> bool | None:
        return None if self.distance is None else self.distance < SAME_PERSON_THRESHOLD

    @property
    def smile_kept(self) -> bool | None:
        if self.surrogate is None:
            return None
        return self.original.attributes.smiling == self.surrogate.attributes.smiling

    @property
    def gender_kept(self) -> bool | None:
        """The gender decision kept (``same_gender``: an unreadable P(male) passes)."""
        if self.surrogate is None:
            return None
        return same_gender(self.original.attributes.p_male, self.surrogate.attributes.p_male)

    def differences(self) -> dict[str, float]:
        """Surrogate minus original for joy and the three angles (degrees)."""
        if self.surrogate is None:
            return {}
        a, b = self.original.attributes, self.surrogate.attributes
        return {"joy": b.joy - a.joy, "yaw": b.yaw - a.yaw, "pitch": b.pitch - a.pitch,
                "roll": b.roll - a.roll}


def _comparison(original: FaceAnalysis, face: FaceAnalysis | None) -> Comparison:
    distance = None
    if face is not None and face.descriptor is not None and original.descriptor is not None:
        distance = identity_distance(original.descriptor, face.descriptor)
    return Comparison(original, face, distance)


def compare(analyzer: FaceAnalyzer, original: FaceAnalysis, surrogate_rgb: np.ndarray
            ) -> Comparison:
    return _comparison(original, largest_face(analyzer.analyze(surrogate_rgb, recall=False).faces))


def compare_many(analyzer: FaceAnalyzer, original: FaceAnalysis,
                 surrogates: list[np.ndarray]) -> list[Comparison]:
    """``compare`` for several surrogates of one original, batched (studio batch). The
    surrogates' P(male) is not measured: a batch's metrics are expression and identity."""
    return [_comparison(original, largest_face(a.faces))
            for a in analyzer.analyze_many(surrogates, gender=False)]
