"""``studio batch --ray``: the batch's photos analysed on a Ray cluster, written down here.

The plain batch's bookkeeping is reused whole (``batch.start_run``, ``batch.to_do`` and the
writer ``_Run``): this process hashes the photos, skips what an earlier run did and the
copies, hands the rest to ``surrogates.scale.ray_map`` and writes each result as it comes
back, one transaction per photo, as the plain run does. So the workspace stays
single-writer, a killed run resumes the same way, and the same seeds make the same
candidates. The analysis runs in Ray's worker processes, not here, so this process needs no
guard against a native crash (``guard``): a worker that dies is restarted by Ray and its
photo tried again; a photo that kills its worker on every try is recorded as unreadable,
as ``guard`` records one that kills the batch alone.
"""

from __future__ import annotations

import time
from contextlib import closing
from functools import partial
from pathlib import Path

from studio.core.progress import Progress
from studio.core.surrogates.registry import BATCH_DEFAULTS, REGISTRY
from studio.core.surrogates.scale import TASK_RETRIES, ray_map, ray_session
from studio.core.workspace.batch import BatchReport, PhotoResult, process_photo, start_run, to_do
from studio.core.workspace.store import Workspace


class PhotoWorker:
    """A batch's worker on one Ray actor: every model the methods need, loaded once."""

    def __init__(self, candidates: int, methods: tuple[str, ...]) -> None:
        import torch

        from studio.core.surrogates.making import CandidateMaker, batch_engine

        torch.set_num_threads(1)  # one core per actor, as Ray reserves
        self.candidates, self.methods = candidates, methods
        self.engine = batch_engine(1)
        try:
            if REGISTRY.rendered(methods):
                self.engine.load_3d()
        except BaseException:
            self.engine.close()
            raise
        self.maker = CandidateMaker(self.engine)

    def __call__(self, item: dict) -> PhotoResult:
        return process_photo(Path(item["path"]), item["sha256"], self.engine, self.maker,
                             self.candidates, self.methods)

    def close(self) -> None:
        self.engine.close()


def lost_photo(path: str, sha: str, tries: int) -> PhotoResult:
    """A photo whose worker died on every try: unreadable for the studio, skipped later."""
    times = "once" if tries == 1 else f"{tries} times"
    return PhotoResult(Path(path), sha, "unreadable",
                       f"{path}: the analysis crashed on this photo (its Ray worker died "
                       f"{times}); it is skipped")


def ray_batch(folder: str | Path, workspace: Workspace, candidates: int = 3,
              methods: tuple[str, ...] = BATCH_DEFAULTS, progress: Progress | None = None,
              address: str | None = None, workers: int | None = None,
              retries: int = TASK_RETRIES) -> BatchReport:
    """``run_batch`` with the photos analysed by Ray workers: on a Ray started here
    (``address`` None or "local", ``workers`` CPUs, default all) or on the cluster at
    ``address`` (``workers`` default: its CPUs). Every node must reach the photos at the
    same paths. The report's seconds run from the pipeline's start, the workers' model
    loading included."""
    run, paths = start_run(folder, workspace, methods, progress, None)
    todo = [{"path": str(path), "sha256": sha} for path, sha in to_do(run, paths)]
    if not todo:
        return run.report
    with ray_session(address, workers) as n:
        run.t0 = time.perf_counter()
        lost = 0
        with closing(ray_map(todo, partial(PhotoWorker, candidates, tuple(methods)),
                             min(n, len(todo)), retries)) as results:
            for item, result in results:
                if result is None:
                    lost += 1
                    result = lost_photo(item["path"], item["sha256"], retries + 1)
                run.write(result)
    if lost:
        tries = "its one try" if retries == 0 else f"each of {retries + 1} tries"
        run.report.crashes.append(f"{lost} photo{'s' if lost > 1 else ''} killed "
                                  f"{'their' if lost > 1 else 'its'} Ray worker on {tries}")
    return run.report
