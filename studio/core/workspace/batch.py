"""``studio batch``: fill a workspace with every face of a folder and its candidate surrogates.

Resumable: an original whose sha256 is already recorded is skipped, and each original is
committed in one transaction, so a killed run loses at most the photo it was on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.images import list_images, load_image
from studio.core.assets import sha256_of
from studio.core.errors import StudioError
from studio.core.progress import Progress, no_progress
from studio.core.surrogates.making import (
    SURROGATE_METHODS,
    CandidateMaker,
    candidate_seed,
    check_methods,
)
from studio.core.workspace.store import Workspace


@dataclass
class BatchReport:
    originals: int = 0
    skipped_done: int = 0
    unreadable: int = 0
    no_face: int = 0
    faces: int = 0
    candidates: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0


@dataclass
class PhotoResult:
    """One original, analysed and with its candidates made: what a worker hands back."""

    path: Path
    sha256: str
    status: str  # ok | unreadable | no_face | done
    message: str = ""
    size: tuple[int, int] | None = None
    faces: list[tuple[FaceAnalysis, dict[str, list[tuple[int, bytes, dict]]]]] = field(
        default_factory=list)


def process_photo(path: Path, engine, maker: CandidateMaker, done: set[str], candidates: int,
                  methods: tuple[str, ...]) -> PhotoResult:
    """Everything for one photo except writing it down; safe to run in several threads."""
    try:
        sha = sha256_of(path)
    except OSError as exc:
        return PhotoResult(path, "", "unreadable", f"{path}: cannot be read "
                                                   f"({exc.strerror or exc})")
    if sha in done:
        return PhotoResult(path, sha, "done")
    try:
        image = load_image(path)
    except StudioError as exc:
        return PhotoResult(path, sha, "unreadable", str(exc))
    analysis = engine.analyze(image)
    size = (image.rgb.shape[1], image.rgb.shape[0])
    if not analysis.faces:
        return PhotoResult(path, sha, "no_face", "no face found", size)
    result = PhotoResult(path, sha, "ok", "", size)
    for fi, face in enumerate(analysis.faces):
        seeds = [candidate_seed(sha, fi, i) for i in range(candidates)]
        made = {m: [(seed, png, metrics) for seed, (png, metrics) in
                    zip(seeds, maker.make_many(m, image, face, seeds), strict=True)]
                for m in methods}
        result.faces.append((face, made))
    return result


def run_batch(folder: str | Path, workspace: Workspace, engine, candidates: int = 3,
              methods: tuple[str, ...] = SURROGATE_METHODS, progress: Progress | None = None,
              workers: int = 1) -> BatchReport:
    """``workers`` > 1 analyses photos in parallel (the engine needs as many landmarkers);
    the workspace is written from this thread only, one transaction per photo. ``progress``
    hears of every photo, with the faces found so far and the rate."""
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder")
    check_methods(methods)
    progress = progress or no_progress
    maker = CandidateMaker(engine)
    report = BatchReport()
    done = {row[0] for row in workspace.db.execute("SELECT sha256 FROM originals")}
    t0 = time.perf_counter()
    paths = list_images(folder)
    progress(0, len(paths), "photos")

    def work(path: Path) -> PhotoResult:
        return process_photo(path, engine, maker, done, candidates, methods)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for r in pool.map(work, paths):
            report.originals += 1
            if r.status == "done":
                report.skipped_done += 1
                progress(report.originals, len(paths), "photos")
                continue
            if r.status == "unreadable":
                report.unreadable += 1
                report.problems.append(r.message)
                if not r.sha256:
                    progress(report.originals, len(paths), "photos")
                    continue
            with workspace.transaction() as db:
                oid = workspace.add_original(db, str(r.path), r.sha256, r.status, r.message,
                                             r.size)
                if r.status == "no_face":
                    report.no_face += 1
                for fi, (face, made) in enumerate(r.faces):
                    face_id = workspace.add_face(db, oid, fi, face)
                    report.faces += 1
                    for method, rows in made.items():
                        for seed, png, metrics in rows:
                            workspace.add_candidate(db, face_id, method, seed, face.attributes,
                                                    metrics, png)
                            report.candidates += 1
            report.seconds = time.perf_counter() - t0
            progress(report.originals, len(paths), f"photos: {report.faces} faces, "
                     f"{report.faces_per_second:.1f} faces/s")
    report.seconds = time.perf_counter() - t0
    return report
