"""The power simulation: calibrated under no effect, right against theory, boundary and files."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from studio.core.crowd.power import (
    IMAGES,
    WORKERS,
    PowerGrid,
    normal_approx_product,
    simulate_power,
    t_test_zero,
)

SMALL = {"workers": (10, 30, 60), "images": (10, 30, 80)}


def noncentral_t_power(p1: float, p2: float, n: np.ndarray, m: np.ndarray,
                       alpha: float = 0.05) -> np.ndarray:
    """Theory: the mean difference over its SE follows a noncentral t with M - 1 df."""
    nc = np.sqrt(m * n) * abs(p1 - p2) / np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    crit = stats.t.ppf(1 - alpha / 2, m - 1)
    return stats.nct.sf(crit, m - 1, nc) + stats.nct.cdf(-crit, m - 1, nc)


def test_power_rises_with_workers_times_images_as_theory_says():
    grid = simulate_power(0.60, 0.65, reps=2000, seed=1, **SMALL)
    assert grid.power.shape == (3, 3)
    assert np.all(np.diff(grid.power, axis=0) > 0) and np.all(np.diff(grid.power, axis=1) > 0)
    nm = np.outer(grid.workers, grid.images).ravel()
    assert stats.spearmanr(nm, grid.power.ravel()).statistic > 0.95
    theory = noncentral_t_power(0.60, 0.65, grid.workers[:, None], grid.images[None, :])
    assert np.abs(grid.power - theory).max() < 0.035  # Monte Carlo SE <= 0.011 at 2,000 reps


def test_power_is_alpha_without_a_difference():
    grid = simulate_power(0.60, 0.60, reps=2000, seed=2, **SMALL)
    assert np.all((grid.power > 0.03) & (grid.power < 0.075))
    assert grid.power.mean() == pytest.approx(0.05, abs=0.008)  # 18,000 tests pooled


def test_t_test_from_sums_matches_scipy():
    rng = np.random.default_rng(3)
    d = rng.integers(-6, 9, size=(200, 25))
    t, p = t_test_zero(d.sum(axis=1), (d * d).sum(axis=1), 25)
    ref = stats.ttest_1samp(d, 0, axis=1)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-8, atol=1e-300)
    with pytest.raises(ValueError):
        t_test_zero(np.array([3]), np.array([9]), 1)


def test_boundary_reading_and_csv(tmp_path):
    power = np.array([[0.2, 0.5, 0.7, 0.96], [0.4, 0.95, 0.99, 1.0], [0.1, 0.2, 0.3, 0.4]])
    grid = PowerGrid(np.array([10, 20, 30]), np.array([10, 20, 30, 40]), power, 0.6, 0.65,
                     100, 0.05, 0)
    assert grid.smallest_images() == [(10, 40), (20, 20), (30, None)]
    assert list(grid.boundary_products()) == [400, 400]
    assert grid.power_near(400, tolerance=0.01) == pytest.approx((0.96 + 0.95) / 2)
    rows = list(csv.DictReader(grid.write_csv(tmp_path / "g.csv").open()))
    assert len(rows) == 12 and rows[5] == {"workers": "20", "images": "20",
                                           "workers_x_images": "400", "power": "0.9500"}
    assert any("not reached" in line for line in grid.summary_lines())


def test_normal_approximation():
    # (1.96 + 1.645)^2 * (0.24 + 0.2275) / 0.05^2
    assert normal_approx_product(0.60, 0.65) == pytest.approx(2430, abs=1)
    assert normal_approx_product(0.6, 0.6) == float("inf")


def test_power_command_writes_grid_and_heat_map(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "studio", "power", "--reps", "100",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "power.csv").open()))
    assert len(rows) == len(WORKERS) * len(IMAGES) == 580
    assert (tmp_path / "power.png").stat().st_size > 10_000
    assert "N*M at the 0.95 boundary" in proc.stdout and "3600" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "studio", "power", "--p1", "1.5"],
                         capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and "p1" in bad.stderr
