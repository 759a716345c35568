"""``studio batch``: fill a workspace with every face of a folder and its candidate surrogates.

Resumable: an original whose sha256 is already recorded is skipped, and each original is
committed in one transaction, so a killed run loses at most the photos it was on. Originals
are known by their bytes: identical files are analysed once and reported as duplicates, and
every path they were found at is kept. Paths are stored absolute, so the workspace works
from any folder.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.images import SUPPORTED_NAMES, ImageListing, load_image, scan_images
from studio.core.assets import sha256_of
from studio.core.errors import ImageLoadError, StudioError
from studio.core.progress import Progress, no_progress
from studio.core.surrogates.making import CandidateMaker, candidate_seed, check_methods
from studio.core.surrogates.registry import BATCH_DEFAULTS
from studio.core.workspace.store import Workspace


@dataclass
class BatchReport:
    originals: int = 0  # photo files handled, duplicates included
    skipped_done: int = 0
    unreadable: int = 0  # this run's, and those recorded by an earlier run of this folder
    no_face: int = 0  # likewise
    faces: int = 0
    candidates: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    #: (path, path of the identical original it is a copy of): analysed once, both kept
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: deaths of the analysing process survived by ``guard.guarded_batch``
    crashes: list[str] = field(default_factory=list)

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0

    @property
    def inputs_failed(self) -> int:
        """Photos that could not be read or show no face: ``studio batch`` then exits 1."""
        return self.unreadable + self.no_face


@dataclass
class PhotoResult:
    """One original, analysed and with its candidates made: what a worker hands back."""

    path: Path
    sha256: str
    status: str  # ok | unreadable | no_face | failed (not recorded: tried again next run)
    message: str = ""
    size: tuple[int, int] | None = None
    faces: list[tuple[FaceAnalysis, dict[str, list[tuple[int, bytes, dict]]]]] = field(
        default_factory=list)


def batch_photos(folder: str | Path) -> ImageListing:
    """The photos ``studio batch`` would take from ``folder`` (absolute paths), and the
    files named like photos that it sets aside (a FIFO, a device), or a StudioError when
    there are no photos: checked before any workspace is created."""
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder" if folder.exists()
                          else f"there is no folder {folder}")
    try:
        listing = scan_images(folder)
    except OSError as exc:
        raise StudioError(f"cannot list {folder} ({exc.strerror or exc})") from exc
    if not listing.images:
        raise StudioError(f"{folder} holds no photos ({SUPPORTED_NAMES})")
    return listing


def process_photo(path: Path, sha: str, engine, maker: CandidateMaker, candidates: int,
                  methods: tuple[str, ...]) -> PhotoResult:
    """Everything for one photo except writing it down; safe to run in several threads.
    A failure of the photo's own (unexpected by the analysis) is handed back, not raised,
    so that one photo cannot stop the batch; a StudioError about the set-up (models,
    rendering) still stops it, since every photo would fail alike."""
    try:
        image = load_image(path)
    except ImageLoadError as exc:
        return PhotoResult(path, sha, "unreadable", str(exc))
    try:
        analysis = engine.analyze(image)
        size = (image.rgb.shape[1], image.rgb.shape[0])
        note = f" ({image.note})" if image.note else ""  # e.g. only the first frame read
        if not analysis.faces:
            why = (f"{len(analysis.unfitted)} face(s) found, none could be fitted"
                   if analysis.unfitted else "no face found")
            return PhotoResult(path, sha, "no_face", f"{why}{note}", size)
        unfitted = (f"{len(analysis.unfitted)} face(s) found but not fitted: masked in "
                    "every in-context candidate" if analysis.unfitted else "")
        result = PhotoResult(path, sha, "ok", "; ".join(filter(None, (image.note, unfitted))),
                             size)
        # Both recognizers' descriptors are stored, so that the export's gate need not read
        # the original again (the read-back would take the second one anyway).
        faces = engine.analyzer.describe2(image.rgb, analysis.faces)
        for fi, face in enumerate(faces):
            seeds = [candidate_seed(sha, fi, i) for i in range(candidates)]
            others = [f for f in faces if f is not face] + list(analysis.unfitted)
            made = {m: [(seed, png, metrics) for seed, (png, metrics) in
                        zip(seeds, maker.make_many(m, image, face, seeds, others),
                            strict=True)]
                    for m in methods}
            result.faces.append((face, made))
        return result
    except StudioError:
        raise
    except Exception as exc:  # recorded against the photo; the run goes on
        return PhotoResult(path, sha, "failed", f"{path}: could not be analysed "
                                                f"({type(exc).__name__}: {exc})")


#: ``watch(event, path, faces, candidates)``: "start" when a photo is handed to a worker,
#: "end" once it is written down. A supervisor (``guard``) learns from it which photos were
#: in flight when the process died.
Watch = Callable[[str, str, int, int], None]


class _Run:
    """The writing side of a batch: the main thread's bookkeeping, one photo at a time."""

    def __init__(self, workspace: Workspace, total: int, progress: Progress,
                 watch: Watch | None) -> None:
        self.ws, self.total, self.progress, self.watch = workspace, total, progress, watch
        self.report = BatchReport()
        self.known = workspace.known_originals()  # sha -> (id, status, message)
        self.first_path: dict[str, str] = {}  # sha -> path, this run's originals
        self.waiting: dict[str, list[str]] = {}  # copies whose original is not written yet
        self.t0 = time.perf_counter()

    def tick(self) -> None:
        self.report.originals += 1
        self.report.seconds = time.perf_counter() - self.t0
        r = self.report
        self.progress(r.originals, self.total, f"photos: {r.faces} faces, "
                      f"{r.faces_per_second:.1f} faces/s")

    def unreadable(self, message: str) -> None:
        self.report.unreadable += 1
        self.report.problems.append(message)
        self.tick()

    def seen(self, path: Path, sha: str) -> bool:
        """True when ``sha`` is already recorded or on its way: a photo done by an earlier
        run, or a copy of another file. Records the path either way."""
        p = str(path)
        if sha in self.first_path:  # a copy of a photo of this run
            self.report.duplicates.append((p, self.first_path[sha]))
            if sha in self.known:
                with self.ws.transaction() as db:
                    self.ws.add_path(db, self.known[sha][0], p)
            else:
                self.waiting.setdefault(sha, []).append(p)
            self.tick()
            return True
        if sha not in self.known:
            self.first_path[sha] = p
            return False
        oid, status, message = self.known[sha]
        paths = self.ws.paths_of(oid)
        elsewhere = next((q for q in paths if q != p and os.path.isfile(q)), None)
        moved = p not in paths and elsewhere is None  # the folder moved: follow it
        if p not in paths and elsewhere is not None:
            self.report.duplicates.append((p, elsewhere))
        else:  # done by an earlier run (perhaps from where the folder used to be)
            self.report.skipped_done += 1
            if status == "unreadable":
                self.report.unreadable += 1
                self.report.problems.append(f"{message} (recorded by an earlier run)")
            elif status == "no_face":
                self.report.no_face += 1
                self.report.problems.append(f"{p}: no face found (recorded by an earlier run)")
        if p not in paths:
            with self.ws.transaction() as db:
                self.ws.add_path(db, oid, p, primary=moved)
        self.first_path[sha] = p if moved or not paths else paths[0]
        self.tick()
        return True

    def write(self, r: PhotoResult) -> None:
        """Write one analysed photo down, then tell ``watch`` (before ``progress``)."""
        faces, candidates = self.report.faces, self.report.candidates
        self._write(r)
        if self.watch:
            self.watch("end", str(r.path), self.report.faces - faces,
                       self.report.candidates - candidates)
        self.tick()

    def _write(self, r: PhotoResult) -> None:
        if r.status == "failed":
            self.report.problems.append(r.message)
            self.report.unreadable += 1
            for copy in self.waiting.pop(r.sha256, []):
                self.report.problems.append(f"{copy}: not recorded, as its identical "
                                            f"{r.path.name} could not be analysed")
            return
        ws = self.ws
        with ws.transaction() as db:
            oid = ws.add_original(db, str(r.path), r.sha256, r.status, r.message, r.size)
            for copy in self.waiting.pop(r.sha256, []):
                ws.add_path(db, oid, copy)
            for fi, (face, made) in enumerate(r.faces):
                face_id = ws.add_face(db, oid, fi, face)
                self.report.faces += 1
                for method, rows in made.items():
                    for seed, png, metrics in rows:
                        ws.add_candidate(db, face_id, method, seed, face.attributes,
                                         metrics, png)
                        self.report.candidates += 1
        self.known[r.sha256] = (oid, r.status, r.message)
        if r.status == "unreadable":
            self.report.unreadable += 1
            self.report.problems.append(r.message)
        elif r.status == "no_face":
            self.report.no_face += 1
            self.report.problems.append(f"{r.path}: {r.message}")
        elif r.message:  # a note on what was read, e.g. one frame of an animation
            self.report.problems.append(f"{r.path}: {r.message}")


def start_run(folder: str | Path, workspace: Workspace, methods: tuple[str, ...],
              progress: Progress | None, watch: Watch | None = None
              ) -> tuple[_Run, list[Path]]:
    """What every batch does first, the plain one and ``scale.ray_batch``: the folder's
    photos (a StudioError when none), the methods checked, the writer made, the files set
    aside by the listing reported, and progress told the total."""
    listing = batch_photos(folder)
    paths = listing.images
    check_methods(methods)
    progress = progress or no_progress
    run = _Run(workspace, len(paths), progress, watch)
    run.report.problems += [f"{path}: set aside, {why}" for path, why in listing.skipped]
    run.report.unreadable += len(listing.skipped)  # the researcher expected them read
    progress(0, len(paths), "photos")
    return run, paths


def to_do(run: _Run, paths: list[Path]) -> Iterator[tuple[Path, str]]:
    """Each photo still to analyse, with its sha256: those done by an earlier run, copies
    and unreadable files are recorded by ``run`` and left out."""
    for path in paths:
        try:
            sha = sha256_of(path)
        except OSError as exc:
            run.unreadable(f"{path}: cannot be read ({exc.strerror or exc})")
            continue
        if not run.seen(path, sha):
            yield path, sha


def run_batch(folder: str | Path, workspace: Workspace, engine, candidates: int = 3,
              methods: tuple[str, ...] = BATCH_DEFAULTS, progress: Progress | None = None,
              workers: int = 1, watch: Watch | None = None,
              alone: Collection[str] = ()) -> BatchReport:
    """``workers`` > 1 analyses photos in parallel (the engine needs as many landmarkers);
    the workspace is written from this thread only, one transaction per photo, and no more
    than two photos per worker wait in memory. ``progress`` hears of every photo, with the
    faces found so far and the rate. The paths in ``alone`` are analysed with no other
    photo in flight: suspects of a crash, so that a second crash names the culprit."""
    run, paths = start_run(folder, workspace, methods, progress, watch)
    maker = CandidateMaker(engine)
    workers = max(1, workers)
    window: deque[Future[PhotoResult]] = deque()

    def write_oldest() -> None:
        run.write(window.popleft().result())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for path, sha in to_do(run, paths):
                by_itself = str(path) in alone
                while window and (by_itself or len(window) >= 2 * workers):
                    write_oldest()
                if watch:
                    watch("start", str(path), 0, 0)
                window.append(pool.submit(process_photo, path, sha, engine, maker,
                                          candidates, methods))
                if by_itself:
                    write_oldest()
            while window:
                write_oldest()
        finally:
            for future in window:
                future.cancel()
    return run.report  # its seconds were taken at the last photo, as progress heard them
