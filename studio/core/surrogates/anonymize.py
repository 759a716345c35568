"""``studio anonymize``: every face of whole photos replaced, one metadata-free PNG each.

The one-liner of deface and DeepPrivacy2. Each photo or folder given (folders searched
recursively) yields one PNG at the photo's own resolution with every face replaced: in the
photo (``context``), by a 3D or GAN surrogate drawn in the face's crop and put back into
the photo, or by a naive method at its strong setting (blur, pixelation, a black mask).
Outputs keep the input's relative path and stem, or, with neutral names, get random ids,
and which output came from which original goes to a private mapping (owner only) outside
the output folder. Originals are only read; no existing file is ever overwritten; a photo
that cannot be read or shows no face is reported and the run goes on.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.analysis.images import load_image
from studio.core.analysis.search_settings import UNFITTED_POLICIES
from studio.core.assets import check_writable_dir, clean_partials, folder_lock
from studio.core.errors import ImageLoadError, StudioError, shown
from studio.core.progress import Progress, no_progress
from studio.core.surrogates import compositing
from studio.core.surrogates.anonymize_files import (
    MAPPING_FIELDS,
    AnonymizeError,
    Job,
    Mapping,
    check_mapping,
    named,
    plan_inputs,
    write_new,
)
from studio.core.surrogates.making import png_bytes
from studio.core.surrogates.privacy import DEFAULT_PRIVACY, privacy_preset
from studio.core.surrogates.registry import DEFAULT_ANONYMIZE, REGISTRY
from studio.core.surrogates.unfitted import check_policy
from studio.core.surrogates.whole_photo import (
    anonymize_engine,
    photo_seed,
    replace_faces,
    small_blas,
)

__all__ = ["MAPPING_FIELDS", "AnonymizeError", "AnonymizeReport", "anonymize", "check_options"]


@dataclass
class AnonymizeReport:
    """What a run did; ``messages`` has a line for each input not written (and why) and for
    each written one with something to say (a face too small, and so blurred)."""

    out_dir: Path
    method: str
    mapping: Path | None = None
    written: list[Path] = field(default_factory=list)  # the outputs
    made_from: dict[Path, Path] = field(default_factory=dict)  # output -> its input
    skipped_existing: list[Path] = field(default_factory=list)  # the inputs
    no_face: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)  # read, but could not be processed
    faces_replaced: int = 0  # by the method asked for
    faces_blurred: int = 0  # too small for it: blurred instead
    faces_masked: int = 0  # found but not fitted: masked (--unfitted mask)
    faces_unhandled: int = 0  # left unchanged by the method: masked by the last check
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def faces_found(self) -> int:
        return self.faces_replaced + self.faces_blurred + self.faces_masked

    @property
    def inputs_failed(self) -> int:
        """Inputs with no new output, or with a face the method left unchanged (masked
        then): ``studio anonymize`` then exits 1."""
        return (len(self.skipped_existing) + len(self.no_face) + len(self.unreadable)
                + len(self.failed) + self.faces_unhandled)

    @property
    def photos_per_second(self) -> float:
        return len(self.written) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Settings:
    """What every photo of a run is done with."""

    method: str
    seed: int
    context: str
    unfitted: str = UNFITTED_POLICIES[0]
    privacy: str = DEFAULT_PRIVACY


@dataclass
class _Outcome:
    job: Job
    status: str  # ok | unreadable | no_face | failed
    message: str = ""
    png: bytes = b""
    replaced: int = 0
    blurred: int = 0
    masked: int = 0
    unhandled: int = 0
    #: Notes that hold for the whole run (``SurrogateEngine.run_notes``): said once in the
    #: report, not once per photo.
    run_notes: tuple[str, ...] = ()


def check_options(method: str, context: str | None, privacy: str | None = None
                  ) -> tuple[str, str]:
    """The method's, context's and privacy preset's usage errors, before any model loads;
    returns the context and the preset's name."""
    choices = REGISTRY.anonymize_choices()
    if method not in choices:
        raise AnonymizeError(f"unknown method {method!r}; use {', '.join(choices)}")
    takes_context = REGISTRY.for_anonymize(method).takes_context
    in_photo = ", ".join(s.key for s in REGISTRY if s.anonymize and s.takes_context)
    if context is not None and not takes_context:
        raise AnonymizeError(f"--context is for the methods that replace the face in its "
                             f"photo: {in_photo}")
    try:
        preset = privacy_preset(privacy)
    except StudioError as exc:
        raise AnonymizeError(str(exc)) from None
    if preset.name != DEFAULT_PRIVACY and not takes_context:
        raise AnonymizeError(f"--privacy {preset.name} is for the methods that replace the "
                             f"face in its photo: {in_photo}")
    if preset.context != "keep" and context not in (None, preset.context):
        raise AnonymizeError(f"--privacy {preset.name} blurs the context: leave out "
                             f"--context {context}")
    context = context or preset.context
    if context not in compositing.CONTEXTS:
        raise AnonymizeError(f"context must be one of {', '.join(compositing.CONTEXTS)}, "
                             f"not {context!r}")
    return context, preset.name


def _process(job: Job, engine, run: _Settings) -> _Outcome:
    """One photo, short of writing it: safe to run in several threads. A failure of the
    photo's own is handed back; a StudioError (models, rendering) stops the run, since
    every photo would fail alike."""
    try:
        image = load_image(job.source)
    except ImageLoadError as exc:  # its message starts with the name or the path
        why = str(exc).removeprefix(f"{job.source}: ").removeprefix(f"{job.source.name}: ")
        return _Outcome(job, "unreadable", f"{shown(job.source)}: {why} Nothing written.")
    try:
        analysis = engine.analyze(image)
        if not analysis.found:
            return _Outcome(job, "no_face", f"{shown(job.source)}: no face found; "
                                           "nothing written")
        done = replace_faces(engine, image, analysis.faces, run.method,
                             photo_seed(run.seed, image.rgb), run.context, analysis.unfitted,
                             run.unfitted, run.privacy)
        wide = engine.run_notes()
        notes = [n for n in (*analysis.notes, *done.notes) if n and n not in wide]
        message = f"{shown(job.source)}: {'; '.join(notes)}" if notes else ""
        return _Outcome(job, "ok", message, png_bytes(done.image, None), done.replaced,
                        done.blurred, done.masked, done.unhandled,
                        tuple(n for n in done.notes if n in wide))
    except StudioError:
        raise
    except Exception as exc:  # recorded against the photo; the run goes on
        return _Outcome(job, "failed", f"{shown(job.source)}: could not be anonymised "
                                       f"({type(exc).__name__}: {exc}); nothing written")


def _outcomes(jobs: list[Job], engine, run: _Settings, workers: int) -> Iterator[_Outcome]:
    """Each job's outcome in order; up to ``workers`` photos in flight."""
    if workers <= 1:
        for job in jobs:
            yield _process(job, engine, run)
        return
    with ThreadPoolExecutor(workers) as pool:
        queue: deque[Future[_Outcome]] = deque()
        todo = iter(jobs)
        for job in todo:
            queue.append(pool.submit(_process, job, engine, run))
            if len(queue) >= 2 * workers:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def anonymize(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
              method: str = DEFAULT_ANONYMIZE, seed: int | None = None, context: str | None = None,
              neutral_names: bool = False, mapping: str | os.PathLike[str] | None = None,
              progress: Progress | None = None, engine=None, workers: int = 1,
              ray: str | None = None, unfitted: str = UNFITTED_POLICIES[0],
              min_face: float | None = None, privacy: str | None = None) -> AnonymizeReport:
    """Every face of every photo in ``inputs`` replaced by ``method``, one PNG each under
    ``out_dir``. ``seed`` None draws the run's identities at random. ``engine``: a loaded
    ``SurrogateEngine`` to reuse (else one is made for ``method`` and closed at the end).
    ``ray``: the photos are replaced by Ray workers (``scale``), on a Ray started here
    ("local", ``workers`` CPUs) or on the cluster at that address; this process still
    writes every file. Faces found but not fitted are masked or blurred (``unfitted``);
    faces are looked for down to ``min_face`` pixels (``analysis.detector``). ``privacy``:
    the in-context method's preset (``surrogates.privacy``; None: the default)."""
    context, privacy = check_options(method, context, privacy)
    check_policy(unfitted)
    inputs = list(inputs)
    out = Path(os.path.abspath(out_dir))
    if mapping is not None and not neutral_names:
        raise AnonymizeError("--mapping goes with --neutral-names (without them the outputs "
                             "keep their names and there is nothing to map)")
    check_writable_dir(out, "the anonymised photos")
    map_path = check_mapping(out.resolve(), mapping) if neutral_names else None
    jobs, refused = plan_inputs(inputs, out.resolve())
    report = AnonymizeReport(out, method, map_path)
    for path, why in refused:
        report.unreadable.append(path)
        report.messages.append(f"{shown(path)}: {why}; nothing written")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:  # one run at a time per folder: a second would make every output again
        with folder_lock(out, "studio anonymize"):
            clean_partials(out, recursive=True)  # what a killed run was writing
            book = Mapping(map_path) if map_path else None  # a foreign file is refused here
            try:
                seed = secrets.randbelow(1_000_000) + 1 if seed is None else seed
                _run_all(jobs, out, book, report, progress, engine,
                         _Settings(method, seed, context, unfitted, privacy), workers, ray,
                         min_face)
            finally:
                if book is not None:
                    book.close()
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # nothing was written: no empty folder is left behind
        raise
    return report


def _run_all(jobs: list[Job], out: Path, book: Mapping | None, report: AnonymizeReport,
             progress: Progress | None, engine, run: _Settings, workers: int,
             ray: str | None, min_face: float | None) -> None:
    todo = _skip_done(jobs, out, book, report)
    if not todo:
        return
    if ray is not None:
        with closing(_ray_outcomes(todo, run, ray, workers, min_face)) as done:
            _run(todo, done, book, report, progress)
        return
    workers = max(1, workers)
    with small_blas():
        if engine is None:
            with closing(anonymize_engine(run.method, workers, min_face)) as own:
                _run(todo, _outcomes(todo, own, run, workers), book, report, progress)
        else:
            _run(todo, _outcomes(todo, engine, run, workers), book, report, progress)


def _skip_done(jobs: list[Job], out: Path, book: Mapping | None,
               report: AnonymizeReport) -> list[Job]:
    """The jobs still to do: an output that exists is never overwritten (nor, with neutral
    names, is an original the mapping lists with its output made again)."""
    todo = []
    for job in named(jobs, out) if book is None else jobs:
        if book is not None:
            name = book.done.get(str(job.source))
            exists = name is not None and (out / name).exists()
            target = out / name if name else None
        else:
            target = job.output
            exists = target is not None and target.exists()
        if exists:
            report.skipped_existing.append(job.source)
            report.messages.append(f"{shown(job.source)}: {shown(target)} exists already; "
                                   "skipped, not overwritten (made before this run)")
        else:
            todo.append(job)
    return todo


def _run(jobs: list[Job], outcomes: Iterable[_Outcome], book: Mapping | None,
         report: AnonymizeReport, progress: Progress | None) -> None:
    progress = progress or no_progress
    total, t0 = len(jobs), time.perf_counter()
    faces = 0
    progress(0, total, "photos")
    for done, outcome in enumerate(outcomes, 1):
        _record(outcome, report, book, report.method)
        faces += outcome.replaced + outcome.blurred + outcome.masked
        report.seconds = time.perf_counter() - t0
        progress(done, total, f"photos: {faces} faces, {report.photos_per_second:.1f} photos/s")


class _RayWorker:
    """``studio anonymize --ray``'s worker on one Ray actor: the engine loaded once."""

    def __init__(self, run: _Settings, min_face: float | None) -> None:
        from threadpoolctl import threadpool_limits

        self.blas = threadpool_limits(1, user_api="blas")  # as small_blas, for the actor
        self.run = run
        self.engine = anonymize_engine(run.method, min_face=min_face)

    def __call__(self, item: dict) -> _Outcome:
        return _process(item["job"], self.engine, self.run)

    def close(self) -> None:
        self.engine.close()


def _ray_outcomes(jobs: list[Job], run: _Settings, address: str, workers: int | None,
                  min_face: float | None) -> Iterator[_Outcome]:
    """Each job's outcome from Ray workers, as they finish; a photo that killed its worker
    on every try comes back failed, with nothing written."""
    from functools import partial

    from studio.core.surrogates.scale import TASK_RETRIES, ray_map, ray_session

    with ray_session(address, workers) as n:
        items = [{"path": str(job.source), "job": job} for job in jobs]
        for item, outcome in ray_map(items, partial(_RayWorker, run, min_face),
                                     min(n, len(items))):
            yield outcome if outcome is not None else _Outcome(
                item["job"], "failed", f"{shown(item['path'])}: its Ray worker died on it "
                                       f"{TASK_RETRIES + 1} times; nothing written")


def _record(outcome: _Outcome, report: AnonymizeReport, book: Mapping | None,
            method: str) -> None:
    job = outcome.job
    if outcome.status != "ok":
        getattr(report, outcome.status).append(job.source)
        report.messages.append(outcome.message)
        return
    if book is not None:
        while (target := report.out_dir / f"{secrets.token_hex(8)}.png").exists():
            pass
        book.add(target.name, job.source, method)
    else:
        assert job.output is not None
        target = job.output
    if not write_new(target, outcome.png):  # made meanwhile
        report.skipped_existing.append(job.source)
        origin = report.made_from.get(target)
        whence = (f"written from {shown(origin)} in this run" if origin
                  else "made meanwhile by another program")
        report.messages.append(f"{shown(job.source)}: {shown(target)} exists already; "
                               f"skipped, not overwritten ({whence})")
        return
    report.written.append(target)
    report.made_from[target] = job.source
    report.faces_replaced += outcome.replaced
    report.faces_blurred += outcome.blurred
    report.faces_masked += outcome.masked
    report.faces_unhandled += outcome.unhandled
    report.messages += [n for n in outcome.run_notes if n not in report.messages]
    if outcome.message:
        report.messages.append(outcome.message)
