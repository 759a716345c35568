"""Shared fixtures: the real analyzer and engine (built once), real faces from
../shared/data, and a simulated crowd's files. Each folder's conftest.py holds what only
its wing needs; the one skip hook of the ``data`` marker is here."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.core.analysis.images import load_image
from studio.core.crowd.formats import MAPPING_COLUMNS, Answer, MappingRow, ParsedResults
from studio.core.datasets import data_available, data_root, genki


def pytest_collection_modifyitems(config, items) -> None:
    """The one skip hook of the ``data`` marker: without ../shared/data (a user's machine)
    those tests skip with the reason, and CI still runs the rest."""
    if data_available():
        return
    skip = pytest.mark.skip(reason=f"research face data not found at {data_root()}")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def analyzer():
    from studio.core.analysis.analyzer import FaceAnalyzer

    a = FaceAnalyzer()
    yield a
    a.close()


@pytest.fixture(scope="session")
def engine():
    """Every model of the studio, loaded once for all the tests that need the lot."""
    import sys

    from studio.core.surrogates.engine import SurrogateEngine

    e = SurrogateEngine()
    yield e
    if "PySide6.QtCore" in sys.modules:  # no window job may outlive the models
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30000)
    e.close()


@pytest.fixture(scope="session")
def utk_face_path() -> Path:
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    # A frontal adult face, 200x200 and aligned.
    return sorted((data_root() / "utkface" / "images").glob("35_0_0_*.jpg"))[0]


@pytest.fixture(scope="session")
def utk_face(utk_face_path) -> np.ndarray:
    return load_image(utk_face_path).rgb


@pytest.fixture(scope="session")
def genki_test():
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    return genki("test")


@pytest.fixture(scope="session")
def group_photo(utk_face) -> np.ndarray:
    """Two real people side by side on a plain background: a man left, a woman right."""
    from studio.core.datasets import utkface

    woman = next(it for it in utkface() if not it.male and it.age == 30)
    canvas = np.full((260, 520, 3), 200, np.uint8)
    canvas[30:230, 20:220] = utk_face
    canvas[30:230, 300:500] = load_image(woman.path).rgb
    return canvas


# --- a simulated crowd (the crowd wing, the crowd report window, the command's corpus) -----


class Study:
    """A simulated crowd: every worker labels every image of every version once."""

    MTURK_COLUMNS = ("HITId", "HITTypeId", "Title", "Reward", "CreationTime", "AssignmentId",
                     "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime",
                     "WorkTimeInSeconds", "LifetimeApprovalRate", "Input.image_url",
                     "Answer.smile", "Answer.taskAnswers", "Approve", "Reject")
    URL = "https://bucket.s3.amazonaws.com/batch1/{}.png"

    def __init__(self, n_images: int, n_workers: int, p: dict[str, float], seed: int = 0,
                 drop: float = 0.0):
        rng = np.random.default_rng(seed)
        self.mapping: dict[str, MappingRow] = {}
        self.truth: dict[str, bool] = {}
        self.answers: list[Answer] = []
        self.correct = dict.fromkeys(p, 0)
        self.total = dict.fromkeys(p, 0)
        for i in range(n_images):
            key = f"{i:08x}:0"
            self.truth[key] = bool(i % 2)
            joy = float(rng.uniform(0.02, 0.98))
            for version, p_correct in p.items():
                item = rng.bytes(6).hex()
                self.mapping[item] = MappingRow(item, key, version, None if version ==
                                                "original" else i, "item", None, joy)
                for w in range(n_workers):
                    if rng.random() < drop:
                        continue
                    right = bool(rng.random() < p_correct)
                    smile = self.truth[key] if right else not self.truth[key]
                    self.answers.append(Answer(f"W{w:03d}", item, smile, "sim"))
                    self.correct[version] += right
                    self.total[version] += 1

    def parsed(self) -> ParsedResults:
        return ParsedResults("sim", "mturk", answers=list(self.answers),
                             n_records=len(self.answers))

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        """mapping.csv, truth.csv and an MTurk batch CSV (one row per assignment)."""
        mapping, truth, results = folder / "mapping.csv", folder / "truth.csv", folder / "b.csv"
        with mapping.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(MAPPING_COLUMNS)
            for r in self.mapping.values():
                w.writerow([r.item_id, r.original_key, r.version, "" if r.seed is None
                            else r.seed, r.kind, "", f"{r.joy:.4f}"])
        with truth.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["original_key", "label"])
            for key, smile in self.truth.items():
                w.writerow([key, "smile" if smile else "no_smile"])
        with results.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.MTURK_COLUMNS)
            for n, a in enumerate(self.answers):
                w.writerow(self.mturk_row(a.worker, a.item_id,
                                          "smile" if a.smile else "no_smile", n=n))
        return mapping, truth, results

    def label_studio(self, path: Path) -> list[dict]:
        """The study as a Label Studio export, one task per item; returns the tasks written."""
        by_item: dict[str, list] = {}
        for a in self.answers:
            by_item.setdefault(a.item_id, []).append(a)
        tasks = [{"id": n + 1, "data": {"image": self.URL.format(item), "item_id": item},
                  "annotations": [{"id": 100 * n + j, "completed_by": a.worker,
                                   "was_cancelled": False,
                                   "result": [{"from_name": "smile", "to_name": "image",
                                               "type": "choices",
                                               "value": {"choices": ["Smile" if a.smile else
                                                                     "No smile"]}}]}
                                  for j, a in enumerate(answers)]}
                 for n, (item, answers) in enumerate(by_item.items())]
        path.write_text(json.dumps(tasks))
        return tasks

    @classmethod
    def mturk_row(cls, worker: str, item: str, answer: str = "", task_answers: str = "",
                  status: str = "Approved", url: str | None = None, n: int = 0) -> list[str]:
        """One row of an MTurk batch results file."""
        values = {"HITId": f"3HIT{n:06d}", "HITTypeId": "3TYPE",
                  "Title": "Is this person smiling?", "Reward": "$0.02",
                  "CreationTime": "Mon Mar 04 10:00:00 PST 2024",
                  "AssignmentId": f"3ASG{n:06d}", "WorkerId": worker, "AssignmentStatus": status,
                  "AcceptTime": "Mon Mar 04 10:01:00 PST 2024",
                  "SubmitTime": "Mon Mar 04 10:01:09 PST 2024", "WorkTimeInSeconds": "9",
                  "LifetimeApprovalRate": "100% (12/12)",
                  "Input.image_url": url if url is not None else cls.URL.format(item),
                  "Answer.smile": answer, "Answer.taskAnswers": task_answers, "Approve": "",
                  "Reject": ""}
        return [values[c] for c in cls.MTURK_COLUMNS]


@pytest.fixture(scope="session")
def crowd_study() -> type[Study]:
    """The simulated crowd, as a factory: ``crowd_study(n_images, n_workers, {version:
    p_correct}, seed=, drop=)``; ``.write(folder)`` gives mapping, truth and an MTurk file,
    ``.label_studio(path)`` a Label Studio export; ``crowd_study.mturk_row(...)`` one MTurk
    row, ``crowd_study.URL`` the image URL pattern."""
    return Study


@pytest.fixture(scope="session")
def held_out_adults() -> list:
    """Eight held-out UTKFace adults (nobody the generator or the 3D model was built from)."""
    from studio.core.datasets import utk_split, utkface

    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    return [it for it in utk_split(utkface(), "test") if 25 <= it.age <= 50][:8]
