"""Seconds for the thesis's full power grid (N 5..100, M 10..150, R = 1,000), and its boundary.

Run: ``.venv/bin/python benchmarks/bench_power.py [--runs 3] [--reps 1000]``.
The bar is under 30 s on a 2-core machine; the grid is one vectorised numpy pass.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from studio.core.crowd.power import simulate_power


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args()
    times = []
    grid = None
    for run in range(args.runs):
        t0 = time.perf_counter()
        grid = simulate_power(reps=args.reps, seed=run)
        times.append(time.perf_counter() - t0)
        print(f"run {run + 1}: {times[-1]:.2f} s")
    print(f"full grid ({grid.power.size} cells x {args.reps} reps): median {np.median(times):.2f} s"
          f", max {max(times):.2f} s (bar: 30 s)")
    print("\n".join(grid.summary_lines()[1:]))


if __name__ == "__main__":
    main()
