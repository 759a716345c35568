"""`studio evaluate` throughput on this machine, in source faces per second: each face is
analysed, de-identified by every method (GAN, 3D, two strengths of blur, pixelation and
mask) and every output analysed again. Then the same run from the cache, and the time to
summarise (attacks included) and write the report. Model loading is not counted.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_evaluate.py [--faces N]``.
Faces: GENKI-4K test and celeba-id images from ../shared/data, read in place.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from studio.core.datasets import data_root
from studio.core.evaluation.methods import families, methods_for
from studio.core.evaluation.observations import ObservationCache
from studio.core.evaluation.report import write_report
from studio.core.evaluation.sources import discover
from studio.core.evaluation.study import evaluate
from studio.core.evaluation.summary import summarise_run
from studio.core.surrogates.making import batch_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=30, help="per data set (two data sets)")
    parser.add_argument("--workers", type=int, default=2, help="as studio evaluate's default")
    args = parser.parse_args()
    engine = batch_engine(args.workers)
    engine.load_3d()
    datasets = [discover(data_root() / "genki4k", args.faces),
                discover(data_root() / "celeba-id", args.faces)]
    methods = methods_for(families())
    n = sum(len(d.sources) for d in datasets)
    print(f"studio evaluate benchmark ({os.cpu_count()} cores, {args.workers} workers, "
          f"{n} faces x {len(methods)} methods incl. the original)")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = ObservationCache(Path(tmp) / "obs.sqlite")
            run = evaluate(datasets, methods, engine, workers=args.workers, cache=cache)
            print(f"  observe, nothing cached  {run.computed} faces in {run.seconds:6.1f} s = "
                  f"{run.faces_per_second:5.2f} faces/s ({1e3 / run.faces_per_second:5.0f} "
                  "ms a face)")
            again = evaluate(datasets, methods, engine, workers=args.workers, cache=cache)
            print(f"  observe, all cached      {n} faces in {again.seconds:6.2f} s = "
                  f"{n / again.seconds:7.1f} faces/s")
            t0 = time.perf_counter()
            results = summarise_run(again)
            t1 = time.perf_counter()
            write_report(again, results, Path(tmp) / "report")
            t2 = time.perf_counter()
            print(f"  summarise (attacks incl.) {t1 - t0:5.2f} s, write the report "
                  f"{t2 - t1:5.2f} s")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
