"""What every component check (analysis, generator, 3D, in context) reports: a metric
against its bar, the table they are printed in, and the reference descriptors of the
nearest-training rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.progress import Progress, track


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    bar: str
    passed: bool
    detail: str = ""


def face_descriptors(analyzer: FaceAnalyzer, paths: list, progress: Progress | None = None,
                     what: str = "descriptors") -> np.ndarray:
    """(n, 128) the largest face's identity descriptor of each image that has one: the
    reference sets of the nearest-training rows."""
    out = []
    for p in track(paths, progress, what):
        found = largest_face(analyzer.analyze(load_image(p)).faces)
        if found is not None and found.descriptor is not None:
            out.append(found.descriptor)
    return np.array(out)


def format_table(metrics: list[Metric]) -> str:
    width = max(len(m.name) for m in metrics)
    lines = [f"{'metric':<{width}}  {'value':>8}  {'bar':<8}  result  detail"]
    for m in metrics:
        lines.append(f"{m.name:<{width}}  {m.value:>8.3f}  {m.bar:<8}  "
                     f"{'PASS' if m.passed else 'FAIL':<6}  {m.detail}")
    return "\n".join(lines)
