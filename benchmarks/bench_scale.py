"""`studio batch` against `studio batch --ray` on this machine: faces per second of the plain
run and of a local Ray Data pipeline with as many workers, and the overhead ratio.

Both runs take the same GENKI-4K test photos (linked, not copied, into a temp folder) and
the batch's methods (default: GAN and 3D candidates, each measured against its original).
The plain run's rate leaves model loading out, as ``bench_batch`` does. For Ray, the figures
are split: starting Ray, the pipeline's start (each worker loading the models) until its
first face, and the steady rate from the first face written to the last, which is the one
that scales with the workers (``docs/scale.md``).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_scale.py [--faces N]
[--workers W] [--candidates C] [--methods gan,3d,context]``. Needs the ray extra
(``pip install .[ray]``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from studio.core.datasets import genki
from studio.core.surrogates.making import batch_engine
from studio.core.surrogates.registry import REGISTRY
from studio.core.surrogates.scale import ray_session
from studio.core.workspace.batch import run_batch
from studio.core.workspace.scale import ray_batch
from studio.core.workspace.store import Workspace


def photo_folder(tmp: str, faces: int) -> Path:
    folder = Path(tmp) / "photos"
    folder.mkdir()
    for item in genki("test")[:faces]:
        (folder / item.path.name).symlink_to(item.path)
    return folder


def plain(faces: int, workers: int, candidates: int, methods: tuple[str, ...]
          ) -> tuple[float, float, int]:
    """Model loading (s), the run (s) and the faces of ``run_batch``."""
    t0 = time.perf_counter()
    engine = batch_engine(workers)
    if REGISTRY.rendered(methods):
        engine.load_3d()
    loading = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                Workspace(Path(tmp) / "plain.studio", create=True) as ws:
            r = run_batch(photo_folder(tmp, faces), ws, engine, candidates=candidates,
                          methods=methods, workers=workers)
    finally:
        engine.close()
    return loading, r.seconds, r.faces


def on_ray(faces: int, workers: int, candidates: int, methods: tuple[str, ...]
           ) -> dict[str, float]:
    """Ray's start, the pipeline until its first face, the steady rate after it."""
    t0 = time.perf_counter()
    with ray_session("local", workers):
        started = time.perf_counter()
        stamps: list[tuple[float, str]] = []
        with tempfile.TemporaryDirectory() as tmp:
            folder = photo_folder(tmp, faces)
            with Workspace(Path(tmp) / "ray.studio", create=True) as ws:
                t1 = time.perf_counter()
                r = ray_batch(folder, ws, candidates=candidates, methods=methods,
                              workers=workers,
                              progress=lambda done, total, msg: stamps.append(
                                  (time.perf_counter(), msg)))
    done = [(t, int(msg.split()[1])) for t, msg in stamps if msg.startswith("photos: ")]
    first = next((t, n) for t, n in done if n > 0)
    last = done[-1]
    return {"start": started - t0, "first": first[0] - t1, "wall": last[0] - t1,
            "faces": r.faces, "steady": (last[1] - first[1]) / max(1e-9, last[0] - first[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="both runs (plain: threads)")
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--methods", default=",".join(REGISTRY.batch_defaults()),
                        help="as studio batch's: gan, 3d, context")
    args = parser.parse_args()
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    print(f"studio batch, plain against --ray ({os.cpu_count()} cores, {args.workers} "
          f"workers, {args.faces} GENKI-4K photos, {'+'.join(methods)} x "
          f"{args.candidates} candidates, with metrics)")
    loading, seconds, n = plain(args.faces, args.workers, args.candidates, methods)
    rate = n / seconds
    print(f"  plain : models {loading:4.1f} s, then {n} faces in {seconds:5.1f} s = "
          f"{rate:5.2f} faces/s")
    ray = on_ray(args.faces, args.workers, args.candidates, methods)
    print(f"  ray   : start {ray['start']:4.1f} s, first face after {ray['first']:4.1f} s "
          f"(workers load the models), {ray['faces']} faces in {ray['wall']:5.1f} s; "
          f"steady {ray['steady']:5.2f} faces/s = {ray['steady'] / args.workers:5.2f} per "
          "worker")
    end_to_end = (loading + seconds) / (ray["start"] + ray["wall"])
    print(f"  ratio : steady ray/plain {ray['steady'] / rate:4.2f}; end to end (loading and "
          f"start included) {end_to_end:4.2f}")


if __name__ == "__main__":
    main()
