"""The thesis's analysis of crowd smile labels joined to the private mapping.

Average and majority-vote accuracy per version, consensus levels, paired t-tests on
per-image correct counts, accuracy against the number of workers sampled, and accuracy
against the original's joy evidence. The votes are aggregated by crowd-kit (majority vote,
and Dawid-Skene beside it; ``crowd.aggregation``), and the studio's own smile decision on the
same items is the machine baseline.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from studio.core.crowd.aggregation import (
    AggregateAccuracy,
    ExpressionTable,
    MachineAccuracy,
    dawid_skene,
    expression_tables,
    machine_accuracy,
    majority_shares,
)
from studio.core.crowd.design import BIN_WIDTH, JOY_CLIP, evidence_bin, evidence_of
from studio.core.crowd.formats import (
    VERSIONS,
    CrowdInputError,
    MappingRow,
    ParsedResults,
    read_mapping,
    read_results,
    read_truth,
)
from studio.core.crowd.tables import short

__all__ = ["BIN_WIDTH", "CONSENSUS_LEVELS", "JOY_CLIP", "CrowdAnalysis", "analyze",
           "evidence_of", "load_and_analyze", "majority_score", "paired_test"]

CONSENSUS_LEVELS = (0.5, 0.75, 0.90)  # 0.5: every image (a majority always has >= half)


@dataclass
class ImageResult:
    """One version of one original face: its answers, correct count and joy evidence."""

    original_key: str
    version: str
    truth: bool
    n_answers: int
    n_smile: int
    n_correct: int
    joy: float | None
    evidence: float | None  # logit of the original's joy
    votes: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))  # correct?
    smile_share: float = float("nan")  # crowd-kit MajorityVote's P(smile) for this image

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_answers

    @property
    def majority_correct(self) -> float:
        """1 if the majority label is right, 0 if wrong, 0.5 for a tie (a fair coin's share)."""
        right = self.smile_share if self.truth else 1 - self.smile_share
        return 1.0 if right > 0.5 else 0.5 if right == 0.5 else 0.0

    @property
    def consensus(self) -> float:
        """Share of answers that agree with the majority label."""
        return max(self.smile_share, 1 - self.smile_share)


def majority_score(n_correct: np.ndarray | int, n: np.ndarray | int) -> np.ndarray | float:
    """Majority-vote correctness from correct counts; ties score 0.5 (a fair coin)."""
    twice = 2 * np.asarray(n_correct)
    score = np.where(twice > n, 1.0, np.where(twice == n, 0.5, 0.0))
    return score if score.ndim else float(score)


@dataclass
class VersionAccuracy:
    version: str
    n_images: int
    n_answers: int
    n_correct: int
    accuracy: float  # all correct answers / all answers
    ci_low: float  # 95% CI clustered by image (answers on one image are not independent)
    ci_high: float


@dataclass
class ConsensusResult:
    version: str
    level: float  # consensus >= level; 0.5 means every image
    n_images: int
    n_reached: int
    majority_accuracy: float  # over the images that reach the level (nan if none)


@dataclass
class PairedTest:
    a: str
    b: str
    n: int  # originals shown in both versions
    mean_difference: float  # mean of correct(a) - correct(b) per image
    sd_difference: float
    t: float
    p: float


@dataclass
class WorkerCurve:
    version: str
    k: list[int]
    accuracy: list[float]  # majority-vote accuracy with k workers sampled per image


@dataclass
class JoyBin:
    version: str
    low: float
    high: float
    n_images: int
    mean_accuracy: float


@dataclass
class WorkerQuality:
    worker: str
    n_answers: int
    n_items: int  # study items with a known truth
    item_accuracy: float
    n_gold: int
    gold_correct: int
    gold_accuracy: float
    n_repeat_pairs: int
    n_consistent: int
    consistency: float  # share of repeated pairs answered the same
    ds_accuracy: float = float("nan")  # Dawid-Skene's estimate (crowd-kit), from all answers


@dataclass
class CrowdAnalysis:
    """Everything the report shows; to_dict() is summary.json."""

    source: str
    format: str
    n_records: int
    n_answers: int
    skipped: dict[str, int]
    problems: list[str]
    versions: list[VersionAccuracy]
    consensus: list[ConsensusResult]
    tests: list[PairedTest]
    curves: list[WorkerCurve]
    joy_bins: list[JoyBin]
    images: list[ImageResult]
    workers: list[WorkerQuality]
    low_gold_workers: list[str]
    n_images_without_joy: int
    seed: int
    draws: int
    aggregates: list[AggregateAccuracy] = field(default_factory=list)
    machine: list[MachineAccuracy] = field(default_factory=list)
    expressions: list[ExpressionTable] = field(default_factory=list)

    @property
    def originals_shown(self) -> bool:
        return any(i.version == "original" for i in self.images)

    def version(self, name: str) -> VersionAccuracy | None:
        return next((v for v in self.versions if v.version == name), None)

    def to_dict(self) -> dict:
        images = [{"original_key": i.original_key, "version": i.version,
                   "truth": "smile" if i.truth else "no_smile", "n_answers": i.n_answers,
                   "n_smile": i.n_smile, "n_correct": i.n_correct, "accuracy": i.accuracy,
                   "majority_correct": i.majority_correct, "consensus": i.consensus,
                   "joy": i.joy, "evidence": i.evidence} for i in self.images]
        out = {k: getattr(self, k) for k in ("source", "format", "n_records", "n_answers",
                                             "skipped", "problems", "low_gold_workers",
                                             "n_images_without_joy", "seed", "draws")}
        out["n_problems"] = len(self.problems)
        out["joy_evidence"] = (f"logit of the original's joy, log(joy / (1 - joy)), joy clipped "
                               f"to [{JOY_CLIP}, {1 - JOY_CLIP}]; bins {BIN_WIDTH} wide")
        out["majority_ties"] = "a tie scores 0.5 (a fair coin's expected accuracy)"
        out["originals_shown"] = self.originals_shown
        for name in ("versions", "consensus", "tests", "curves", "joy_bins", "workers",
                     "aggregates", "machine", "expressions"):
            out[name] = [asdict(x) for x in getattr(self, name)]
        out["images"] = images
        return _clean(out)


def _clean(value: Any) -> Any:
    """JSON-safe: nan and inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clustered_ci(n_correct: np.ndarray, n_answers: np.ndarray, level: float = 0.95
                 ) -> tuple[float, float]:
    """CI of a pooled accuracy whose answers cluster by image (ratio estimator, t with m-1 df).

    With the same number of answers per image this is the t-interval of per-image accuracies.
    """
    m = len(n_answers)
    if m < 2:
        return float("nan"), float("nan")
    acc = n_correct.sum() / n_answers.sum()
    resid = n_correct - acc * n_answers
    se = math.sqrt(m / (m - 1) * float((resid**2).sum())) / n_answers.sum()
    half = stats.t.ppf(0.5 + level / 2, m - 1) * se
    return max(0.0, acc - half), min(1.0, acc + half)


def paired_test(a: str, b: str, diffs: np.ndarray) -> PairedTest:
    """scipy's one-sample t-test against 0, with zero variance decided deterministically.

    All differences equal: t = 0, p = 1 when they are 0, else t = +-inf, p = 0 (the limit),
    where scipy would warn and return nan.
    """
    n = len(diffs)
    mean = float(diffs.mean()) if n else float("nan")
    sd = float(diffs.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        t = p = float("nan")
    elif np.all(diffs == diffs[0]):
        t, p = (0.0, 1.0) if diffs[0] == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        res = stats.ttest_1samp(diffs, 0.0)
        t, p = float(res.statistic), float(res.pvalue)
    return PairedTest(a, b, n, mean, sd, t, p)


def sampled_majority_curve(votes: list[np.ndarray], draws: int, rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Majority-vote accuracy with k = 1..max answers sampled per image, mean of draws.

    Each draw shuffles every image's answers once; the first k of a shuffle are a uniform
    sample of k, so prefix sums give every k at once. Images with fewer than k answers use
    all of theirs, so the curve ends at the full-crowd majority accuracy.
    """
    n = np.array([len(v) for v in votes])
    width = int(n.max())
    padded = np.zeros((len(votes), width))
    for i, v in enumerate(votes):
        padded[i, : len(v)] = v
    keys = rng.random((draws, len(votes), width))
    keys[:, np.arange(width)[None, :] >= n[:, None]] = np.inf  # padding sorts last
    order = np.argsort(keys, axis=2)
    shuffled = np.take_along_axis(np.broadcast_to(padded, keys.shape), order, axis=2)
    correct = np.cumsum(shuffled, axis=2)  # (draws, images, k)
    k = np.arange(1, width + 1)
    used = np.minimum(k[None, :], n[:, None])  # (images, k)
    correct = np.take_along_axis(correct, np.broadcast_to(used - 1, correct.shape), axis=2)
    score = majority_score(correct, used[None])
    return k, score.mean(axis=(0, 1))


def analyze(parsed: ParsedResults, mapping: dict[str, MappingRow], truth: dict[str, bool],
            seed: int = 0, draws: int = 10, extra_problems: Iterable[str] = ()) -> CrowdAnalysis:
    """The thesis's analysis of one crowd batch: see the module docstring."""
    problems = [*extra_problems, *parsed.problems]
    by_worker: dict[str, dict[str, bool]] = defaultdict(dict)
    said: list[tuple[str, str, str, str]] = []  # (worker, original, version, expression)
    for ans in parsed.answers:
        if ans.item_id in mapping:
            by_worker[ans.worker][ans.item_id] = ans.smile
            row = mapping[ans.item_id]
            if ans.expression is not None and row.kind == "item":
                said.append((ans.worker, row.original_key, row.version, ans.expression))
        else:  # only when read_results was not given the mapping's ids
            problems.append(f"{ans.where}: unknown item id {short(ans.item_id)}")

    joy_of: dict[str, float] = {}
    for row in sorted(mapping.values(), key=lambda r: r.version != "original"):
        if row.joy is not None:
            joy_of.setdefault(row.original_key, row.joy)

    # Each repeat points at the first item/gold shown with the same original, version and seed.
    primary: dict[tuple, str] = {}
    for row in mapping.values():
        if row.kind != "repeat":
            primary.setdefault((row.original_key, row.version, row.seed), row.item_id)
    repeat_of: dict[str, str] = {}
    for row in mapping.values():
        if row.kind == "repeat":
            key = (row.original_key, row.version, row.seed)
            if key in primary:
                repeat_of[row.item_id] = primary[key]
            else:
                problems.append(f"mapping: repeat item {row.item_id} has no first showing")

    votes: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)  # (smile, correct)
    voters: list[tuple[str, str, str]] = []  # (worker, task, label): crowd-kit's input
    no_truth: set[str] = set()
    workers: list[WorkerQuality] = []
    for worker, answers in sorted(by_worker.items()):
        items = gold_n = gold_c = pairs = same = item_c = 0
        for item_id, smile in answers.items():
            row = mapping[item_id]
            if row.kind == "repeat":
                first = repeat_of.get(item_id)
                if first is not None and first in answers:
                    pairs += 1
                    same += answers[first] == smile
                continue
            label = truth.get(row.original_key)
            if row.kind == "gold":
                label = row.gold_label if row.gold_label is not None else label
                if label is None:
                    no_truth.add(f"gold item {item_id}")
                    continue
                gold_n += 1
                gold_c += smile == label
                continue
            if label is None:
                no_truth.add(f"original {short(row.original_key)}")
                continue
            items += 1
            item_c += smile == label
            votes[(row.original_key, row.version)].append((smile, smile == label))
            voters.append((worker, f"{row.original_key}|{row.version}",
                           "smile" if smile else "no_smile"))
        workers.append(WorkerQuality(
            worker, len(answers), items, item_c / items if items else float("nan"), gold_n,
            gold_c, gold_c / gold_n if gold_n else float("nan"), pairs, same,
            same / pairs if pairs else float("nan")))
    problems += [f"no truth label for {what}; its answers are left out" for what in
                 sorted(no_truth)]

    shares = majority_shares(voters) if voters else {}
    ds_labels, skill = dawid_skene(voters) if voters else ({}, {})
    for w in workers:
        w.ds_accuracy = skill.get(w.worker, float("nan"))
    images = []
    order = {v: i for i, v in enumerate(VERSIONS)}
    for (key, version), vs in sorted(votes.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        arr = np.array(vs, dtype=bool)
        joy = joy_of.get(key)
        images.append(ImageResult(key, version, truth[key], len(arr), int(arr[:, 0].sum()),
                                  int(arr[:, 1].sum()), joy, evidence_of(joy), arr[:, 1],
                                  shares[f"{key}|{version}"].get("smile", 0.0)))

    present = [v for v in VERSIONS if any(i.version == v for i in images)]
    versions, consensus, curves, bins, aggregates = [], [], [], [], []
    for vi, version in enumerate(present):
        imgs = [i for i in images if i.version == version]
        c = np.array([i.n_correct for i in imgs])
        n = np.array([i.n_answers for i in imgs])
        versions.append(VersionAccuracy(version, len(imgs), int(n.sum()), int(c.sum()),
                                        float(c.sum() / n.sum()), *clustered_ci(c, n)))
        for level in CONSENSUS_LEVELS:
            reached = [i for i in imgs if i.consensus >= level]
            acc = float(np.mean([i.majority_correct for i in reached])) if reached \
                else float("nan")
            consensus.append(ConsensusResult(version, level, len(imgs), len(reached), acc))
        rng = np.random.default_rng([seed, vi])
        k, acc = sampled_majority_curve([i.votes for i in imgs], draws, rng)
        curves.append(WorkerCurve(version, k.tolist(), acc.tolist()))
        bins += _joy_bins(version, imgs)
        ds = [(ds_labels[f"{i.original_key}|{version}"] == "smile") == i.truth for i in imgs]
        aggregates.append(AggregateAccuracy(version, len(imgs), float(np.mean(
            [i.majority_correct for i in imgs])), float(np.mean(ds))))

    tests = []
    correct = {(i.original_key, i.version): i.n_correct for i in images}
    for a, b in itertools.combinations(present, 2):
        keys = sorted({k for k, v in correct if v == a} & {k for k, v in correct if v == b})
        diffs = np.array([correct[(k, a)] - correct[(k, b)] for k in keys], dtype=float)
        tests.append(paired_test(a, b, diffs))

    low = [w.worker for w in workers if w.n_gold and w.gold_accuracy < 0.5]
    item_joy = {(r.original_key, r.version): r.item_joy for r in mapping.values()
                if r.item_joy is not None}
    return CrowdAnalysis(parsed.source, parsed.format, parsed.n_records, len(parsed.answers),
                         dict(parsed.skipped), problems, versions, consensus, tests, curves,
                         bins, images, workers, low,
                         sum(i.evidence is None for i in images), seed, draws, aggregates,
                         machine_accuracy(images, joy_of, item_joy, present),
                         expression_tables(said, present))


def _joy_bins(version: str, images: list[ImageResult]) -> list[JoyBin]:
    groups: dict[float, list[float]] = defaultdict(list)
    for img in images:
        if img.evidence is not None:
            groups[evidence_bin(img.evidence)].append(img.accuracy)
    return [JoyBin(version, low, low + BIN_WIDTH, len(accs), float(np.mean(accs)))
            for low, accs in sorted(groups.items())]


def load_and_analyze(results: Path, mapping: Path, truth: Path, seed: int = 0,
                     draws: int = 10) -> CrowdAnalysis:
    """Read the three files and analyse; problems in any of them end up in the report. A
    file that cannot be read as a whole is a CrowdInputError: no report is made of it."""
    mapping_rows, mapping_problems = read_mapping(Path(mapping))
    truth_labels, truth_problems = read_truth(Path(truth))
    parsed = read_results(Path(results), known_items=mapping_rows)
    if parsed.unread:
        raise CrowdInputError(f"{results}: {parsed.unread}")
    return analyze(parsed, mapping_rows, truth_labels, seed=seed, draws=draws,
                   extra_problems=[*mapping_problems, *truth_problems])
