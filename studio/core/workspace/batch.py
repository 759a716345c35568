"""``studio batch``: fill a workspace with every face of a folder and its candidate surrogates.

Resumable: an original whose sha256 is already recorded is skipped, and each original is
committed in one transaction, so a killed run loses at most the photo it was on.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.images import SUPPORTED_SUFFIXES, load_image
from studio.core.assets import sha256_of
from studio.core.errors import StudioError
from studio.core.metrics.comparison import Comparison
from studio.core.workspace.store import Workspace

METHODS = ("gan", "3d")
#: The size every exported surrogate has: GAN faces are upscaled to it, 3D renders drawn at it.
EXPORT_SIZE = 256


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


def list_images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in SUPPORTED_SUFFIXES), key=lambda p: str(p).lower())


def png_bytes(rgb: np.ndarray, size: int | None = None) -> bytes:
    """A fresh PNG with no metadata (nothing of the original travels with it)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def candidate_metrics(original: FaceAnalysis, comparison: Comparison) -> dict:
    """What the curation view filters on: identity distance and expression kept."""
    seen = comparison.surrogate
    if seen is None:
        return {"found": False, "distance": None, "smile_kept": None}
    a, b = original.attributes, seen.attributes
    return {"found": True, "distance": comparison.distance, "smile_kept": comparison.smile_kept,
            "joy": b.joy, "yaw": b.yaw, "pitch": b.pitch, "roll": b.roll,
            "d_joy": b.joy - a.joy, "d_yaw": b.yaw - a.yaw, "d_pitch": b.pitch - a.pitch,
            "d_roll": b.roll - a.roll}


def candidate_seed(sha256: str, face_index: int, i: int) -> int:
    """Deterministic per face, so a resumed or repeated run makes the same candidates."""
    return (int(sha256[:8], 16) + 7919 * face_index + 104729 * i) % 1_000_000 + 1


def batch_engine(workers: int):
    """An engine for ``run_batch`` with ``workers`` photos in flight: one landmarker each,
    and torch's threads shared out so that the workers do not oversubscribe the cores."""
    import os

    import torch

    from studio.core.surrogates.engine import SurrogateEngine

    workers = max(1, workers)
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
    engine = SurrogateEngine(staged=True, landmarkers=workers)
    engine.load_generation()
    return engine


def surrogate_images(engine, method: str, image, face: FaceAnalysis, seeds: list[int]
                     ) -> list[np.ndarray]:
    """A face's GAN or 3D surrogates, one per identity seed, from its own estimate."""
    if method == "gan":
        from studio.core.generator.latent import z_for_seed

        z = np.stack([z_for_seed(s) for s in seeds])
        return list(engine.generator.sample(face.attributes, z=z))
    if method == "3d":
        from studio.core.morphable.surrogate import Request3D

        return [engine.surrogate3d(image, face, Request3D(identity=s, size=EXPORT_SIZE)).image
                for s in seeds]
    raise StudioError(f"unknown method {method!r}; use gan or 3d")


class CandidateMaker:
    """Makes and measures candidates of either method for a face; the engine's models are
    loaded once, and a face's candidates are generated and measured as one batch."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def make(self, method: str, image, face: FaceAnalysis, seed: int) -> tuple[bytes, dict]:
        return self.make_many(method, image, face, [seed])[0]

    def make_many(self, method: str, image, face: FaceAnalysis, seeds: list[int]
                  ) -> list[tuple[bytes, dict]]:
        from studio.core.metrics.comparison import compare_many

        engine = self.engine
        rgbs = surrogate_images(engine, method, image, face, seeds)
        comparisons = compare_many(engine.analyzer, face, rgbs)
        return [(png_bytes(rgb), candidate_metrics(face, c))
                for rgb, c in zip(rgbs, comparisons, strict=True)]


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
              methods: tuple[str, ...] = METHODS, progress: bool = True,
              workers: int = 1) -> BatchReport:
    """``workers`` > 1 analyses photos in parallel (the engine needs as many landmarkers);
    the workspace is written from this thread only, one transaction per photo."""
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder")
    for m in methods:
        if m not in METHODS:
            raise StudioError(f"unknown method {m!r}; use {', '.join(METHODS)}")
    maker = CandidateMaker(engine)
    report = BatchReport()
    done = {row[0] for row in workspace.db.execute("SELECT sha256 FROM originals")}
    t0 = time.perf_counter()
    paths = list_images(folder)
    bar = tqdm(total=len(paths), desc="photos", unit="photo", disable=not progress)

    def work(path: Path) -> PhotoResult:
        return process_photo(path, engine, maker, done, candidates, methods)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for r in pool.map(work, paths):
            bar.update(1)
            report.originals += 1
            if r.status == "done":
                report.skipped_done += 1
                continue
            if r.status == "unreadable":
                report.unreadable += 1
                report.problems.append(r.message)
                if not r.sha256:
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
            bar.set_postfix_str(f"{report.faces} faces, {report.faces_per_second:.1f} faces/s")
    bar.close()
    report.seconds = time.perf_counter() - t0
    return report
