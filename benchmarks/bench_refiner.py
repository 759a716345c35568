"""The refiner's cost per face (issue 27's target: <= 60 ms at 128 px on two cores), and the
in-context surrogate's time per face with and without it.

Run: ``.venv/bin/python benchmarks/bench_refiner.py [--faces 20] [--threads N]``
Faces: held-out UTKFace photos (every 23rd), none of which the refiner trained on.
Torch threads: as the studio runs the refiner (the identity encoder sets one CPU fewer than
there are, ``dlib_resnet.configure_threads``: one on two cores) unless ``--threads`` says.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.dlib_resnet import configure_threads
from studio.core.analysis.images import load_image
from studio.core.datasets import utk_split, utkface
from studio.core.refiner.crops import CROP_SIZE
from studio.core.surrogates.incontext import ContextRequest, InContextMaker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: as the studio sets them)")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    photos = [load_image(it.path).rgb for it in utk_split(utkface(), "test")[:args.faces]]
    with FaceAnalyzer(identity=False, gender=False) as analyzer, InContextMaker() as maker:
        if maker.refiner is None:
            raise SystemExit(maker.refiner_note)
        work = [(rgb, analyzer.analyze(rgb).faces[:1]) for rgb in photos]
        work = [(rgb, f) for rgb, f in work if f]
        crop = np.full((CROP_SIZE, CROP_SIZE, 3), 128, np.uint8)
        mask = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
        mask[20:110, 25:100] = 255
        maker.refiner.change(crop, mask)  # warm-up
        t0 = time.perf_counter()
        for _ in range(len(work)):
            maker.refiner.change(crop, mask)
        net_ms = (time.perf_counter() - t0) / len(work) * 1e3
        timings = {}
        for refine in (False, True):
            maker.make(*work[0], ContextRequest(seed=1, refine=refine))
            t0 = time.perf_counter()
            for i, (rgb, faces) in enumerate(work):
                maker.make(rgb, faces, ContextRequest(seed=i, refine=refine))
            timings[refine] = (time.perf_counter() - t0) / len(work) * 1e3
    print(f"refiner benchmark ({os.cpu_count()} cores, {threads} torch thread(s), step "
          f"{maker.refiner.step}, {len(work)} held-out UTKFace faces)")
    print(f"  refiner network per face at {CROP_SIZE} px: {net_ms:.1f} ms (target <= 60)")
    print(f"  in-context face, unrefined: {timings[False]:.1f} ms; refined: "
          f"{timings[True]:.1f} ms (+{timings[True] - timings[False]:.1f} ms)")


if __name__ == "__main__":
    main()
