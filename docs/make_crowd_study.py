"""The figures of docs/crowd-study.md: a small study of GENKI-4K test faces, answered by a
simulated crowd of known accuracy, through the same commands a researcher runs.

    .venv/bin/python docs/make_crowd_study.py

Writes docs/crowd-study/{accuracy,differences,workers}.png and prints the report's numbers.
Only the report's plots are kept: no face leaves the temporary folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from studio.core.crowd.formats import read_mapping, read_truth
from studio.core.crowd.simulate import SimulatedCrowd, fill_truth
from studio.core.datasets import genki

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {"original": 0.85, "gan": 0.75, "3d": 0.78, "context": 0.82}


def studio(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "studio", *args], check=True, cwd=ROOT)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        photos.mkdir()
        labels = {}
        test = genki("test")  # smiles first, then non-smiles: take every 25th
        for item in test[::25][:48]:
            shutil.copy(item.path, photos / item.path.name)
            labels[item.stem] = item.smile
        study = tmp / "s1"
        studio("study", str(photos), str(study), "--originals", "12", "--workers", "40",
               "--originals-may-be-shown", "--base-url", "https://example.org/s1/",
               "--format", "mturk", "--seed", "7", "--quiet")
        sheet = tmp / "s1.private-truth.csv"  # filled in here from GENKI-4K's own labels
        fill_truth(sheet, labels)
        mapping, _ = read_mapping(tmp / "s1.private-mapping.csv")
        truth, _ = read_truth(sheet)
        crowd = SimulatedCrowd(KNOWN, seed=11)
        crowd.answer(study, mapping, truth)
        results = crowd.mturk_results(study, tmp / "Batch_1_batch_results.csv")
        studio("crowd-report", str(results), str(tmp / "report"), "--truth", str(sheet),
               "--mapping", str(tmp / "s1.private-mapping.csv"))
        out = ROOT / "docs" / "crowd-study"
        out.mkdir(exist_ok=True)
        for name in ("accuracy", "differences", "workers"):
            shutil.copy(tmp / "report" / f"{name}.png", out / f"{name}.png")
        summary = json.loads((tmp / "report" / "summary.json").read_text())
        for key in ("versions", "machine", "aggregates", "tests"):
            print(key, json.dumps(summary[key], indent=None))


if __name__ == "__main__":
    main()
