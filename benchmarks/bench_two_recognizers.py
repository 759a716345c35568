"""What the second recognizer says of `studio anonymize --method context --seed 5` on
held-out faces, and what the read-back costs (issue 28).

Run it on this tree (the read-back answers to both recognizers) and on an older one
(``PYTHONPATH=<old tree>``, dlib alone) to compare: each face is read back where it was,
and judged by dlib (≥ 0.6: another person) and by the second recognizer (below its
calibrated threshold: another person). A face no longer found (blurred) counts as another
person for both. Prints one JSON line.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_two_recognizers.py --genki 30 --utk 30
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genki", type=int, default=30)
    parser.add_argument("--utk", type=int, default=30)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
    from studio.core.analysis.images import load_image
    from studio.core.analysis.recognizer import SecondRecognizer, same_person_threshold
    from studio.core.evaluation.held_out import held_out
    from studio.core.morphable.model import MORPHABLE_FILE
    from studio.core.surrogates import compositing
    from studio.core.surrogates.engine import SurrogateEngine
    from studio.core.surrogates.whole_photo import photo_seed, replace_faces

    engine = SurrogateEngine(staged=True)
    engine.load_generation()
    judge, t2 = SecondRecognizer(), same_person_threshold()
    paths = held_out(MORPHABLE_FILE, "morphable model").paths(args.genki, args.utk)
    rows, seconds = [], 0.0
    for path in paths:
        image = load_image(path)
        analysis = engine.analyze(image)
        if not analysis.faces:
            continue
        t0 = time.perf_counter()
        done = replace_faces(engine, image, analysis.faces, "context",
                             photo_seed(args.seed, image.rgb), "keep", analysis.unfitted)
        seconds += time.perf_counter() - t0
        found = engine.analyzer.analyze(done.image, recall=False).faces
        own = judge.descriptors(image.rgb, [f.landmarks for f in analysis.faces])
        for f, d2 in zip(analysis.faces, own, strict=True):
            centre = f.landmarks[:, :2].mean(0)
            near = [g for g in found if np.linalg.norm(g.landmarks[:, :2].mean(0) - centre)
                    < 0.5 * compositing.face_width(f.landmarks)]
            if not near:
                rows.append((None, None))
                continue
            g = min(near, key=lambda g: np.linalg.norm(g.landmarks[:, :2].mean(0) - centre))
            sim = float(judge.descriptors(done.image, [g.landmarks])[0] @ d2)
            rows.append((identity_distance(f.descriptor, g.descriptor), sim))
    dlib = [d is None or d >= SAME_PERSON_THRESHOLD for d, _ in rows]
    second = [s is None or s < t2 for _, s in rows]
    print(json.dumps({
        "photos": len(paths), "faces": len(rows),
        "not_found_after": sum(d is None for d, _ in rows),
        "another_by_dlib": round(float(np.mean(dlib)), 4),
        "another_by_second": round(float(np.mean(second)), 4),
        "another_by_both": round(float(np.mean(np.logical_and(dlib, second))), 4),
        "seconds_per_face": round(seconds / max(len(rows), 1), 3),
    }))


if __name__ == "__main__":
    main()
