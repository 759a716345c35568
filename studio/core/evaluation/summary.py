"""Per method and data set: what an output keeps (utility) and what it gives away (privacy).

Utility is measured against the original's own estimate (what a crowd would be asked to
label) and, where the data has it, against ground truth. An output without a face keeps
no smile: smile agreement counts it as lost, as CIAGAN's classifier agreement did.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from studio.core.analysis.attributes import ANGLES
from studio.core.errors import StudioError
from studio.core.evaluation.label_parrot import label_parrot
from studio.core.evaluation.methods import METHODS
from studio.core.evaluation.observations import Observation
from studio.core.evaluation.privacy import (
    ARCFACE,
    DLIB,
    RECOGNIZERS,
    Privacy,
    deidentified_both,
    measure,
)
from studio.core.evaluation.realism import RealismFeatures, RealismResult, realism
from studio.core.evaluation.study import EvaluationRun, Measurement
from studio.core.metrics.attacks import ClassifierAttack, Identification, ParrotAttack, Roc

#: The issue's bars for the GAN surrogate.
BARS = {"deidentified": 0.95, "rank1_over_chance": 2.0, "smile_agreement": 0.85}
#: The privacy-utility trade-off's axes (the report's figure and the window's scatter).
TRADEOFF_AXES = ("de-identified share: another person to both recognizers",
                 "smile agreement with the original")
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
    #: Privacy by each recognizer (``privacy.RECOGNIZERS``' keys: "dlib", "arcface")
    privacy: dict[str, Privacy] = field(default_factory=dict, repr=False)
    #: Share of outputs both recognizers call another person (the studio's own rule)
    deidentified_both: float = math.nan
    joy_bins: list[JoyBin] = field(default_factory=list)
    #: The independent judge: its 7-class verdict, and happy-or-not, kept from the original
    expression7_agreement: float = math.nan
    happy_agreement: float = math.nan
    #: Realism against the data set's own originals, beside real-versus-real
    realism: RealismResult | None = None
    #: The parrot attack by the kept labels alone (``label_parrot``), and its rank-1 among
    #: outputs of another photo; on the original row, the floor of any label-keeping method
    label_parrot: ParrotAttack | None = None
    label_parrot_other_photo: float | None = None

    # dlib's figures under their first names (the window, the bars, older reports)
    @property
    def dlib(self) -> Privacy:
        return self.privacy[DLIB.key]

    @property
    def second(self) -> Privacy:
        """The second recognizer's figures."""
        return self.privacy[ARCFACE.key]

    @property
    def deidentified(self) -> float:
        """Share of outputs with a face >= 0.6 from their original by dlib."""
        return self.dlib.deidentified

    @property
    def tradeoff(self) -> tuple[float, float]:
        """Where the method sits in the trade-off (``TRADEOFF_AXES``): privacy by the
        studio's own rule (another person to both recognizers), utility as smile kept."""
        return self.deidentified_both, self.smile_agreement

    @property
    def median_distance(self) -> float:
        return self.dlib.median

    @property
    def distances(self) -> np.ndarray:
        return self.dlib.scores

    @property
    def roc(self) -> Roc | None:
        return self.dlib.roc

    @property
    def attack1(self) -> Identification | None:
        return self.dlib.attack1

    @property
    def attack2(self) -> ClassifierAttack | None:
        return self.dlib.attack2

    @property
    def parrot(self) -> ParrotAttack | None:
        return self.dlib.parrot

    @property
    def tar_at_far_1e3(self) -> float:
        return self.dlib.tar_at_far_1e3

    def checks(self) -> dict[str, tuple[float, bool]]:
        """The issue's bars, for the GAN surrogate."""
        out = {"deidentified": (self.deidentified, self.deidentified >= BARS["deidentified"]),
               "smile_agreement": (self.smile_agreement,
                                   self.smile_agreement >= BARS["smile_agreement"])}
        if self.attack1 is not None:
            ratio = self.attack1.over_chance[1]
            out["rank1_over_chance"] = (ratio, ratio <= BARS["rank1_over_chance"])
        return out


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
    """One method on one data set; its privacy by each recognizer."""
    r0 = rows[0]
    found = [r for r in rows if r.output.found]
    privacy = {rec.key: measure(rows, rec, identities_known, parrot) for rec in RECOGNIZERS}
    labels = label_parrot(rows, parrot or {}) if identities_known else None
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
        truth=truth_metrics(rows), privacy=privacy,
        deidentified_both=deidentified_both(privacy[DLIB.key], privacy[ARCFACE.key]),
        joy_bins=joy_bins(rows), expression7_agreement=expression_agreement(rows),
        happy_agreement=expression_agreement(rows, happy=True), realism=realism_of(rows),
        label_parrot=labels[0] if labels else None,
        label_parrot_other_photo=labels[1] if labels else None)


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

