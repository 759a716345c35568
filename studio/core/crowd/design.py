"""The design of a crowd validation study, as the thesis designed its own.

Which originals: equal numbers from each 0.5-wide bin of joy evidence (the logit of joy),
so that faces near the smile boundary, where surrogates are most likely to flip the
crowd's answer, are as well represented as clear smiles and clear neutrals. Who sees what:
every worker every item, each in a random order of their own, while that is a sitting a
worker can finish; past it, a balanced assignment in which every item is seen by the same
number of workers and every worker labels about as many items.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from studio.core.crowd.tables import csv_writer

__all__ = ["BIN_WIDTH", "FULL_DESIGN_LIMIT", "JOY_CLIP", "StratifiedPicker", "StudyPlan",
           "evidence_bin", "evidence_of", "plan_assignment"]

JOY_CLIP = 1e-3  # joy is clipped to [0.001, 0.999] before the logit, so evidence is finite
BIN_WIDTH = 0.5  # evidence bins, in logit units
#: Items one worker labels in the full design: the thesis's 180 (60 originals x 3 versions)
#: plus a fourth version. A larger study gets the balanced design.
FULL_DESIGN_LIMIT = 240


def evidence_of(joy: float | None) -> float | None:
    """Joy evidence: the logit of joy, so that equal steps mean equal changes in the odds."""
    if joy is None:
        return None
    j = min(max(joy, JOY_CLIP), 1 - JOY_CLIP)
    return math.log(j / (1 - j))


def evidence_bin(evidence: float) -> float:
    """The lower edge of the BIN_WIDTH-wide bin that holds ``evidence``."""
    return math.floor(evidence / BIN_WIDTH) * BIN_WIDTH


class StratifiedPicker:
    """Candidates in the order a stratified sample takes them: always from a bin with the
    fewest accepted so far (ties in a seeded random order of bins), a random member each
    time. An original that cannot be used (no surrogate passes the identity gate) is simply
    not accepted, and its bin is asked again, so the sample stays equal across bins."""

    def __init__(self, evidence: list[float], rng: np.random.Generator) -> None:
        members: dict[float, list[int]] = defaultdict(list)
        for i, e in enumerate(evidence):
            members[evidence_bin(e)].append(i)
        self.bins = sorted(members)
        self._rank = {b: int(r) for b, r in zip(self.bins, rng.permutation(len(self.bins)),
                                                 strict=True)}
        self._left = {b: [members[b][j] for j in rng.permutation(len(members[b]))]
                      for b in self.bins}
        self.accepted = dict.fromkeys(self.bins, 0)
        self._bin_of = {i: evidence_bin(e) for i, e in enumerate(evidence)}

    def next(self) -> int | None:
        """The next candidate's index, or None when every candidate was tried."""
        open_bins = [b for b in self.bins if self._left[b]]
        if not open_bins:
            return None
        b = min(open_bins, key=lambda b: (self.accepted[b], self._rank[b]))
        return self._left[b].pop()

    def accept(self, index: int) -> None:
        self.accepted[self._bin_of[index]] += 1


@dataclass
class StudyPlan:
    """Who sees which item, in which order: ``sequences[w]`` lists worker slot w's items."""

    design: str  # "full" (every worker every item) or "balanced"
    workers: int
    per_item: int  # workers who see each item
    sequences: list[list[int]]

    @property
    def loads(self) -> list[int]:
        return [len(s) for s in self.sequences]

    def csv_text(self, item_ids: list[str]) -> str:
        """plan.csv: worker_slot, position, item_id (no version or original: ids are random)."""
        text = io.StringIO()
        w = csv_writer(text, lineterminator="\n")
        w.writerow(["worker_slot", "position", "item_id"])
        w.writerows([s + 1, p + 1, item_ids[i]] for s, seq in enumerate(self.sequences)
                    for p, i in enumerate(seq))
        return text.getvalue()


def plan_assignment(n_items: int, workers: int, rng: np.random.Generator,
                    per_item: int | None = None, max_per_worker: int = FULL_DESIGN_LIMIT
                    ) -> StudyPlan:
    """The full design while ``n_items`` <= ``max_per_worker``, else a balanced one.

    Balanced: the items in a random order, each dealt to ``per_item`` consecutive worker
    slots round the table, so no worker gets an item twice and loads differ by at most one.
    ``per_item`` defaults to the most that keeps every load within ``max_per_worker``.
    """
    if n_items < 1 or workers < 1:
        raise ValueError("a study needs at least one item and one worker")
    if n_items <= max_per_worker and per_item in (None, workers):
        return StudyPlan("full", workers, workers,
                         [rng.permutation(n_items).tolist() for _ in range(workers)])
    k = per_item if per_item is not None else min(workers, workers * max_per_worker // n_items)
    if k < 1:
        raise ValueError(f"{n_items} items with at most {max_per_worker} per worker need at "
                         f"least {math.ceil(n_items / max_per_worker)} workers, not {workers}")
    if k > workers:
        raise ValueError(f"each item cannot be seen by {k} workers when there are {workers}")
    sequences: list[list[int]] = [[] for _ in range(workers)]
    for j, item in enumerate(rng.permutation(n_items).tolist()):
        for c in range(k):
            sequences[(j * k + c) % workers].append(item)
    if max(len(s) for s in sequences) > max_per_worker:
        raise ValueError(f"{k} workers per item gives up to {max(len(s) for s in sequences)} "
                         f"items per worker, over the limit of {max_per_worker}")
    return StudyPlan("balanced", workers, k,
                     [[s[i] for i in rng.permutation(len(s))] for s in sequences])
