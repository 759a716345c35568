"""Per method and data set: what an output keeps (utility) and what it gives away (privacy).

Utility is measured against the original's own estimate (what a crowd would be asked to
label) and, where the data has it, against ground truth. An output without a face keeps
no smile: smile agreement counts it as lost, as CIAGAN's classifier agreement did.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from studio.core.analysis.attributes import ANGLES
from studio.core.errors import StudioError
from studio.core.evaluation.methods import METHODS
from studio.core.evaluation.observations import Observation
from studio.core.evaluation.realism import RealismFeatures, RealismResult, realism
from studio.core.evaluation.study import EvaluationRun, Measurement
from studio.core.metrics.attacks import (
    ClassifierAttack,
    Identification,
    ParrotAttack,
    Roc,
    classifier_attack,
    deidentified_share,
    gallery_rows,
    identify,
    impostor_distances,
    parrot_attack,
    verification_roc,
)

#: The issue's bars for the GAN surrogate.
BARS = {"deidentified": 0.95, "rank1_over_chance": 2.0, "smile_agreement": 0.85}
#: Utility is also given per bin of the original's joy: the ambiguous middle is where the
#: thesis's GAN failed, and an average over the easy ends hides it.
JOY_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class JoyBin:
    """Utility over the originals whose joy is in [low, high) ([0.8, 1.0] for the last)."""

    low: float
    high: float
    n: int
    smile_agreement: float
    joy_error: float  # mean |output joy - original joy|, outputs with a face
    expression7_agreement: float


@dataclass(frozen=True, eq=False)
class MethodResult:
    dataset: str
    method: str
    label: str
    n: int  # source faces (originals with a face)
    detection: float  # share of outputs on which a face is found
    smile_agreement: float  # output's smile decision equals the original's; no face = lost
    joy_correlation: float
    angle_error: dict[str, float]  # mean |output - original|, degrees, outputs with a face
    gender_agreement: float
    truth: dict[str, float]  # against ground truth, where the data set has it
    deidentified: float  # share of outputs with a face >= 0.6 from their original
    median_distance: float
    distances: np.ndarray = field(repr=False)  # per source; NaN: no descriptor
    roc: Roc | None = field(repr=False, default=None)
    attack1: Identification | None = None
    attack1_other_photo: float | None = None  # rank-1 when the gallery holds another photo
    attack2: ClassifierAttack | None = None
    joy_bins: list[JoyBin] = field(default_factory=list)
    #: The independent judge: its 7-class verdict, and happy-or-not, kept from the original
    expression7_agreement: float = math.nan
    happy_agreement: float = math.nan
    #: Realism against the data set's own originals, beside real-versus-real
    realism: RealismResult | None = None
    #: The parrot attack: outputs matched against the gallery anonymised by the same method
    parrot: ParrotAttack | None = None
    parrot_other_photo: float | None = None

    @property
    def tar_at_far_1e3(self) -> float:
        return math.nan if self.roc is None else self.roc.tar_at(1e-3)

    def checks(self) -> dict[str, tuple[float, bool]]:
        """The issue's bars, for the GAN surrogate."""
        out = {"deidentified": (self.deidentified, self.deidentified >= BARS["deidentified"]),
               "smile_agreement": (self.smile_agreement,
                                   self.smile_agreement >= BARS["smile_agreement"])}
        if self.attack1 is not None:
            ratio = self.attack1.over_chance[1]
            out["rank1_over_chance"] = (ratio, ratio <= BARS["rank1_over_chance"])
        return out


def _descriptors(observations) -> np.ndarray:
    return np.stack([o.descriptor if o.descriptor is not None else np.full(128, np.nan)
                     for o in observations]).astype(np.float64)


def _mean(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _corr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return math.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def truth_metrics(rows: list[Measurement]) -> dict[str, float]:
    """Smile accuracy, angle errors and gender accuracy against the data set's labels."""
    out: dict[str, float] = {}
    found = [r for r in rows if r.output.found]
    if rows and "smile" in rows[0].truth:
        out["smile_accuracy"] = float(np.mean([r.output.smiling is not None and
                                               r.output.smiling == bool(r.truth["smile"])
                                               for r in rows]))
        for angle in ANGLES:
            out[f"{angle}_error"] = _mean([abs(getattr(r.output, angle) - r.truth[angle])
                                           for r in found])
    if rows and "male" in rows[0].truth:
        judged = [r for r in found if math.isfinite(r.output.p_male)]
        out["gender_accuracy"] = (float(np.mean([(r.output.p_male >= 0.5) == bool(r.truth["male"])
                                                 for r in judged])) if judged else math.nan)
    return out


def expression_agreement(rows: list[Measurement], happy: bool = False) -> float:
    """Share of outputs the 7-class judge puts in the original's class (or, with
    ``happy``, on the same side of happy-or-not). Every output is judged, face or not."""
    from studio.core.analysis.expression7 import HAPPY

    pairs = [(r.original.expression, r.output.expression) for r in rows
             if r.original.expression is not None and r.output.expression is not None]
    if not pairs:
        return math.nan
    if happy:
        return float(np.mean([(a == HAPPY) == (b == HAPPY) for a, b in pairs]))
    return float(np.mean([a == b for a, b in pairs]))


def realism_of(rows: list[Measurement]) -> RealismResult | None:
    """The outputs' realism against the originals (the held-out reals) of the same rows;
    None for a method without realism features, or too few faces to tell."""
    real = [r for r in rows if r.original.realism is not None]
    pairs = [(i, r.output.realism) for i, r in enumerate(real) if r.output.realism is not None]
    if len(pairs) < 20 or rows[0].method == "original":
        return None
    reals = RealismFeatures.from_rows([r.original.realism for r in real])
    outputs = RealismFeatures.from_rows([row for _, row in pairs])
    sources = [i for i, _ in pairs]  # the real each output was made from
    try:
        return realism(outputs, reals, seed=0, sources=sources)
    except StudioError:
        return None


def smile_agreement(rows: list[Measurement]) -> float:
    """Share of outputs whose smile decision is the original's (no face = lost)."""
    if not rows:
        return math.nan
    return float(np.mean([r.output.smiling == r.original.smiling for r in rows]))


def joy_bins(rows: list[Measurement]) -> list[JoyBin]:
    """Smile agreement and joy error per bin of the original's joy (see JOY_BINS)."""
    joy = np.array([r.original.joy for r in rows])
    out = []
    for i, (low, high) in enumerate(itertools.pairwise(JOY_BINS)):
        last = i == len(JOY_BINS) - 2
        inside = [r for r, j in zip(rows, joy, strict=True)
                  if low <= j < high or (last and j == high)]
        out.append(JoyBin(low, high, len(inside),
                          smile_agreement(inside),
                          _mean([abs(r.output.joy - r.original.joy) for r in inside
                                 if r.output.found]), expression_agreement(inside)))
    return out


def summarise(rows: list[Measurement], identities_known: bool,
              parrot: dict[tuple[str, str, str], Observation] | None = None) -> MethodResult:
    """One method on one data set."""
    r0 = rows[0]
    found = [r for r in rows if r.output.found]
    original, output = _descriptors(r.original for r in rows), _descriptors(r.output for r in rows)
    distances = np.linalg.norm(original - output, axis=1)  # NaN without a descriptor
    ids = np.array([r.identity for r in rows])
    finite = distances[np.isfinite(distances)]
    roc = None
    impostors = impostor_distances(original, ids, output, ids)
    if finite.size and impostors.size:
        roc = verification_roc(distances, impostors)
    attack1 = other = attack2 = parrot_result = parrot_other = None
    if identities_known:
        attack1, other = _attack_one(rows, original, output, ids)
        parrot_result, parrot_other = _parrot(rows, output, ids, parrot or {})
        described = Counter(ids[np.isfinite(output).all(axis=1)])
        if sum(n >= 2 for n in described.values()) >= 2:  # someone to train and test on
            attack2 = classifier_attack(output, ids)
    judged = [r for r in found if math.isfinite(r.output.p_male) and
              math.isfinite(r.original.p_male)]
    return MethodResult(
        dataset=r0.dataset, method=r0.method, label=METHODS[r0.method].label, n=len(rows),
        detection=len(found) / len(rows),
        smile_agreement=smile_agreement(rows),
        joy_correlation=_corr([r.original.joy for r in found], [r.output.joy for r in found]),
        angle_error={a: _mean([abs(getattr(r.output, a) - getattr(r.original, a))
                               for r in found]) for a in ANGLES},
        gender_agreement=(float(np.mean([(r.output.p_male >= 0.5) == (r.original.p_male >= 0.5)
                                         for r in judged])) if judged else math.nan),
        truth=truth_metrics(rows),
        deidentified=deidentified_share(distances),
        median_distance=float(np.median(finite)) if finite.size else math.nan,
        distances=distances, roc=roc, attack1=attack1, attack1_other_photo=other,
        attack2=attack2, joy_bins=joy_bins(rows),
        expression7_agreement=expression_agreement(rows),
        happy_agreement=expression_agreement(rows, happy=True), realism=realism_of(rows),
        parrot=parrot_result, parrot_other_photo=parrot_other)


def _attack_one(rows: list[Measurement], original: np.ndarray, output: np.ndarray,
                ids: np.ndarray) -> tuple[Identification, float | None]:
    """Gallery: one original per identity (its first photo). Probes: every output. Rank-1
    is also given for the probes whose own photo is not the gallery's."""
    gallery = np.array(gallery_rows(ids))
    result = identify(output, ids, original[gallery], ids[gallery])
    other = _other_photo(ids, gallery)
    rate = float(np.mean(result.ranks[other] <= 1)) if other.any() else None
    return result, rate


def _other_photo(ids: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """True for the rows whose photo is not their person's gallery photo."""
    mask = np.ones(len(ids), bool)
    mask[gallery] = False
    return mask


def _parrot(rows: list[Measurement], output: np.ndarray, ids: np.ndarray,
            gallery_outputs: dict[tuple[str, str, str], Observation]
            ) -> tuple[ParrotAttack | None, float | None]:
    """The parrot attack: a surrogate's gallery is made anew with a fresh seed (see
    evaluation.parrot); a deterministic method's is its own output of the gallery photo."""
    method = rows[0].method
    if method == "original":
        return None, None
    gallery = np.array(gallery_rows(ids))
    if METHODS[method].seeded:
        found = [gallery_outputs.get((rows[i].dataset, rows[i].source, method)) for i in gallery]
        if not any(o is not None for o in found):
            return None, None  # not made (an old cache or a cancelled run)
        anonymised = _descriptors([o or Observation(False) for o in found])
    else:
        anonymised = output[gallery]
    try:
        result = parrot_attack(output, ids, anonymised, ids[gallery])
    except ValueError:
        return None, None
    other = _other_photo(ids, gallery)
    return result, (result.rate(1, among=other) if other.any() else None)


def summarise_run(run: EvaluationRun,
                  parrot: dict[tuple[str, str, str], Observation] | None = None
                  ) -> list[MethodResult]:
    """Every (data set, method) of a run, in the run's order; ``parrot``: the parrot
    attacker's gallery outputs (evaluation.parrot.parrot_gallery)."""
    known = {d.name: d.identities_known for d in run.datasets}
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in run.measurements:
        groups.setdefault((m.dataset, m.method), []).append(m)
    order = [(d.name, m.key) for d in run.datasets for m in run.methods]
    return [summarise(groups[k], known[k[0]], parrot) for k in order if k in groups]

