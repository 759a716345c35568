"""``studio evaluate`` and the window's evaluation as one job: discover the data sets,
observe every face under every method, summarise, and write the report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from studio.core.evaluation.methods import methods_for
from studio.core.evaluation.observations import ObservationCache
from studio.core.evaluation.parrot import parrot_gallery
from studio.core.evaluation.report import render_markdown, write_report
from studio.core.evaluation.sources import discover
from studio.core.evaluation.study import EvaluationRun, evaluate
from studio.core.evaluation.summary import MethodResult, summarise_run
from studio.core.progress import Progress, Stop
from studio.core.surrogates.making import batch_engine


@dataclass(frozen=True)
class Evaluated:
    run: EvaluationRun
    results: list[MethodResult]
    index: Path


def evaluate_folders(folders: list[str | Path], families: list[str], out_dir: str | Path,
                     limit: int | None = None, workers: int = 2, engine=None,
                     markdown: str | Path | None = None, command: str = "",
                     progress: Progress | None = None, stop: Stop | None = None,
                     cache: ObservationCache | None = None) -> Evaluated:
    """Discover, observe, summarise and write the report. Without ``engine`` one is loaded
    for ``workers`` parallel faces, only if some face is not cached, and closed again."""
    methods = methods_for(families)
    datasets = [discover(f, limit) for f in folders]
    loaded = []

    def models():  # only when a face is not in the cache yet; loaded once
        models = engine if engine is not None else (loaded[0] if loaded else None)
        if models is None:
            models = batch_engine(workers)
            loaded.append(models)
        if any(m.rendered for m in methods):
            models.load_3d()
        return models

    try:
        run = evaluate(datasets, methods, models, workers=workers, cache=cache,
                       progress=progress, stop=stop)
        gallery = parrot_gallery(run, models, cache=cache, workers=workers,
                                 progress=progress, stop=stop)
    finally:
        for own in loaded:
            own.close()
    results = summarise_run(run, gallery)
    index = write_report(run, results, Path(out_dir), command)
    if markdown is not None:
        md = Path(markdown)
        rel = os.path.relpath(Path(out_dir).resolve(), md.parent.resolve())
        md.write_text(render_markdown(run, results, Path(rel).as_posix(), command),
                      encoding="utf-8")
    return Evaluated(run, results, index)
