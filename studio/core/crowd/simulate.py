"""A simulated crowd for a study folder: answers in the files MTurk and Label Studio give back.

Checking a study end to end needs a crowd whose accuracy is known: each version has an
accuracy, each worker a skill offset (drawn, then centred so that the crowd's mean accuracy
on a version is the one given), and every worker slot of plan.csv answers its items in its
order. The answers are written as an MTurk batch results CSV (the Requester's "Download
CSV": the assignment columns, Input.<column> per input column, Answer.<name>.label from the
layout's classifier, then Approve and Reject) or as a Label Studio JSON export.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.crowd.formats import BASIC_EXPRESSIONS, MappingRow
from studio.core.crowd.tables import csv_writer

__all__ = ["MTURK_RESULT_COLUMNS", "SimulatedCrowd", "fill_truth", "read_plan"]

#: The assignment columns of MTurk's batch results, in MTurk's order; the input and answer
#: columns follow them, then Approve and Reject.
MTURK_RESULT_COLUMNS = (
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime",
    "MaxAssignments", "RequesterAnnotation", "AssignmentDurationInSeconds",
    "AutoApprovalDelayInSeconds", "Expiration", "NumberOfSimilarHITs", "LifetimeInSeconds",
    "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime",
    "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback",
    "WorkTimeInSeconds", "LifetimeApprovalRate", "Last30DaysApprovalRate",
    "Last7DaysApprovalRate")


def fill_truth(sheet: Path, smiles: dict[str, bool], out: Path | None = None) -> Path:
    """The truth sheet a study leaves, filled in from known labels (by the original's file
    stem) as a researcher fills it in, for a simulated study; written to ``out`` (default:
    over the sheet)."""
    rows = list(csv.DictReader(sheet.open(newline="", encoding="utf-8")))
    out = out or sheet
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv_writer(fh)
        w.writerow(["original_key", "label"])
        for r in rows:
            smile = smiles[Path(r["original_path"]).stem]
            w.writerow([r["original_key"], "smile" if smile else "no_smile"])
    return out


def read_plan(study: Path) -> list[list[str]]:
    """plan.csv as worker slot -> item ids in the order that slot sees them."""
    slots: dict[int, list[tuple[int, str]]] = {}
    with (Path(study) / "plan.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            slots.setdefault(int(r["worker_slot"]), []).append((int(r["position"]),
                                                               r["item_id"]))
    return [[item for _, item in sorted(slots[w])] for w in sorted(slots)]


@dataclass
class SimulatedCrowd:
    """Workers answering a study: P(right) = accuracy[version] + the worker's skill offset."""

    accuracy: dict[str, float]
    skill_spread: float = 0.08  # offsets drawn from [-spread, spread], then centred
    seed: int = 0
    answers: list[tuple[str, str, bool, bool]] = field(default_factory=list)
    # (worker, item, said smile, right)

    def answer(self, study: Path, mapping: dict[str, MappingRow], truth: dict[str, bool]
               ) -> list[tuple[str, str, bool, bool]]:
        rng = np.random.default_rng(self.seed)
        plan = read_plan(study)
        skill = rng.uniform(-self.skill_spread, self.skill_spread, len(plan))
        skill -= skill.mean()
        self.answers = []
        for w, items in enumerate(plan):
            worker = f"A{w + 1:03d}SIMULATED"
            for item in items:
                row = mapping[item]
                p = float(np.clip(self.accuracy[row.version] + skill[w], 0.01, 0.99))
                right = bool(rng.random() < p)
                said = truth[row.original_key] == right
                self.answers.append((worker, item, said, right))
        return self.answers

    def mturk_results(self, study: Path, out: Path) -> Path:
        """The answers as MTurk's batch results CSV, one row per assignment (HIT = a row of
        mturk.csv, so every showing of an item is an assignment of its HIT)."""
        with (Path(study) / "mturk.csv").open(newline="", encoding="utf-8") as fh:
            inputs = list(csv.DictReader(fh))
        hit_of = {Path(r["image_url"]).stem: (f"3SIMHIT{i:07d}", r) for i, r in
                  enumerate(inputs)}
        per_hit: dict[str, int] = {}
        for _, item, _, _ in self.answers:
            per_hit[item] = per_hit.get(item, 0) + 1
        header = [*MTURK_RESULT_COLUMNS, *(f"Input.{c}" for c in inputs[0]),
                  "Answer.smile.label", "Approve", "Reject"]
        with Path(out).open("w", newline="", encoding="utf-8") as fh:
            w = csv_writer(fh, quoting=csv.QUOTE_ALL)  # MTurk quotes every field
            w.writerow(header)
            for n, (worker, item, said, _) in enumerate(self.answers):
                hit, inp = hit_of[item]
                values = {"HITId": hit, "HITTypeId": "3SIMTYPE", "Title": "Is this person "
                          "smiling?", "Reward": "$0.02", "MaxAssignments": str(per_hit[item]),
                          "AssignmentId": f"3SIMASG{n:08d}", "WorkerId": worker,
                          "AssignmentStatus": "Submitted", "WorkTimeInSeconds": "7",
                          "LifetimeApprovalRate": "0% (0/0)",
                          **{f"Input.{c}": v for c, v in inp.items()},
                          "Answer.smile.label": "Smile" if said else "No smile"}
                w.writerow([values.get(c, "") for c in header])
        return Path(out)

    def label_studio_export(self, study: Path, out: Path, expressions: bool = False) -> Path:
        """The answers as a Label Studio JSON export of labelstudio_tasks.json: one
        annotation per answer; with ``expressions``, the seven-class choice too (Happiness
        for a smile, else mostly Neutral)."""
        tasks = json.loads((Path(study) / "labelstudio_tasks.json").read_text("utf-8"))
        rng = np.random.default_rng([self.seed, 1])
        by_item: dict[str, list[dict]] = {}
        for n, (worker, item, said, _) in enumerate(self.answers):
            result = [{"from_name": "smile", "to_name": "image", "type": "choices",
                       "value": {"choices": ["Smile" if said else "No smile"]}}]
            if expressions:
                other = BASIC_EXPRESSIONS[0] if rng.random() < 0.7 else \
                    BASIC_EXPRESSIONS[int(rng.integers(2, len(BASIC_EXPRESSIONS)))]
                result.append({"from_name": "expression", "to_name": "image",
                               "type": "choices",
                               "value": {"choices": ["Happiness" if said else other]}})
            by_item.setdefault(item, []).append(
                {"id": n + 1, "completed_by": int(worker[1:4]), "result": result,
                 "was_cancelled": False})
        export = [{"id": i + 1, "data": t["data"],
                   "annotations": by_item.get(t["data"]["item_id"], [])}
                  for i, t in enumerate(tasks)]
        Path(out).write_text(json.dumps(export, indent=1), encoding="utf-8")
        return Path(out)
