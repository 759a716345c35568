"""What an output gives away, measured by each of the studio's two recognizers in turn.

The studio steers on both: its drawn surrogates are read back and drawn again until dlib
and the second recognizer both call the new face another person (``metrics.comparison.
another_person``). Neither is then an independent judge of those surrogates' de-identified
share: that share says how often the studio's own check held. The attacks choose nothing,
and each is run with both recognizers, so that a method which only fools the one the
studio answers to most (dlib, issue 28) shows it.

For the second recognizer's unit descriptors the Euclidean distance is √(2 − 2·cos), in
the same order as its cosine similarity: the attacks of ``metrics.attacks`` (ranks, ROC,
classifiers) run on either recognizer's descriptors unchanged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.evaluation.methods import METHODS
from studio.core.evaluation.observations import Observation
from studio.core.evaluation.study import Measurement
from studio.core.metrics.attacks import (
    ClassifierAttack,
    Identification,
    ParrotAttack,
    Roc,
    classifier_attack,
    gallery_rows,
    identify,
    impostor_distances,
    parrot_attack,
    verification_roc,
)
from studio.core.metrics.comparison import another_person, threshold2


@dataclass(frozen=True)
class Recognizer:
    """One recognizer as the evaluation uses it: where its descriptor is kept, what figure
    compares two faces and which side of its threshold is another person."""

    key: str  # its name in summary.json and per_face.csv
    name: str  # what the report calls it
    short: str  # in column headings
    model: str  # its model file and card
    attribute: str  # the Observation field that holds its descriptor
    size: int
    score: str  # "distance" (lower: the same person) or "similarity" (higher)

    def threshold(self) -> float:
        return SAME_PERSON_THRESHOLD if self.score == "distance" else threshold2()

    def rule(self) -> str:
        """Its "another person" rule in words, e.g. "distance ≥ 0.6"."""
        t = self.threshold()
        return f"distance ≥ {t:g}" if self.score == "distance" else f"cosine < {t:.3f}"

    def another(self, score: float) -> bool | None:
        """Its verdict on one figure: another person, the same, or None (no figure)."""
        if not math.isfinite(score):
            return None
        return score >= self.threshold() if self.score == "distance" else (
            score < self.threshold())

    def descriptors(self, observations: Iterable[Observation]) -> np.ndarray:
        """(n, size) float64; a row of NaN where there is no descriptor (no face)."""
        rows = [getattr(o, self.attribute) for o in observations]
        return np.stack([np.full(self.size, np.nan) if d is None else d for d in rows]
                        ).astype(np.float64)

    def scores(self, original: np.ndarray, output: np.ndarray) -> np.ndarray:
        """Per row, the figure the threshold applies to; NaN without both descriptors."""
        distance = np.linalg.norm(original - output, axis=1)
        return distance if self.score == "distance" else 1.0 - distance ** 2 / 2.0


DLIB = Recognizer("dlib", "dlib ResNet", "dlib", "dlib_face_recognition_resnet_model_v1",
                  "descriptor", 128, "distance")
ARCFACE = Recognizer("arcface", "MobileFaceNet ArcFace", "ArcFace",
                     "MobileFaceNet.tflite (models/recognizer.md)", "descriptor2", 192,
                     "similarity")
RECOGNIZERS = (DLIB, ARCFACE)


def steering() -> str:
    """What the report says, plainly, about the recognizers the studio steers on."""
    return (f"The studio steers on both recognizers it measures with: {DLIB.name} (another "
            f"person at {DLIB.rule()}) and the second recognizer, {ARCFACE.name} (another "
            f"person at {ARCFACE.rule()}, its 1%-false-match threshold on celeba-id). The GAN "
            "and in-context surrogates are read back and drawn again until both call the new "
            "face another person, so neither recognizer is an independent judge of those "
            "surrogates' de-identified share: it says how often the studio's own check held. "
            "The attacks choose nothing. No third, unsteered recognizer is measured here.")


def read_back(method: str) -> bool:
    """Whether the studio reads this method's outputs back with both recognizers and draws
    again (the method's maker says so)."""
    from studio.core.surrogates.registry import REGISTRY

    return method in REGISTRY and bool(getattr(REGISTRY.maker(method), "read_back", False))


@dataclass(frozen=True, eq=False)  # array fields: compare the arrays, not the results
class Privacy:
    """One method on one data set, as one recognizer sees it."""

    recognizer: Recognizer
    #: share of outputs (with a descriptor) the recognizer calls another person
    deidentified: float
    #: median distance (dlib) or cosine similarity (the second), original to output
    median: float
    scores: np.ndarray = field(repr=False)  # per source; NaN: no descriptor
    distances: np.ndarray = field(repr=False)  # Euclidean, per source (dlib's: ``scores``)
    roc: Roc | None = field(repr=False, default=None)
    attack1: Identification | None = None
    attack1_other_photo: float | None = None  # rank-1 when the gallery holds another photo
    attack2: ClassifierAttack | None = None
    parrot: ParrotAttack | None = None
    parrot_other_photo: float | None = None

    @property
    def tar_at_far_1e3(self) -> float:
        return math.nan if self.roc is None else self.roc.tar_at(1e-3)


def deidentified_both(dlib: Privacy, second: Privacy) -> float:
    """Share of outputs both recognizers call another person (the studio's own rule,
    ``another_person``), of those both could describe; NaN when there are none."""
    ok = np.isfinite(dlib.scores) & np.isfinite(second.scores)
    both = [another_person(float(d), float(s))
            for d, s in zip(dlib.scores[ok], second.scores[ok], strict=True)]
    return float(np.mean(both)) if both else math.nan


def measure(rows: list[Measurement], recognizer: Recognizer, identities_known: bool,
            parrot: dict[tuple[str, str, str], Observation] | None = None) -> Privacy:
    """Every privacy figure of one method on one data set, by ``recognizer``."""
    original = recognizer.descriptors(r.original for r in rows)
    output = recognizer.descriptors(r.output for r in rows)
    distances = np.linalg.norm(original - output, axis=1)  # NaN without a descriptor
    scores = recognizer.scores(original, output)
    ids = np.array([r.identity for r in rows])
    finite = np.isfinite(scores)
    roc = None
    impostors = impostor_distances(original, ids, output, ids)
    if finite.any() and impostors.size:
        roc = verification_roc(distances, impostors)
    attack1 = other = attack2 = parrot_result = parrot_other = None
    if identities_known:
        attack1, other = _attack_one(original, output, ids)
        parrot_result, parrot_other = _parrot(rows, recognizer, output, ids, parrot or {})
        described = Counter(ids[np.isfinite(output).all(axis=1)])
        if sum(n >= 2 for n in described.values()) >= 2:  # someone to train and test on
            attack2 = classifier_attack(output, ids)
    share = float(np.mean([recognizer.another(x) for x in scores[finite]])) if (
        finite.any()) else math.nan
    return Privacy(recognizer, share,
                   float(np.median(scores[finite])) if finite.any() else math.nan, scores,
                   distances, roc, attack1, other, attack2, parrot_result, parrot_other)


def _attack_one(original: np.ndarray, output: np.ndarray, ids: np.ndarray
                ) -> tuple[Identification, float | None]:
    """Gallery: one original per identity (its first photo). Probes: every output. Rank-1
    is also given for the probes whose own photo is not the gallery's."""
    gallery = np.array(gallery_rows(ids))
    result = identify(output, ids, original[gallery], ids[gallery])
    other = other_photo(ids, gallery)
    rate = float(np.mean(result.ranks[other] <= 1)) if other.any() else None
    return result, rate


def other_photo(ids: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """True for the rows whose photo is not their person's gallery photo."""
    mask = np.ones(len(ids), bool)
    mask[gallery] = False
    return mask


def anonymised_gallery(rows: list[Measurement], gallery: np.ndarray,
                       gallery_outputs: dict[tuple[str, str, str], Observation],
                       read: Callable[[Iterable[Observation]], np.ndarray]
                       ) -> np.ndarray | None:
    """The parrot attacker's gallery as ``read`` describes it: a seeded method's gallery
    made anew with a fresh seed (see evaluation.parrot), a deterministic method's (and
    the original's) its own outputs of the gallery photos; None where the seeded one was
    not made (an old cache or a cancelled run)."""
    method = rows[0].method
    if not METHODS[method].seeded:
        return read(rows[i].output for i in gallery)
    found = [gallery_outputs.get((rows[i].dataset, rows[i].source, method)) for i in gallery]
    if not any(o is not None for o in found):
        return None
    return read(o or Observation(False) for o in found)


def _parrot(rows: list[Measurement], recognizer: Recognizer, output: np.ndarray,
            ids: np.ndarray, gallery_outputs: dict[tuple[str, str, str], Observation]
            ) -> tuple[ParrotAttack | None, float | None]:
    """The parrot attack by one recognizer (none for the original: that is attack I)."""
    if rows[0].method == "original":
        return None, None
    gallery = np.array(gallery_rows(ids))
    anonymised = anonymised_gallery(rows, gallery, gallery_outputs, recognizer.descriptors)
    if anonymised is None:
        return None, None
    try:
        result = parrot_attack(output, ids, anonymised, ids[gallery])
    except ValueError:
        return None, None
    other = other_photo(ids, gallery)
    return result, (result.rate(1, among=other) if other.any() else None)
