"""Recall: the share of faces each anonymiser leaves untouched in composed group pictures.

Pictures hold 3-12 held-out faces (UTKFace's hold-out, celeba-id's test identities) of
16-400 px, turned by up to ±30°, anywhere (half off the border too), on photo texture;
plus an 8000x6000 and a 20000x2000 frame. A face is left untouched when the mean absolute
change inside its box is under 2 grey levels. Reports recall per size bin, faces >= 20 px
left untouched, and photos per second, for the studio and for deface when it is installed
(pip install deface). Targets (issue 25): no face >= 20 px untouched; recall >= 95% at
20-40 px, >= 99% at 40-100 px, 100% at >= 100 px, and never below deface's.

Run: ``.venv/bin/python benchmarks/bench_recall.py [--pictures 24] [--method context]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from studio.core.evaluation.group_pictures import SIZE_BINS, compose, source_faces, tally
from studio.core.surrogates.whole_photo import anonymize_engine, anonymize_rgb


def pictures(n: int, seed: int, large: bool) -> list:
    rng = np.random.default_rng(seed)
    faces = source_faces(60, seed)
    out = [compose(faces, rng, (int(rng.integers(640, 1600)), int(rng.integers(480, 1200))),
                   int(rng.integers(3, 13))) for _ in range(n)]
    if large:
        out.append(compose(faces, rng, (8000, 6000), 8, (16, 400)))
        out.append(compose(faces, rng, (20000, 2000), 10, (16, 400)))
    return out


def deface_fn():
    """deface's own defaults (CenterFace at threshold 0.2, blurred ellipses), or None."""
    try:
        from deface.centerface import CenterFace
        from deface.deface import anonymize_frame
    except ImportError:
        return None
    net = CenterFace(in_shape=None, backend="auto")

    def run(rgb: np.ndarray) -> np.ndarray:
        frame = rgb.copy()
        dets, _ = net(frame, threshold=0.2)
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        return frame

    return run


def report(name: str, pics: list, run) -> None:
    import sys

    def timed(rgb: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        out = run(rgb)
        print(f"  {name}: {rgb.shape[1]}x{rgb.shape[0]} in {time.perf_counter() - t:.1f} s",
              file=sys.stderr, flush=True)
        return out

    t0 = time.perf_counter()
    t = tally(pics, timed)
    seconds = time.perf_counter() - t0
    cells = [f"{lo}-{hi if hi < 10_000 else ''} px: {t.recall((lo, hi)):.3f} "
             f"({t.changed[(lo, hi)]}/{t.total[(lo, hi)]})" for lo, hi in SIZE_BINS]
    print(f"{name:8s} recall {'; '.join(cells)}")
    print(f"{'':8s} faces >= 20 px left untouched: {t.untouched_20}; "
          f"{len(pics) / seconds:.2f} photos/s ({seconds:.1f} s)")


def detector_ms(pics: list, repeats: int = 10) -> float:
    """Median time of the recall detector alone on a 640x480 photo (the default
    --min-face)."""
    import cv2

    from studio.core.analysis.detector import FaceDetector

    detector = FaceDetector()
    rgb = cv2.resize(pics[0].rgb, (640, 480), interpolation=cv2.INTER_AREA)
    detector.detect(rgb)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        detector.detect(rgb)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pictures", type=int, default=24)
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--method", default="context")
    parser.add_argument("--no-large", action="store_true", help="leave out the huge frames")
    args = parser.parse_args()
    pics = pictures(args.pictures, args.seed, not args.no_large)
    n = sum(len(p.boxes) for p in pics)
    print(f"{len(pics)} pictures, {n} faces (seed {args.seed}, method {args.method})")
    print(f"recall detector on a 640x480 photo: {detector_ms(pics):.0f} ms (median of 10)")
    engine = anonymize_engine(args.method)
    try:
        report("studio", pics, lambda rgb: anonymize_rgb(engine, rgb, args.method, 1).image)
    finally:
        engine.close()
    run = deface_fn()
    if run is None:
        print("deface   not installed (pip install deface): not compared")
    else:
        report("deface", pics, run)


if __name__ == "__main__":
    main()
