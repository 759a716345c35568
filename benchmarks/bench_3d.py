"""Median and p95 milliseconds to fit a face to the morphable model and to render a 256x256
3D surrogate, on this machine. Targets: fit <= 20 ms, render <= 30 ms.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_3d.py [--runs N]``.
The face is scikit-image's astronaut (public domain).
"""

from __future__ import annotations

import argparse
import os
import time

from skimage import data
from timing import stats

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.landmarks import largest_face
from studio.core.morphable.render import View
from studio.core.morphable.surrogate import Request3D, Surrogate3DMaker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    rgb = data.astronaut()
    analyzer = FaceAnalyzer(identity=False, gender=False)
    face = largest_face(analyzer.analyze(rgb).faces)
    t0 = time.perf_counter()
    maker = Surrogate3DMaker()
    maker.make(rgb, face.landmarks, face.blendshapes, face.attributes)  # GL start-up
    start_s = time.perf_counter() - t0
    fits, renders, whole = [], [], []
    for i in range(args.runs):
        t = time.perf_counter()
        fit, fit_ms = maker.fit(face.landmarks, face.blendshapes, rgb)
        request = Request3D(identity=1 + i, view=View(azimuth=float(i % 30)))
        s = maker.make(rgb, face.landmarks, face.blendshapes, face.attributes, request, fit=fit)
        whole.append((time.perf_counter() - t) * 1e3)
        fits.append(fit_ms)
        renders.append(s.render_ms)
    maker.close()
    analyzer.close()
    print(f"3D surrogate benchmark ({os.cpu_count()} cores, {args.runs} runs, "
          "textured 256x256)")
    print(f"  fit: shape and texture      {stats(fits)}   (target <= 20)")
    print(f"  render 256x256 textured      {stats(renders)}   (target <= 30)")
    print(f"  fit + new identity + render  {stats(whole)}")
    print(f"  model load and GL start-up   {start_s:6.2f} s")


if __name__ == "__main__":
    main()
