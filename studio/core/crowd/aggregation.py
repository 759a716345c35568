"""Aggregating crowd answers with crowd-kit, and the rows the report sets beside them.

crowd-kit's MajorityVote gives each image's vote shares (the majority label and the
consensus the thesis's tables threshold), its DawidSkene the labels of a model that
weighs each worker by an estimated confusion matrix, and each worker's estimated
accuracy. The machine baseline is the studio's own smile decision (joy >= 0.5) on the same
items, as the thesis reported Emotient's 83.3%. The seven-class answers, when a batch
asked for them, are counted per version and their majority compared with the original's.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from studio.core.crowd.formats import BASIC_EXPRESSIONS

__all__ = ["AggregateAccuracy", "ExpressionTable", "MachineAccuracy", "dawid_skene",
           "expression_tables", "machine_accuracy", "majority_shares"]

#: Dawid-Skene's EM iterations (crowd-kit's default is 100; the thesis-sized batches
#: converge well within it).
DS_ITERATIONS = 100


@dataclass
class AggregateAccuracy:
    """Accuracy of one aggregated label per image, for one version."""

    version: str
    n_images: int
    majority: float  # crowd-kit MajorityVote; a tied image scores 0.5
    dawid_skene: float  # crowd-kit DawidSkene


@dataclass
class MachineAccuracy:
    """The studio's smile decision (joy >= 0.5) against the truth, on the same items."""

    what: str  # "original photo" or the version whose shown picture was read
    n_images: int
    n_correct: int
    accuracy: float
    ci_low: float  # Wilson 95% interval
    ci_high: float


@dataclass
class ExpressionTable:
    """The 7-class answers for one version."""

    version: str
    n_answers: int
    shares: dict[str, float] = field(default_factory=dict)  # expression -> share of answers
    agree_with_original: float = float("nan")  # majority expression equals the original's
    n_compared: int = 0


Vote = tuple[str, str, str]  # (worker, task, label)


def _frame(votes: list[Vote]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """crowd-kit's input (columns worker, task, label) with workers and tasks as integer
    codes: ids from the input files may hold text pandas' string arrays refuse (a lone
    surrogate from a JSON "\\ud800"), and results are handed back as plain dicts."""
    workers = list(dict.fromkeys(w for w, _, _ in votes))
    tasks = list(dict.fromkeys(t for _, t, _ in votes))
    wi, ti = {w: i for i, w in enumerate(workers)}, {t: i for i, t in enumerate(tasks)}
    frame = pd.DataFrame({"worker": [wi[w] for w, _, _ in votes],
                          "task": [ti[t] for _, t, _ in votes],
                          "label": [label for _, _, label in votes]})
    return frame, workers, tasks


@contextmanager
def _quiet() -> Iterator[None]:
    """crowd-kit's own pandas deprecation notes are not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"crowdkit(\.|$)")
        yield


def majority_shares(votes: list[Vote]) -> dict[str, dict[str, float]]:
    """task -> share of its answers per label (crowd-kit MajorityVote.fit_predict_proba)."""
    from crowdkit.aggregation import MajorityVote

    frame, _, tasks = _frame(votes)
    with _quiet():
        proba = MajorityVote().fit_predict_proba(frame)
    return {tasks[t]: {str(c): float(v) for c, v in row.items()} for t, row in proba.iterrows()}


def dawid_skene(votes: list[Vote]) -> tuple[dict[str, str], dict[str, float]]:
    """Dawid-Skene labels per task, and each worker's estimated accuracy: the diagonal of
    their confusion matrix weighted by the estimated class priors."""
    from crowdkit.aggregation import DawidSkene

    frame, workers, tasks = _frame(votes)
    ds = DawidSkene(n_iter=DS_ITERATIONS)
    with _quiet():
        labels = ds.fit_predict(frame)
    skill: dict[str, float] = {}
    for worker, matrix in ds.errors_.groupby(level=0):
        m = matrix.droplevel(0)
        skill[workers[int(worker)]] = float(sum(
            ds.priors_[c] * m.loc[c, c] for c in ds.priors_.index
            if c in m.index and c in m.columns))
    return {tasks[int(t)]: str(v) for t, v in labels.items()}, skill


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)


def machine_accuracy(images: list, joy_of_original: dict[str, float],
                     item_joy: dict[tuple[str, str], float], versions: list[str]
                     ) -> list[MachineAccuracy]:
    """The studio's decision on each original photo of the study, then on each version's
    pictures where the mapping recorded what the studio read on them (``studio study``)."""
    rows = []
    truth = {i.original_key: i.truth for i in images}
    keys = sorted(k for k in truth if k in joy_of_original)
    if keys:
        k = sum((joy_of_original[key] >= 0.5) == truth[key] for key in keys)
        rows.append(MachineAccuracy("original photo", len(keys), k, k / len(keys),
                                    *_wilson(k, len(keys))))
    for version in (v for v in versions if v != "original"):  # the original: the row above
        imgs = [i for i in images if i.version == version]
        if imgs and all((i.original_key, version) in item_joy for i in imgs):
            k = sum((item_joy[(i.original_key, version)] >= 0.5) == i.truth for i in imgs)
            rows.append(MachineAccuracy(version, len(imgs), k, k / len(imgs),
                                        *_wilson(k, len(imgs))))
    return rows


def expression_tables(answers: list[tuple[str, str, str, str]], versions: list[str]
                      ) -> list[ExpressionTable]:
    """From (worker, original_key, version, expression) answers: the shares per version,
    and how often a version's majority expression (crowd-kit) is the original's."""
    if not answers:
        return []
    shares = majority_shares([(w, f"{key}|{v}", e) for w, key, v, e in answers])
    majority = {t: max(s, key=s.get) for t, s in shares.items()}
    by_version: dict[str, Counter] = defaultdict(Counter)
    for _, _, v, e in answers:
        by_version[v][e] += 1
    tables = []
    for version in (v for v in versions if v in by_version):
        counts = by_version[version]
        n = sum(counts.values())
        table = ExpressionTable(version, n, {e: counts[e] / n for e in BASIC_EXPRESSIONS})
        if version != "original" and "original" in by_version:
            pairs = [(majority[t], majority.get(f"{t.rsplit('|', 1)[0]}|original"))
                     for t in majority if t.endswith(f"|{version}")]
            pairs = [(a, b) for a, b in pairs if b is not None]
            table.n_compared = len(pairs)
            if pairs:
                table.agree_with_original = float(np.mean([a == b for a, b in pairs]))
        tables.append(table)
    return tables
