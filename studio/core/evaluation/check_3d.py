"""``studio evaluate-3d``: the 3D path measured on held-out faces by the same face analysis.

Held out: the GENKI-4K test split and the UTKFace hold-out (``held_out``), less any photo
in the morphable model's training manifest. Each face is fitted, given a new identity (seeded), kept
in its own expression and pose, rendered, and the render re-analysed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.attributes import Attributes
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.landmarks import largest_face
from studio.core.evaluation.acceptance import Metric
from studio.core.evaluation.held_out import FaceLoop, held_out
from studio.core.morphable.surrogate import Request3D, Surrogate3DMaker
from studio.core.progress import Progress


@dataclass(frozen=True)
class Row:
    original: Attributes
    surrogate: Attributes | None
    distance: float | None
    nme: float
    fit_ms: float
    render_ms: float
    yaw_edit: float | None  # measured yaw change for a requested +15 degrees
    joy_edit: tuple[float, float] | None  # measured joy for requested 0.05 and 0.95


def measure(analyzer: FaceAnalyzer, maker: Surrogate3DMaker, paths: list,
            edits_every: int = 4, progress: Progress | None = None) -> tuple[list[Row], int]:
    rows, loop = [], FaceLoop(paths, progress)
    for i, image, face in loop.faces(analyzer):
        rgb, a = image.rgb, face.attributes
        fit, fit_ms = maker.fit(face.landmarks, face.blendshapes, rgb)
        request = Request3D(identity=1000 + i)
        s = maker.make(rgb, face.landmarks, face.blendshapes, a, request, fit=fit)
        seen = largest_face(analyzer.analyze(s.image).faces)
        dist = (identity_distance(face.descriptor, seen.descriptor)
                if seen is not None and seen.descriptor is not None else None)
        yaw_edit = joy_edit = None
        if i % edits_every == 0 and seen is not None:
            turned = maker.make(rgb, face.landmarks, face.blendshapes, a, Request3D(
                identity=1000 + i, targets=Attributes(a.joy, a.p_male, a.yaw + 15, a.pitch,
                                                      a.roll)), fit=fit)
            t = largest_face(analyzer.analyze(turned.image).faces)
            yaw_edit = None if t is None else t.attributes.yaw - seen.attributes.yaw
            joys = []
            for joy in (0.05, 0.95):
                edited = maker.make(rgb, face.landmarks, face.blendshapes, a, Request3D(
                    identity=1000 + i, targets=Attributes(joy, a.p_male, a.yaw, a.pitch,
                                                          a.roll)), fit=fit)
                e = largest_face(analyzer.analyze(edited.image).faces)
                joys.append(np.nan if e is None else e.attributes.joy)
            joy_edit = (joys[0], joys[1])
        rows.append(Row(a, None if seen is None else seen.attributes, dist, fit.nme, fit_ms,
                        s.render_ms, yaw_edit, joy_edit))
    return rows, loop.no_face


def metrics(rows: list[Row], no_face: int) -> list[Metric]:
    n = len(rows)
    found = [r for r in rows if r.surrogate is not None]
    det = len(found) / max(n, 1)
    o = np.array([[r.original.joy, r.original.yaw, r.original.pitch, r.original.roll]
                  for r in found])
    s = np.array([[r.surrogate.joy, r.surrogate.yaw, r.surrogate.pitch, r.surrogate.roll]
                  for r in found])
    joy_corr = float(np.corrcoef(o[:, 0], s[:, 0])[0, 1])
    smile = float(np.mean((o[:, 0] >= 0.5) == (s[:, 0] >= 0.5)))
    mae = np.abs(o[:, 1:] - s[:, 1:]).mean(0)
    dists = np.array([r.distance for r in found if r.distance is not None])
    private = float(np.mean(dists >= SAME_PERSON_THRESHOLD))
    nme = float(np.mean([r.nme for r in rows]))
    yaw_edits = np.array([r.yaw_edit for r in rows if r.yaw_edit is not None])
    joy_edits = np.array([r.joy_edit for r in rows if r.joy_edit is not None])
    joy_edit_ok = float(np.mean(np.concatenate([joy_edits[:, 0] < 0.5, joy_edits[:, 1] >= 0.5])))
    detail = f"{len(found)} renders of {n} fitted faces ({no_face} originals had no face)"
    return [
        Metric("landmark fit error (NME, eye-corner distance)", nme, "<= 0.03", nme <= 0.03,
               f"{n} faces"),
        Metric("face detected on the render", det, ">= 0.95", det >= 0.95, detail),
        Metric("joy correlation, original vs 3D", joy_corr, ">= 0.80", joy_corr >= 0.8,
               f"{len(found)}"),
        Metric("smile agreement, original vs 3D", smile, ">= 0.90", smile >= 0.9,
               f"{len(found)}"),
        Metric("yaw MAE (deg)", float(mae[0]), "<= 5", mae[0] <= 5, f"{len(found)}"),
        Metric("pitch MAE (deg)", float(mae[1]), "<= 5", mae[1] <= 5, f"{len(found)}"),
        Metric("roll MAE (deg)", float(mae[2]), "<= 3", mae[2] <= 3, f"{len(found)}"),
        Metric("privacy: 3D surrogate >= 0.6 from its original", private, ">= 0.98",
               private >= 0.98, f"{len(dists)} pairs, median {np.median(dists):.3f}"),
        Metric("yaw slider: measured change for +15 deg", float(np.median(yaw_edits)),
               "10..20", 10 <= np.median(yaw_edits) <= 20,
               f"median of {len(yaw_edits)}, IQR {np.percentile(yaw_edits, 25):.1f}.."
               f"{np.percentile(yaw_edits, 75):.1f}"),
        Metric("joy slider: smile decision follows joy 0.05 / 0.95", joy_edit_ok, ">= 0.90",
               joy_edit_ok >= 0.9, f"{len(joy_edits)} faces x 2"),
    ]


def run_check(analyzer: FaceAnalyzer, maker: Surrogate3DMaker, n_genki: int = 300,
             n_utk: int = 200, progress: Progress | None = None) -> list[Metric]:
    from studio.core.morphable.build import MORPHABLE
    from studio.core.morphable.model import MORPHABLE_FILE

    held = held_out(MORPHABLE_FILE, MORPHABLE)
    rows, no_face = measure(analyzer, maker, held.paths(n_genki, n_utk), progress=progress)
    return metrics(rows, no_face)
