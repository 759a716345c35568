"""Power of the thesis's paired design: per-image differences in correct counts, t-tested against 0.

The thesis chose its crowd size (N workers) and image count (M) by simulation: every worker is
right with probability p1 on one version and p2 on the other, each image gets N answers per
version, and a one-sample t-test on the M per-image differences detects (or misses) the gap.
This module runs that simulation for a whole (N, M) grid at once with numpy, so R = 1,000
repetitions of the full grid take seconds rather than hours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from studio.core.crowd.tables import csv_writer

WORKERS = tuple(range(5, 101, 5))
IMAGES = tuple(range(10, 151, 5))
THESIS_NM = 3600  # the thesis found power 0.95 needs about N * M = 3,600 answers per version


def t_test_zero(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray | int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided one-sample t-test against 0 from sums, broadcast over any shape.

    Takes the sum and the sum of squares of n integer differences, so prefix sums answer every
    sample size at once. Zero variance is decided exactly (integers, no rounding): all
    differences 0 gives t = 0, p = 1; all equal and non-zero gives t = +-inf, p = 0 - the
    limit of the test, where scipy would return nan or warn.
    """
    total = np.asarray(total, dtype=np.int64)
    total_sq = np.asarray(total_sq, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    if np.any(n < 2):
        raise ValueError("the t-test needs at least two differences")
    scaled_ss = n * total_sq - total * total  # n * (sum of squared deviations), exact
    degenerate = scaled_ss == 0
    se = np.sqrt(np.where(degenerate, 1, scaled_ss) / (n * n * (n - 1)))
    limit = np.where(total == 0, 0.0, np.copysign(np.inf, total))
    t = np.where(degenerate, limit, (total / n) / se)
    p = np.where(degenerate, np.where(total == 0, 1.0, 0.0),
                 2.0 * stats.t.sf(np.abs(np.where(degenerate, 0.0, t)), n - 1))
    return t, p


def simulate_differences(rng: np.random.Generator, p1: float, p2: float, workers: np.ndarray,
                         images: int, reps: int) -> np.ndarray:
    """Per-image differences of correct counts, shape (len(workers), reps, images)."""
    n = np.asarray(workers, dtype=np.int64)[:, None, None]
    shape = (len(n), reps, images)
    return rng.binomial(n, p1, size=shape) - rng.binomial(n, p2, size=shape)


def normal_approx_product(p1: float, p2: float, alpha: float = 0.05, target: float = 0.95
                          ) -> float:
    """N * M at which a z-test would reach the target power: a closed-form check on the grid.

    A per-image difference has mean N (p1 - p2) and variance N (p1 q1 + p2 q2), so the test's
    non-centrality is sqrt(N M) |p1 - p2| / sqrt(p1 q1 + p2 q2): power depends on N * M alone.
    """
    if p1 == p2:
        return float("inf")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
    return float(z * z * (p1 * (1 - p1) + p2 * (1 - p2)) / (p1 - p2) ** 2)


@dataclass
class PowerGrid:
    """Probability of a significant t-test for every (workers, images) cell."""

    workers: np.ndarray
    images: np.ndarray
    power: np.ndarray  # (len(workers), len(images))
    p1: float
    p2: float
    reps: int
    alpha: float
    seed: int
    seconds: float = 0.0
    target: float = field(default=0.95)

    def smallest_images(self, target: float | None = None) -> list[tuple[int, int | None]]:
        """For each N, the smallest M whose power reaches the target (None: not in the grid)."""
        target = self.target if target is None else target
        out = []
        for i, n in enumerate(self.workers):
            hits = np.flatnonzero(self.power[i] >= target)
            out.append((int(n), int(self.images[hits[0]]) if len(hits) else None))
        return out

    def boundary_products(self, target: float | None = None) -> np.ndarray:
        """N * M at the boundary, for the N that reach the target inside the grid."""
        return np.array([n * m for n, m in self.smallest_images(target) if m is not None])

    def power_near(self, product: int, tolerance: float = 0.1) -> float:
        """Mean power of the cells whose N * M is within a relative tolerance of a product."""
        nm = self.workers[:, None] * self.images[None, :]
        near = np.abs(nm - product) <= tolerance * product
        return float(self.power[near].mean()) if near.any() else float("nan")

    def write_csv(self, path: Path) -> Path:
        with path.open("w", newline="") as fh:
            w = csv_writer(fh)
            w.writerow(["workers", "images", "workers_x_images", "power"])
            for i, n in enumerate(self.workers):
                for j, m in enumerate(self.images):
                    w.writerow([int(n), int(m), int(n * m), f"{self.power[i, j]:.4f}"])
        return path

    def summary_lines(self) -> list[str]:
        """What the CLI and the benchmark print: the boundary and how it meets N*M = 3,600."""
        lines = [f"p1 {self.p1:.3f}  p2 {self.p2:.3f}  reps {self.reps}  alpha {self.alpha}  "
                 f"seed {self.seed}: {self.seconds:.2f} s for {self.power.size} cells"]
        lines.append(f"smallest M with power >= {self.target:.2f}, per N:")
        for n, m in self.smallest_images():
            shown = f"M = {m:3d}  N*M = {n * m:5d}  power {self.power_at(n, m):.3f}" if m \
                else f"not reached by M = {int(self.images[-1])}"
            lines.append(f"  N = {n:3d}: {shown}")
        products = self.boundary_products()
        if len(products):
            lines.append(f"N*M at the {self.target:.2f} boundary: median {np.median(products):.0f}"
                         f" (range {products.min()}..{products.max()}) vs the thesis's "
                         f"~{THESIS_NM}; mean power of cells with N*M within 10% of "
                         f"{THESIS_NM}: {self.power_near(THESIS_NM):.3f}")
            lines.append("normal approximation: N*M = "
                         f"{normal_approx_product(self.p1, self.p2, self.alpha, self.target):.0f}"
                         " (M steps of 5 put the grid's boundary a little above it)")
        else:
            lines.append(f"no cell reaches power {self.target:.2f}")
        return lines

    def power_at(self, n: int, m: int) -> float:
        i = int(np.flatnonzero(self.workers == n)[0])
        j = int(np.flatnonzero(self.images == m)[0])
        return float(self.power[i, j])


def simulate_power(p1: float = 0.60, p2: float = 0.65, reps: int = 1000, alpha: float = 0.05,
                   seed: int = 0, workers: tuple[int, ...] = WORKERS,
                   images: tuple[int, ...] = IMAGES) -> PowerGrid:
    """Share of R simulated studies per (N, M) cell whose t-test has p < alpha.

    One draw of max(M) images per repetition serves every M through prefix sums (common random
    numbers): each cell is still an unbiased estimate, and neighbouring cells share noise, so
    the grid is smooth and 15x cheaper than fresh draws per cell.
    """
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValueError("p1 and p2 are probabilities")
    t0 = time.perf_counter()
    n_arr = np.asarray(workers, dtype=np.int64)
    m_arr = np.asarray(images, dtype=np.int64)
    rng = np.random.default_rng(seed)
    d = simulate_differences(rng, p1, p2, n_arr, int(m_arr.max()), reps)
    s1 = np.cumsum(d, axis=2)[:, :, m_arr - 1]  # (N, R, M)
    s2 = np.cumsum(d * d, axis=2)[:, :, m_arr - 1]
    _, p = t_test_zero(s1, s2, m_arr[None, None, :])
    power = (p < alpha).mean(axis=1)
    return PowerGrid(n_arr, m_arr, power, p1, p2, reps, alpha, seed,
                     seconds=time.perf_counter() - t0)


def plot_power(grid: PowerGrid, path: Path | None = None):
    """Heat map of power over (M, N) with the 0.95 contour and the thesis's N*M = 3,600 line.

    Returns the matplotlib Figure (Agg canvas, no pyplot state), saved to path when given.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    m, n = grid.images, grid.workers
    dm, dn = (m[1] - m[0] if len(m) > 1 else 1) / 2, (n[1] - n[0] if len(n) > 1 else 1) / 2
    im = ax.imshow(grid.power, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                   extent=(m[0] - dm, m[-1] + dm, n[0] - dn, n[-1] + dn))
    fig.colorbar(im, ax=ax, label="power")
    if len(m) > 1 and len(n) > 1 and grid.power.min() < grid.target < grid.power.max():
        ax.contour(m, n, grid.power, levels=[grid.target], colors="white", linewidths=1.5)
    mm = np.linspace(max(m[0], THESIS_NM / n[-1]), m[-1], 100)
    ax.plot(mm, THESIS_NM / mm, "--", color="#ff7f0e", lw=1.5, label=f"N·M = {THESIS_NM}")
    ax.set_xlim(m[0] - dm, m[-1] + dm)
    ax.set_ylim(n[0] - dn, n[-1] + dn)
    ax.set_xlabel("images per version (M)")
    ax.set_ylabel("workers per image (N)")
    ax.set_title(f"P(t-test p < {grid.alpha}) with p = {grid.p1:.2f} vs {grid.p2:.2f}, "
                 f"{grid.reps} reps (white: {grid.target:.2f})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
