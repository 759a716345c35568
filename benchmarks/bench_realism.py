"""Realism evaluation time per 1,000 faces: the per-image features (dlib descriptor and
pooled stage, HOG detection, sharpness) and the set metrics (FD, KID, C2ST on both feature
spaces, real-versus-real reference included) of 1,000 outputs against 1,000 reals.

Run: ``.venv/bin/python benchmarks/bench_realism.py [--faces N]``. Faces: GENKI-4K test
crops from ../shared/data (64 px, read in place); the "outputs" are the same crops blurred.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
from PIL import Image

from studio.core.datasets import genki
from studio.core.evaluation.realism import realism, realism_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=1000, help="reals (and as many outputs)")
    args = parser.parse_args()
    items = genki("test")[: args.faces]
    reals = np.stack([np.asarray(Image.open(it.path).convert("RGB")) for it in items])
    outputs = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in reals])
    n = len(reals)
    print(f"realism benchmark ({os.cpu_count()} cores, {n} reals + {n} outputs, 64 px)")
    realism_features(reals[:2])  # load the network once, outside the timing
    t0 = time.perf_counter()
    real_features = realism_features(reals)
    out_features = realism_features(outputs)
    t1 = time.perf_counter()
    result = realism(out_features, real_features, sources=np.arange(n))
    t2 = time.perf_counter()
    per_face = (t1 - t0) / (2 * n)
    print(f"  features     {per_face * 1e3:6.1f} ms a face = {per_face * 1e3:6.1f} s per 1,000")
    print(f"  set metrics  {t2 - t1:6.2f} s for {n} outputs against {n} reals "
          f"(C2ST {result.c2st:.3f}, reference {result.reference.c2st:.3f})")
    print(f"  together     {per_face * 1e3 + (t2 - t1) * 1e3 / n:6.1f} s per 1,000 outputs "
          "(their reals' features counted once)")


if __name__ == "__main__":
    main()
