"""``studio export``: accepted surrogates as an annotation batch for crowd workers.

OUT_DIR gets only what workers may see: PNGs named by random item ids (no metadata, no
original pixels, no file names) and the task files. Which item came from which original,
method and seed goes to a separate private mapping file outside OUT_DIR, readable by its
owner only. The folder is written under a temporary name and renamed at the end, so a failed
export leaves nothing half-written, and an existing folder is never overwritten. Every place
written to is checked before the identity gate, which is the slow part.

An item shown twice (a repeat, or a gold item) is a fresh encoding of the same picture: a
worker must not spot repeats by comparing files.
"""

from __future__ import annotations

import csv
import hashlib
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
from studio.core.assets import check_writable_dir
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


def check_export(out_dir: str | Path, mapping: str | Path | None = None,
                 formats: tuple[str, ...] = FORMATS, base_url: str = "",
                 gold: int = 0, truth: dict[str, bool] | None = None) -> tuple[Path, Path]:
    """Everything about an export that can be wrong before any work: the options, and the
    places it will write to. Returns the export folder and the mapping, absolute."""
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
    try:
        check_writable_dir(out_dir.parent, "the export folder")
        check_writable_dir(mapping.parent, "the private mapping")
    except StudioError as exc:
        raise ExportError(str(exc)) from exc
    return out_dir, mapping


def _border_pixels(h: int, w: int, n: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pixels within a twelfth of the image from its edges: background."""
    depth = rng.integers(0, max(1, min(h, w) // 12), n)
    side = rng.integers(0, 4, n)  # top, bottom, left, right
    ys_along, xs_along = rng.integers(0, h, n), rng.integers(0, w, n)
    ys = np.choose(side, [depth, h - 1 - depth, ys_along, ys_along])
    xs = np.choose(side, [xs_along, xs_along, depth, w - 1 - depth])
    return ys, xs


def distinct_png(png: bytes, rng: np.random.Generator, taken: set[bytes]) -> bytes:
    """The same picture in other bytes, for a second showing: eight pixels of the border
    (background, away from the face) moved by one level of 255 and another PNG compression
    level, until its sha256 is new. Neither a file hash nor a pixel hash matches."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w, _ = rgb.shape
    while True:
        out = rgb.copy()
        ys, xs = _border_pixels(h, w, 8, rng)
        cs = rng.integers(0, 3, len(ys))
        v = out[ys, xs, cs].astype(np.int16)
        step = np.where(v >= 255, -1, np.where(v <= 0, 1, rng.choice([-1, 1], len(v))))
        out[ys, xs, cs] = (v + step).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "PNG", compress_level=int(rng.integers(1, 10)))
        data = buf.getvalue()
        digest = hashlib.sha256(data).digest()
        if digest not in taken:
            taken.add(digest)
            return data


def export_batch(workspace: Workspace, out_dir: str | Path, analyzer,
                 formats: tuple[str, ...] = FORMATS, base_url: str = "",
                 mapping: str | Path | None = None, truth: dict[str, bool] | None = None,
                 gold: int = 0, repeats: int = 0, expressions: bool = False,
                 seed: int | None = None) -> ExportReport:
    out_dir, mapping = check_export(out_dir, mapping, formats, base_url, gold, truth)
    accepted = workspace.candidates(decision="accepted")
    faces = {f.id: f for f in workspace.faces()}
    gate = IdentityGate(analyzer)
    rng = np.random.default_rng(seed)
    report = ExportReport(out_dir, mapping)
    rows: list[tuple[dict, bytes]] = []
    taken: set[str] = set()
    ok: list[tuple[Candidate, FaceRecord, bytes]] = []
    for cand in accepted:
        face = faces.get(cand.face_id)
        if face is None:  # a workspace recovered from damage may have lost it
            report.refused.append(f"candidate {cand.id} ({cand.method}, seed {cand.seed}): "
                                  "its face's record is missing, so it cannot be checked")
            continue
        try:
            rgb = np.asarray(Image.open(io.BytesIO(workspace.image(cand.id))).convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:  # what PIL raises on a bad PNG
            rgb, problem = None, f"its stored image is damaged ({exc})"
        else:
            problem = gate.check(face, rgb)
        if problem is not None or rgb is None:
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
    hashes = {hashlib.sha256(png).digest() for _, png in rows}
    known = [x for x in ok if truth and x[1].key in truth]
    for i in rng.permutation(len(known))[:gold]:
        cand, face, png = known[i]
        add(cand, face, distinct_png(png, rng, hashes), "gold",
            "smile" if truth[face.key] else "no_smile")
        report.gold += 1
    for i in rng.permutation(len(ok))[:repeats]:
        cand, face, png = ok[i]
        add(cand, face, distinct_png(png, rng, hashes), "repeat")
        report.repeats += 1
    if not rows:
        raise ExportError("nothing to export: no accepted candidate passed the identity gate"
                          if accepted else "nothing to export: no candidate is accepted yet")
    order = rng.permutation(len(rows))  # workers never see originals or versions grouped
    rows = [rows[i] for i in order]

    token = secrets.token_hex(3)
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{token}")
    tmp_map = mapping.with_name(f".{mapping.name}.partial-{token}")
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
        fd = os.open(tmp_map, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # owner only
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=MAPPING_FIELDS)
            w.writeheader()
            w.writerows(row for row, _ in rows)
        os.replace(tmp_map, mapping)
        tmp.rename(out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_map.unlink(missing_ok=True)
        if mapping.exists() and not out_dir.exists():
            mapping.unlink()
        if isinstance(exc, OSError):  # a full disk, a folder gone read-only meanwhile...
            raise ExportError(f"could not write the export ({exc.strerror or exc}"
                              f"{': ' + str(exc.filename) if exc.filename else ''}); nothing "
                              "was left behind") from exc
        raise
    return report
