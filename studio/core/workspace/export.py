"""``studio export``: accepted surrogates as an annotation batch for crowd workers.

OUT_DIR gets only what workers may see: PNGs named by random item ids (no metadata, no
original pixels, no file names) and the task files. Which item came from which original,
method and seed goes to a separate private mapping file outside OUT_DIR. The folder is
written under a temporary name and renamed at the end, so a failed export leaves nothing
half-written, and an existing folder is never overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.landmarks import largest_face
from studio.core.crowd.formats import MAPPING_COLUMNS
from studio.core.errors import StudioError
from studio.core.surrogates.making import png_bytes
from studio.core.workspace.store import Candidate, FaceRecord, Workspace

FORMATS = ("mturk", "labelstudio")
#: The crowd report's columns, then what lets the researcher find the original again.
MAPPING_FIELDS = [*MAPPING_COLUMNS, "candidate_id", "original_path", "face_index"]
BASIC_EXPRESSIONS = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger"]


class ExportError(StudioError):
    pass


@dataclass
class ExportReport:
    out_dir: Path
    mapping: Path
    items: int = 0
    gold: int = 0
    repeats: int = 0
    refused: list[str] = field(default_factory=list)


def label_studio_config(expressions: bool = False) -> str:
    parts = ['<View>', '  <Image name="image" value="$image"/>',
             '  <Header value="Is this person smiling?"/>',
             '  <Choices name="smile" toName="image" choice="single" required="true">',
             '    <Choice value="Smile"/>', '    <Choice value="No smile"/>', '  </Choices>']
    if expressions:
        parts += ['  <Header value="Which expression is it?"/>',
                  '  <Choices name="expression" toName="image" choice="single">']
        parts += [f'    <Choice value="{e}"/>' for e in BASIC_EXPRESSIONS]
        parts += ['  </Choices>']
    return "\n".join([*parts, '</View>']) + "\n"


class IdentityGate:
    """Re-measures every surrogate against its original's descriptor at export time: the
    stored metrics are not trusted, and a candidate whose face cannot be found is refused
    too, since its distance cannot be checked."""

    def __init__(self, analyzer) -> None:
        self.analyzer = analyzer

    def check(self, face: FaceRecord, rgb: np.ndarray) -> str | None:
        if face.descriptor is None:
            return "the original has no identity descriptor"
        seen = largest_face(self.analyzer.analyze(rgb).faces)
        if seen is None or seen.descriptor is None:
            return "no face found in the surrogate, so its identity cannot be checked"
        d = identity_distance(face.descriptor, seen.descriptor)
        if d < SAME_PERSON_THRESHOLD:
            return f"identity distance {d:.2f} < {SAME_PERSON_THRESHOLD} (same person)"
        return None


def _item_id(taken: set[str]) -> str:
    while (new := secrets.token_hex(6)) in taken:
        pass
    taken.add(new)
    return new


def export_batch(workspace: Workspace, out_dir: str | Path, analyzer,
                 formats: tuple[str, ...] = FORMATS, base_url: str = "",
                 mapping: str | Path | None = None, truth: dict[str, bool] | None = None,
                 gold: int = 0, repeats: int = 0, expressions: bool = False,
                 seed: int | None = None) -> ExportReport:
    out_dir = Path(out_dir).resolve()
    mapping = Path(mapping).resolve() if mapping else out_dir.with_name(
        out_dir.name + ".private-mapping.csv")
    for f in formats:
        if f not in FORMATS:
            raise ExportError(f"unknown format {f!r}; use {', '.join(FORMATS)}")
    if "mturk" in formats and not base_url:
        raise ExportError("--base-url is needed for mturk.csv: where the images will be "
                          "served from, e.g. https://example.org/batch1/")
    if out_dir.exists():
        raise ExportError(f"{out_dir} already exists; choose a new folder (exports never "
                          "overwrite)")
    if mapping.exists():
        raise ExportError(f"the private mapping {mapping} already exists")
    if out_dir in mapping.parents:
        raise ExportError("the private mapping must not be inside the export folder")
    if gold and not truth:
        raise ExportError("gold items need known labels: pass --truth T.csv")

    accepted = workspace.candidates(decision="accepted")
    faces = {f.id: f for f in workspace.faces()}
    gate = IdentityGate(analyzer)
    rng = np.random.default_rng(seed)
    report = ExportReport(out_dir, mapping)
    rows: list[tuple[dict, bytes]] = []
    taken: set[str] = set()
    ok: list[tuple[Candidate, FaceRecord, bytes]] = []
    for cand in accepted:
        face = faces[cand.face_id]
        png = workspace.image(cand.id)
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        problem = gate.check(face, rgb)
        if problem is not None:
            report.refused.append(f"candidate {cand.id} ({cand.method}, seed {cand.seed}) "
                                  f"of {Path(face.original_path).name} face {face.face_index}"
                                  f": {problem}")
            continue
        ok.append((cand, face, png_bytes(rgb)))

    def add(cand: Candidate, face: FaceRecord, png: bytes, kind: str, label: str = "") -> None:
        rows.append(({"item_id": _item_id(taken), "original_key": face.key,
                      "version": cand.method, "seed": cand.seed, "kind": kind,
                      "gold_label": label, "joy": round(face.attributes.joy, 4),
                      "candidate_id": cand.id, "original_path": face.original_path,
                      "face_index": face.face_index}, png))

    for cand, face, png in ok:
        add(cand, face, png, "item")
    report.items = len(rows)
    known = [x for x in ok if truth and x[1].key in truth]
    for i in rng.permutation(len(known))[:gold]:
        cand, face, png = known[i]
        add(cand, face, png, "gold", "smile" if truth[face.key] else "no_smile")
        report.gold += 1
    for i in rng.permutation(len(ok))[:repeats]:
        add(*ok[i], "repeat")
        report.repeats += 1
    if not rows:
        raise ExportError("nothing to export: no accepted candidate passed the identity gate"
                          if accepted else "nothing to export: no candidate is accepted yet")
    order = rng.permutation(len(rows))  # workers never see originals or versions grouped
    rows = [rows[i] for i in order]

    tmp = out_dir.with_name(f".{out_dir.name}.partial-{secrets.token_hex(3)}")
    tmp_map = mapping.with_name(f".{mapping.name}.partial")
    try:
        (tmp / "images").mkdir(parents=True)
        for row, png in rows:
            (tmp / "images" / f"{row['item_id']}.png").write_bytes(png)
        base = base_url.rstrip("/") + "/" if base_url else ""
        urls = [f"{base}images/{row['item_id']}.png" for row, _ in rows]
        if "mturk" in formats:
            with (tmp / "mturk.csv").open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["image_url"])
                w.writerows([u] for u in urls)
        if "labelstudio" in formats:
            tasks = [{"data": {"image": u, "item_id": row["item_id"]}}
                     for u, (row, _) in zip(urls, rows, strict=True)]
            (tmp / "labelstudio_tasks.json").write_text(json.dumps(tasks, indent=1),
                                                        encoding="utf-8")
            (tmp / "labelstudio_config.xml").write_text(label_studio_config(expressions),
                                                        encoding="utf-8")
        with tmp_map.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=MAPPING_FIELDS)
            w.writeheader()
            w.writerows(row for row, _ in rows)
        os.replace(tmp_map, mapping)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_map.unlink(missing_ok=True)
        if mapping.exists() and not out_dir.exists():
            mapping.unlink()
        raise
    return report
