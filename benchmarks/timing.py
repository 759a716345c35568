"""Shared by the benchmarks: how a list of timings is printed."""

from __future__ import annotations

import numpy as np


def stats(values: list[float]) -> str:
    a = np.array(values)
    return f"median {np.median(a):7.1f} ms   p95 {np.percentile(a, 95):7.1f} ms"
