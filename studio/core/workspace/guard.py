"""A batch that one photo cannot bring down: ``studio batch`` in a child process.

Untrusted photos go through native code (image decoders, MediaPipe, OpenCV); a bug there
can abort the whole process, which Python cannot catch. So the batch runs in a child
process, which tells this one (through a pipe, written synchronously, so nothing is lost
when it dies) which photos it has in flight. When the child dies of a signal, a new one
resumes the workspace (the batch is resumable), first analysing the photos that were in
flight one at a time; a photo that kills the child again, alone, is recorded as
unreadable, with the signal, and skipped from then on. A single kill from outside (the
out-of-memory killer, say) therefore blames no photo. The cost is one process start and
the models loaded once more per crash; a run without a crash is as fast as before.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from studio.core.assets import sha256_of
from studio.core.errors import StudioError
from studio.core.progress import Progress, no_progress
from studio.core.surrogates.registry import BATCH_DEFAULTS, REGISTRY
from studio.core.workspace.batch import BatchReport
from studio.core.workspace.store import Workspace

#: A crash with no photo in flight (while loading the models, say) is not retried forever.
MAX_BLIND_CRASHES = 2


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _die_with_parent() -> None:
    """On Linux, the child is killed when the parent is (a killed ``studio batch`` must
    not leave a batch running); elsewhere, its next message to a dead parent fails."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
        except OSError:
            pass


def _child(conn, parent: int, folder: str, workspace: str, candidates: int,
           methods: tuple[str, ...], workers: int, alone: list[str],
           min_face: float | None = None) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # it died before the line above
        return
    try:
        from studio.core.surrogates.making import batch_engine
        from studio.core.workspace.batch import run_batch

        with Workspace(workspace, create=True) as ws:
            engine = batch_engine(workers, min_face)
            try:
                if REGISTRY.rendered(methods):
                    engine.load_3d()  # before the photos, as the GAN's models are
                report = run_batch(
                    folder, ws, engine, candidates=candidates, methods=methods,
                    workers=workers, alone=set(alone),
                    progress=lambda done, total, msg: conn.send(("progress", done, total, msg)),
                    watch=lambda *event: conn.send(event))
            finally:
                engine.close()
        conn.send(("report", report))
    except StudioError as exc:
        conn.send(("error", str(exc)))
    except KeyboardInterrupt:
        conn.send(("interrupted",))
    except BaseException:
        conn.send(("bug", traceback.format_exc()))
    finally:
        conn.close()


def record_crash(workspace: str | Path, path: str, exit_code: int | None) -> None:
    """The photo is unreadable for the studio: recorded by its sha256, so skipped later."""
    message = (f"{path}: the analysis crashed on this photo ({describe_exit(exit_code)}); "
               "it is skipped")
    try:
        sha = sha256_of(Path(path))
    except OSError:
        return  # gone meanwhile: the next run reports it as unreadable
    with Workspace(workspace) as ws, ws.transaction() as db:
        ws.add_original(db, path, sha, "unreadable", message)


def guarded_batch(folder: str | Path, workspace: str | Path, candidates: int = 3,
                  methods: tuple[str, ...] = BATCH_DEFAULTS, workers: int = 1,
                  progress: Progress | None = None, min_face: float | None = None
                  ) -> BatchReport:
    """``run_batch`` in child processes, as the module says. Returns the last child's
    report (which covers the whole folder, photos blamed for a crash among the unreadable
    ones), with the faces, candidates and seconds (model loading aside, as in
    ``run_batch``) of children that died added in, and each death in ``crashes``."""
    progress = progress or no_progress
    ctx = multiprocessing.get_context("spawn")
    crashes: list[str] = []
    alone: list[str] = []
    made_faces = made_candidates = blind = 0
    lost_seconds = 0.0  # spent on photos by children that died
    while True:
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child, name="studio-batch", daemon=True, args=(
            send, os.getpid(), str(folder), str(workspace), candidates, tuple(methods),
            workers, alone, min_face))
        child.start()
        send.close()
        in_flight: set[str] = set()
        faces = cands = 0
        started = None  # when the child, models loaded, began on the photos
        outcome: tuple = ()
        try:
            while True:
                try:
                    msg = receive.recv()
                except EOFError:
                    break
                if msg[0] == "start":
                    in_flight.add(msg[1])
                elif msg[0] == "end":
                    in_flight.discard(msg[1])
                    faces, cands = faces + msg[2], cands + msg[3]
                elif msg[0] == "progress":
                    started = started or time.perf_counter()
                    progress(*msg[1:])
                else:
                    outcome = msg
        except KeyboardInterrupt:
            child.join(10)
            if child.is_alive():
                child.terminate()
            raise
        finally:
            receive.close()
        child.join()
        if outcome and outcome[0] == "report":
            report = outcome[1]
            report.faces += made_faces
            report.candidates += made_candidates
            report.seconds += lost_seconds
            report.crashes = crashes
            return report
        if outcome and outcome[0] == "error":
            raise StudioError(outcome[1])
        if outcome and outcome[0] == "interrupted":
            raise KeyboardInterrupt
        if outcome and outcome[0] == "bug":
            raise RuntimeError(f"the batch failed:\n{outcome[1]}")
        # The child died without a word: a native crash, or killed from outside.
        how = describe_exit(child.exitcode)
        made_faces, made_candidates = made_faces + faces, made_candidates + cands
        lost_seconds += time.perf_counter() - started if started else 0.0
        suspects = sorted(in_flight)
        crashes.append(f"the batch's process was {how} with {len(suspects)} photo"
                       f"{'s' if len(suspects) > 1 else ''} in flight" if suspects
                       else f"the batch's process was {how}")
        if not suspects:
            blind += 1
            if blind >= MAX_BLIND_CRASHES:
                raise StudioError(f"the batch's process was {how} before any photo "
                                  f"({blind} times); see the messages above")
            continue
        if len(suspects) == 1 and suspects[0] in alone:  # it killed the process, alone
            record_crash(workspace, suspects[0], child.exitcode)
            alone = [p for p in alone if p != suspects[0]]
        else:
            alone = sorted(set(alone) | set(suspects))
