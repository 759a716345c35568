"""`studio batch` throughput on this machine, in faces per second, for GAN candidates and
for 3D candidates (3 per face, each measured against its original). Targets: >= 10 faces/s
with GAN candidates, >= 3 faces/s with 3D candidates. Model loading is not counted.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_batch.py [--faces N] [--guarded]``
(``--guarded``: as ``studio batch`` runs it, in a child process; models load there).
Faces: GENKI-4K test images from ../shared/data, linked (not copied) into a temp folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from studio.core.datasets import genki
from studio.core.surrogates.making import batch_engine
from studio.core.workspace.batch import run_batch
from studio.core.workspace.guard import guarded_batch
from studio.core.workspace.store import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="as studio batch's default")
    parser.add_argument("--guarded", action="store_true",
                        help="in a child process, as studio batch runs it (core.workspace.guard)")
    args = parser.parse_args()
    engine = batch_engine(args.workers)
    engine.load_3d()  # model loading is not part of the throughput
    print(f"studio batch benchmark ({os.cpu_count()} cores, {args.workers} workers, "
          f"{args.candidates} candidates per face, with metrics)")
    try:
        for method, target in (("gan", 10), ("3d", 3)):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "photos"
                folder.mkdir()
                for item in genki("test")[: args.faces]:
                    (folder / item.path.name).symlink_to(item.path)
                if args.guarded:
                    r = guarded_batch(folder, Path(tmp) / "bench.studio",
                                      candidates=args.candidates, methods=(method,),
                                      workers=args.workers)
                else:
                    with Workspace(Path(tmp) / "bench.studio", create=True) as ws:
                        r = run_batch(folder, ws, engine, candidates=args.candidates,
                                      methods=(method,), workers=args.workers)
            print(f"  {method:>3} candidates: {r.faces} faces in {r.seconds:5.1f} s = "
                  f"{r.faces_per_second:5.2f} faces/s   (target >= {target})")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
