"""``studio study``: a crowd validation study built from a folder, the way the thesis built its
own (60 GENKI-4K faces x original, GAN and 3D, every one shown to every worker).

Originals are chosen stratified by joy evidence (``crowd.design``); every chosen face gets
each surrogate (GAN, 3D, and the in-context one as a face crop at ``EXPORT_SIZE``), each
read back by the export's identity gate and drawn again with the next seed when it is too
close to the person. The original itself is written only when the researcher says it may
be shown (public or consented data); otherwise the study has no original version, and the
report has no original row. The batch is written as ``studio export`` writes one: images
named by random ids, the task files, and the private mapping (plus a truth sheet to fill
in) beside the folder, never inside it.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.analysis.framing import original_crop
from studio.core.analysis.images import ImageLoadError, load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import sha256_of
from studio.core.crowd.design import (
    FULL_DESIGN_LIMIT,
    StratifiedPicker,
    evidence_of,
    plan_assignment,
)
from studio.core.crowd.formats import ITEM_JOY, VERSIONS
from studio.core.crowd.tables import csv_writer
from studio.core.progress import Progress, no_progress
from studio.core.surrogates.making import EXPORT_SIZE, candidate_seed, png_bytes, surrogate_images
from studio.core.surrogates.privacy import DEFAULT_PRIVACY
from studio.core.surrogates.registry import REGISTRY
from studio.core.workspace.export import (
    FORMATS,
    MAPPING_FIELDS,
    ExportError,
    IdentityGate,
    check_export,
    crowd_formats,
    in_crowd_batch,
    write_batch,
)

#: Seeds tried per surrogate before an original is set aside (the next of its bin is taken).
TRIES = 3
STUDY_FIELDS = [*MAPPING_FIELDS, ITEM_JOY]


@dataclass
class Chosen:
    """One original of the study and the pictures made of it: version -> (seed, png, joy)."""

    path: Path
    key: str  # as a workspace names a face: the photo's sha256[:16]:face index
    face_index: int
    joy: float
    evidence: float
    versions: dict[str, tuple[int | None, bytes, float]] = field(default_factory=dict)


@dataclass
class StudyReport:
    out_dir: Path
    mapping: Path
    truth: Path
    versions: tuple[str, ...]
    chosen: list[Chosen] = field(default_factory=list)
    bins: dict[float, int] = field(default_factory=dict)  # evidence bin -> originals taken
    unusable: list[str] = field(default_factory=list)  # photos without a usable face
    set_aside: list[str] = field(default_factory=list)  # originals no surrogate passed for
    design: str = ""
    workers: int = 0
    per_item: int = 0
    loads: tuple[int, int] = (0, 0)

    @property
    def items(self) -> int:
        return len(self.chosen) * len(self.versions)


def study_versions(originals_may_be_shown: bool) -> tuple[str, ...]:
    """The versions every worker is shown: the original where it may be, and each surrogate
    method at the default privacy preset (the thesis's design; a method registered for
    another preset, ``context-strict``, is a curation and evaluation choice, not the
    study's, and would add a fifth of every worker's load)."""
    return tuple(v for v in VERSIONS if (v == "original" and originals_may_be_shown)
                 or (v in REGISTRY and REGISTRY[v].privacy == DEFAULT_PRIVACY))


def check_study(out_dir: str | Path, m: int, workers: int, formats: tuple[str, ...],
                base_url: str = "", local_root: str | Path | None = None,
                mapping: str | Path | None = None, originals_may_be_shown: bool = False,
                per_item: int | None = None, max_per_worker: int = FULL_DESIGN_LIMIT
                ) -> tuple[Path, Path, Path]:
    """The options and every place written to, before any model is loaded. Returns the
    study folder, the mapping and the truth sheet, absolute."""
    if m < 2:
        raise ExportError("a study needs at least 2 originals (--originals)")
    if workers < 1:
        raise ExportError("--workers must be 1 or more")
    if max_per_worker < 1:
        raise ExportError("--max-per-worker must be 1 or more")
    if per_item is not None and per_item < 1:
        raise ExportError("--per-item must be 1 or more")
    try:  # the plan the study will make, drawn now so that it cannot fail at the end
        plan_assignment(m * len(study_versions(originals_may_be_shown)), workers,
                        np.random.default_rng(0), per_item, max_per_worker)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    formats = crowd_formats(formats)
    if "labelstudio" in formats and not base_url and local_root is None:
        raise ExportError("Label Studio tasks need --base-url (where the images will be served) "
                          "or --local-files-root (Label Studio's LOCAL_FILES_DOCUMENT_ROOT)")
    out, mapping_path = check_export(out_dir, mapping, formats, base_url, local_root=local_root)
    truth = out.with_name(out.name + ".private-truth.csv")
    if truth.exists():
        raise ExportError(f"the truth sheet {truth} already exists")
    return out, mapping_path, truth


def originals_in(photos: list[Path]) -> tuple[list[Path], int]:
    """The photos that may be originals, and how many were left out: the pictures of an
    earlier study (or export) kept inside the photo folder are surrogates and crops of
    originals, never originals themselves."""
    kept = [p for p in photos if not in_crowd_batch(p)]
    return kept, len(photos) - len(kept)


def _pool(photos: list[Path], engine, progress: Progress, report: StudyReport) -> list[tuple]:
    """(path, sha256, image, face, face index, the photo's other faces) for every photo with
    a face and its identity descriptor; the largest face of each."""
    pool = []
    for i, path in enumerate(photos):
        progress(i, len(photos), f"reading {path.name}")
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            report.unusable.append(f"{path}: {exc}")
            continue
        analysis = engine.analyze(image)
        faces = analysis.faces
        face = largest_face(faces)
        if face is None or face.descriptor is None:
            report.unusable.append(f"{path}: no face found" if not analysis.unfitted else
                                   f"{path}: {len(analysis.unfitted)} face(s) found, none "
                                   "could be fitted")
            continue
        pool.append((path, sha256_of(path), image, face, faces.index(face),
                     [f for f in faces if f is not face] + list(analysis.unfitted)))
    progress(len(photos), len(photos), "photos read")
    return pool


def _make(engine, gate: IdentityGate, sha: str, image, face, index: int, others, versions
          ) -> tuple[dict[str, tuple[int | None, bytes, float]], str | None]:
    """Every version of one original, or (partial, why it cannot be used)."""
    made: dict[str, tuple[int | None, bytes, float]] = {}
    (face,) = gate.analyzer.describe2(image.rgb, [face])  # the gate asks both recognizers
    if "original" in versions:
        made["original"] = (None, png_bytes(original_crop(image.rgb, face.landmarks,
                                                          EXPORT_SIZE)), face.attributes.joy)
    for method in (m for m in REGISTRY.candidates() if m in versions):
        problem = ""
        for attempt in range(TRIES):
            seed = candidate_seed(sha, index, attempt)
            rgb = surrogate_images(engine, method, image, face, [seed], others)[0]
            problem, seen = gate.measure(face, rgb)
            if problem is None:
                made[method] = (seed, png_bytes(rgb), seen.attributes.joy)
                break
        else:
            return made, f"{method}: {problem} after {TRIES} seeds"
    return made, None


def build_study(photos: list[Path], out_dir: str | Path, engine, m: int = 60,
                workers: int = 60, formats: tuple[str, ...] = FORMATS, base_url: str = "",
                local_root: str | Path | None = None, mapping: str | Path | None = None,
                originals_may_be_shown: bool = False, per_item: int | None = None,
                max_per_worker: int = FULL_DESIGN_LIMIT, expressions: bool = False,
                seed: int | None = None, progress: Progress | None = None) -> StudyReport:
    """Choose ``m`` originals from ``photos``, make every version, plan who sees what, and
    write the batch. The photos are only read."""
    progress = progress or no_progress
    out, mapping_path, truth = check_study(out_dir, m, workers, formats, base_url, local_root,
                                           mapping, originals_may_be_shown, per_item,
                                           max_per_worker)
    versions = study_versions(originals_may_be_shown)
    report = StudyReport(out, mapping_path, truth, versions)
    photos, _ = originals_in(photos)
    rng = np.random.default_rng(seed)
    pool = _pool(photos, engine, progress, report)
    if len(pool) < m:
        raise ExportError(f"{len(pool)} of {len(photos)} photos have a usable face; the study "
                          f"asks for {m} originals")
    evidence = [float(evidence_of(p[3].attributes.joy)) for p in pool]
    picker = StratifiedPicker(evidence, rng)
    gate = IdentityGate(engine.analyzer)
    while len(report.chosen) < m and (i := picker.next()) is not None:
        progress(len(report.chosen), m, f"making the versions of {pool[i][0].name}")
        path, sha, image, face, index, others = pool[i]
        made, problem = _make(engine, gate, sha, image, face, index, others, versions)
        if problem is not None:
            report.set_aside.append(f"{path}: {problem}")
            continue
        picker.accept(i)
        report.chosen.append(Chosen(path, f"{sha[:16]}:{index}", index, face.attributes.joy,
                                    evidence[i], made))
    progress(len(report.chosen), m, "versions made")
    if len(report.chosen) < m:
        raise ExportError(f"only {len(report.chosen)} originals have every version past the "
                          f"identity gate; the study asks for {m}")
    report.bins = {b: n for b, n in picker.accepted.items() if n}

    rows: list[tuple[dict, bytes]] = []
    taken: set[str] = set()
    for c in report.chosen:
        for version, (s, png, item_joy) in c.versions.items():
            while (item := secrets.token_hex(6)) in taken:
                pass
            taken.add(item)
            rows.append(({"item_id": item, "original_key": c.key, "version": version,
                          "seed": "" if s is None else s, "kind": "item", "gold_label": "",
                          "joy": round(c.joy, 4), "candidate_id": "",
                          "original_path": str(c.path), "face_index": c.face_index,
                          ITEM_JOY: round(item_joy, 4)}, png))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    try:
        plan = plan_assignment(len(rows), workers, rng, per_item, max_per_worker)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    report.design, report.workers, report.per_item = plan.design, plan.workers, plan.per_item
    report.loads = (min(plan.loads), max(plan.loads))
    sheet = io.StringIO()  # the researcher fills label in: smile or no_smile
    writer = csv_writer(sheet)
    writer.writerow(["original_key", "label", "original_path"])
    writer.writerows([c.key, "", str(c.path)] for c in report.chosen)
    write_batch(rows, out, mapping_path, formats, base_url, expressions, local_root,
                fields=STUDY_FIELDS, files={"plan.csv": plan.csv_text([r["item_id"]
                                                                         for r, _ in rows])},
                private={truth: sheet.getvalue()})
    return report

