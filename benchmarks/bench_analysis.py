"""Median and p95 milliseconds of each analysis stage on a 640x480 photo, on this machine.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_analysis.py [--runs N]``.
The photo is scikit-image's astronaut (public domain) resized to 640x480 and saved as JPEG.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from timing import stats

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    from skimage import data

    photo = cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        Image.fromarray(photo).save(path, quality=92)
        t0 = time.perf_counter()
        analyzer = FaceAnalyzer()
        startup = (time.perf_counter() - t0) * 1e3
        analyzer.analyze_path(path)  # warm-up
        times: dict[str, list[float]] = {}
        for _ in range(args.runs):
            t = time.perf_counter()
            load_image(path)
            times.setdefault("load (JPEG 640x480)", []).append((time.perf_counter() - t) * 1e3)
            result = analyzer.analyze_path(path)
            assert len(result.faces) == 1
            for key, label in [("detect", "detect + landmarks"), ("attributes", "attributes"),
                               ("identity", "identity descriptor"),
                               ("total", "whole analysis (load..identity)")]:
                times.setdefault(label, []).append(result.timings_ms[key])
        analyzer.close()
    print(f"face analysis, {args.runs} runs, {os.cpu_count()} CPU cores, "
          f"models loaded in {startup:.0f} ms")
    for label, values in times.items():
        print(f"  {label:<34} {stats(values)}")
    whole = float(np.median(times["whole analysis (load..identity)"]))
    print(f"bar: whole analysis <= 150 ms median: {'PASS' if whole <= 150 else 'FAIL'}")


if __name__ == "__main__":
    main()
