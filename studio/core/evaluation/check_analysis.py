"""The face analysis's acceptance check: measured on held-out data against its bars."""

from __future__ import annotations

import itertools
import random

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.datasets import celeba_id, genki, utkface
from studio.core.evaluation.acceptance import Metric
from studio.core.progress import Progress, track


def check_expression(analyzer: FaceAnalyzer, limit: int | None = None,
                   progress: Progress | None = None) -> list[Metric]:
    items = genki("test")[:limit]
    rows = []
    for item in track(items, progress, "GENKI-4K test"):
        faces = analyzer.analyze(load_image(item.path)).faces
        if faces:
            a = largest_face(faces).attributes
            rows.append((item.smile, a.joy, item.yaw, a.yaw, item.pitch, a.pitch, item.roll,
                         a.roll))
    r = np.array(rows)
    det = len(r) / len(items)
    acc = float(np.mean((r[:, 1] >= 0.5) == (r[:, 0] == 1)))
    yaw_mae = float(np.mean(np.abs(r[:, 3] - r[:, 2])))
    yaw_corr = float(np.corrcoef(r[:, 2], r[:, 3])[0, 1])
    pitch_corr = float(np.corrcoef(r[:, 4], r[:, 5])[0, 1])
    pitch_mae = float(np.mean(np.abs(r[:, 5] - r[:, 4])))
    roll_mae = float(np.mean(np.abs(r[:, 7] - r[:, 6])))
    n = f"{len(r)} of {len(items)} test faces"
    return [
        Metric("detection rate, GENKI-4K test", det, ">= 0.92", det >= 0.92, n),
        Metric("smile accuracy, GENKI-4K test", acc, ">= 0.90", acc >= 0.90, n),
        Metric("yaw MAE (deg)", yaw_mae, "<= 5", yaw_mae <= 5, n),
        Metric("yaw correlation", yaw_corr, ">= 0.93", yaw_corr >= 0.93, n),
        Metric("roll MAE (deg)", roll_mae, "<= 3", roll_mae <= 3, n),
        Metric("pitch correlation", pitch_corr, ">= 0.70", pitch_corr >= 0.70,
               f"{n}; pitch MAE {pitch_mae:.2f} deg"),
    ]


def check_gender(analyzer: FaceAnalyzer, n: int = 2000,
                    progress: Progress | None = None) -> list[Metric]:
    adults = [it for it in utkface() if it.age >= 16]
    random.Random(0).shuffle(adults)
    correct = total = missed = 0
    for item in track(adults[:n], progress, "UTKFace gender"):
        faces = analyzer.analyze(load_image(item.path)).faces
        if not faces:
            missed += 1
            continue
        total += 1
        correct += (largest_face(faces).attributes.p_male >= 0.5) == item.male
    acc = correct / max(total, 1)
    return [Metric("gender accuracy, UTKFace age >= 16", acc, ">= 0.92", acc >= 0.92,
                   f"{total} faces of {n} images ({missed} without a detected face)")]


def identity_pairs(n_identities: int | None = None, seed: int = 0):
    """One same-person pair per identity with 2+ images, and as many different-person pairs."""
    items = celeba_id()
    by_id: dict[int, list] = {}
    for it in items:
        by_id.setdefault(it.identity, []).append(it.path)
    multi = sorted(k for k, v in by_id.items() if len(v) >= 2)[:n_identities]
    same = [(by_id[k][0], by_id[k][1]) for k in multi]
    rng = random.Random(seed)
    ids = sorted(by_id)
    diff = set()
    while len(diff) < len(same):
        a, b = rng.sample(ids, 2)
        diff.add((by_id[a][0], by_id[b][0]))
    return same, sorted(diff)


def check_identity(analyzer: FaceAnalyzer, n_identities: int | None = None,
                      progress: Progress | None = None) -> list[Metric]:
    same, diff = identity_pairs(n_identities)
    paths = sorted({p for pair in itertools.chain(same, diff) for p in pair})
    desc: dict = {}
    for p in track(paths, progress, "celeba-id descriptors"):
        faces = analyzer.analyze(load_image(p)).faces
        desc[p] = largest_face(faces).descriptor if faces else None
    ok = total = 0
    dists = {True: [], False: []}
    for is_same, pairs in ((True, same), (False, diff)):
        for a, b in pairs:
            if desc[a] is None or desc[b] is None:
                continue
            d = identity_distance(desc[a], desc[b])
            dists[is_same].append(d)
            total += 1
            ok += (d < SAME_PERSON_THRESHOLD) == is_same
    acc = ok / max(total, 1)
    detail = (f"{len(dists[True])} same / {len(dists[False])} different pairs; median distance "
              f"{np.median(dists[True]):.3f} same, {np.median(dists[False]):.3f} different")
    return [Metric("identity accuracy at 0.6, celeba-id", acc, ">= 0.90", acc >= 0.90, detail)]


def run_check(analyzer: FaceAnalyzer, limit: int | None = None, gender_images: int = 2000,
              identities: int | None = None, progress: Progress | None = None) -> list[Metric]:
    """Expression and pose on GENKI-4K test, gender on UTKFace, identity on celeba-id."""
    return (check_expression(analyzer, limit=limit, progress=progress)
            + check_gender(analyzer, n=gender_images, progress=progress)
            + check_identity(analyzer, n_identities=identities, progress=progress))
