"""Figures for the generator's model card: sample and interpolation grids, M over training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.analysis.attributes import Attributes
from studio.core.generator.sampler import Sampler
from studio.core.generator.sheets import contact_sheet


def tile(images: np.ndarray, cols: int) -> Image.Image:
    """The model card's grids: faces at twice their size."""
    return contact_sheet(images, cols, size=2 * images.shape[1])


def sample_grid(gen: Sampler, seed: int = 7) -> Image.Image:
    """64 samples with labels drawn across the whole range."""
    rng = np.random.default_rng(seed)
    attrs = [Attributes(float(rng.uniform()), float(rng.uniform()), float(rng.uniform(-30, 30)),
                        float(rng.uniform(-15, 15)), float(rng.uniform(-15, 15)))
             for _ in range(64)]
    return tile(gen.sample(attrs, seed=seed), 8)


def joy_by_gender(gen: Sampler, seed: int = 3) -> Image.Image:
    """Rows: joy 0 -> 1; columns: P(male) 0 -> 1; one identity (fixed z)."""
    z = gen.random_z(1, seed)
    attrs = [Attributes(j, m, 0.0, 0.0, 0.0) for j in np.linspace(0, 1, 6)
             for m in np.linspace(0, 1, 6)]
    return tile(gen.sample(attrs, z=z), 6)


def yaw_by_pitch(gen: Sampler, seed: int = 3) -> Image.Image:
    """Rows: pitch -20 -> +20 deg; columns: yaw -30 -> +30 deg; fixed z, joy 0.5."""
    z = gen.random_z(1, seed)
    attrs = [Attributes(0.5, 0.5, y, p, 0.0) for p in np.linspace(-20, 20, 5)
             for y in np.linspace(-30, 30, 7)]
    return tile(gen.sample(attrs, z=z), 7)


def latent_walk(gen: Sampler, seed: int = 11, steps: int = 8) -> Image.Image:
    """Four identity pairs, slerped at fixed labels."""
    rows = []
    for k in range(4):
        z0, z1 = gen.random_z(2, seed + k)
        path = gen.interpolate(z0, z1, steps, mode="slerp")
        rows.append(gen.sample(Attributes(0.7, 0.5, 0.0, 0.0, 0.0), z=path))
    return tile(np.concatenate(rows), steps)


def plot_convergence(log_csv: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    step = np.array([float(r["step"]) for r in rows])
    m = np.array([float(r["M"]) for r in rows])
    k = np.array([float(r["k"]) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.plot(step, m, color="#bbb", lw=0.6, label="M")
    if len(m) > 9:  # moving average, without the edge dips of a zero-padded one
        ax.plot(step[4:-4], np.convolve(m, np.ones(9) / 9, mode="valid"), color="#1f5f9f",
                lw=1.6, label="M (smoothed)")
    runs = log_csv.parent / "runs.jsonl"
    if runs.is_file():  # mark where each resumed run started, with its gamma
        for line in runs.read_text().splitlines():
            rec = json.loads(line)
            ax.axvline(rec["start_step"], color="#888", ls=":", lw=1)
            ax.text(rec["start_step"], ax.get_ylim()[1], f" gamma {rec['settings']['gamma']}",
                    fontsize=7, va="top", color="#555")
    ax.set_xlabel("step")
    ax.set_ylabel("convergence M")
    ax2 = ax.twinx()
    ax2.plot(step, k, color="#d0661b", lw=1.0, label="k_t")
    ax2.set_ylabel("k_t")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_report(gen: Sampler, out_dir: Path, log_csv: Path | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in [("samples.png", sample_grid(gen)), ("joy_by_gender.png", joy_by_gender(gen)),
                      ("yaw_by_pitch.png", yaw_by_pitch(gen)),
                      ("latent_walk.png", latent_walk(gen))]:
        fig.save(out_dir / name)
        written.append(out_dir / name)
    if log_csv is not None and log_csv.is_file():
        plot_convergence(log_csv, out_dir / "convergence.png")
        written.append(out_dir / "convergence.png")
    return written
