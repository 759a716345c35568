"""Expression preservation and identity similarity between an original and a surrogate.

Identity is judged by two recognizers, each at its own calibrated threshold: dlib's
distance (≥ 0.6: another person) and the second recognizer's cosine similarity
(``analysis.recognizer``: below its 1%-false-match threshold: another person). A surrogate
is another person only when both say so: steering on dlib alone let 8% of the in-context
faces through that an independent recognizer still matched to their original (issue 28).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis, FaceAnalyzer
from studio.core.analysis.attributes import same_gender
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.landmarks import largest_face


def threshold2() -> float:
    """The second recognizer's calibrated same-person similarity (imported here, not at the
    top: the recognizer module brings torch, and ``studio --help`` stays quick)."""
    from studio.core.analysis.recognizer import same_person_threshold

    return same_person_threshold()


def another_person(distance: float | None, similarity2: float | None) -> bool:
    """Both recognizers say another person, each at its own threshold; a missing figure
    (no face, no descriptor) never counts as another person."""
    return (distance is not None and similarity2 is not None
            and distance >= SAME_PERSON_THRESHOLD and similarity2 < threshold2())


@dataclass(frozen=True)
class Comparison:
    """What the side-by-side panels show for one surrogate."""

    original: FaceAnalysis
    surrogate: FaceAnalysis | None  # None: no face found in the surrogate
    distance: float | None  # dlib distance; None when either descriptor is missing
    #: the second recognizer's cosine similarity; None when either descriptor is missing
    similarity2: float | None = None

    @property
    def surrogate_found(self) -> bool:
        return self.surrogate is not None

    @property
    def same_person(self) -> bool | None:
        """Either recognizer says the same person (None: dlib could not measure). Where the
        second's figure is missing (an original stored before it), dlib's verdict is what
        the panels show, beside a "–"; the redraw decisions use ``another_person``, where a
        missing figure never passes."""
        if self.distance is None:
            return None
        return bool(self.same_person_dlib or self.same_person2)

    @property
    def same_person_dlib(self) -> bool | None:
        return None if self.distance is None else self.distance < SAME_PERSON_THRESHOLD

    @property
    def same_person2(self) -> bool | None:
        """The second recognizer's verdict (at or above its calibrated threshold)."""
        return None if self.similarity2 is None else self.similarity2 >= threshold2()

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
    distance = similarity2 = None
    if face is not None and face.descriptor is not None and original.descriptor is not None:
        distance = identity_distance(original.descriptor, face.descriptor)
    if face is not None and face.descriptor2 is not None and original.descriptor2 is not None:
        similarity2 = float(np.dot(original.descriptor2.astype(np.float64),
                                   face.descriptor2.astype(np.float64)))  # unit vectors
    return Comparison(original, face, distance, similarity2)


def compare(analyzer: FaceAnalyzer, original: FaceAnalysis, surrogate_rgb: np.ndarray
            ) -> Comparison:
    """The surrogate's largest face against ``original``; the second recognizer describes
    only that face, and only where the original has its descriptor."""
    face = largest_face(analyzer.analyze(surrogate_rgb, recall=False, second=False).faces)
    if face is not None and original.descriptor2 is not None and face.descriptor is not None:
        (face,) = analyzer.describe2(surrogate_rgb, [face])
    return _comparison(original, face)


def compare_many(analyzer: FaceAnalyzer, original: FaceAnalysis,
                 surrogates: list[np.ndarray]) -> list[Comparison]:
    """``compare`` for several surrogates of one original, batched (studio batch). The
    surrogates' P(male) is not measured: a batch's metrics are expression and identity."""
    return [_comparison(original, largest_face(a.faces))
            for a in analyzer.analyze_many(surrogates, gender=False)]
