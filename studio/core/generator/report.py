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


def real_vs_generated(gen: Sampler, analyzer, paths: list[Path], n: int = 8,
                      seed: int = 5) -> Image.Image:
    """The thesis's Fig. 4.4: held-out real faces (top row) in the generator's framing and
    size, and below each a generated face with that face's own estimated labels. Made from
    research photos: save it where it is not committed."""
    from studio.core.analysis.framing import original_crop
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face

    size = gen.config.image_size
    reals, fakes = [], []
    for path in paths:
        image = load_image(path)
        face = largest_face(analyzer.analyze(image).faces)
        if face is None:
            continue
        reals.append(original_crop(image.rgb, face.landmarks, size))
        fakes.append(gen.sample(face.attributes, seed=seed + len(fakes))[0])
        if len(reals) == n:
            break
    return tile(np.stack(reals + fakes), len(reals))


def _smoothed(ax, step: np.ndarray, v: np.ndarray, color: str, label: str) -> None:
    ax.plot(step, v, color="#ccc", lw=0.5)
    if len(v) > 9:  # moving average, without the edge dips of a zero-padded one
        ax.plot(step[4:-4], np.convolve(v, np.ones(9) / 9, mode="valid"), color=color, lw=1.4,
                label=f"{label} (smoothed)")


def plot_convergence(log_csv: Path, out: Path) -> None:
    """BEGAN's M and k_t over training; for a hinge run, D's loss and G's adversarial loss
    (``log.csv`` holds the objective's own columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_csv.open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    # The header's columns only: a run resumed with a newer version may log more.
    col = {k: np.array([float(r[k]) for r in rows]) for k in reader.fieldnames or ()}
    step, began = col["step"], "M" in col
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    if began:
        _smoothed(ax, step, col["M"], "#1f5f9f", "M")
    else:
        _smoothed(ax, step, col["D_real"] + col["D_fake"], "#1f5f9f", "D hinge loss")
        _smoothed(ax, step, col["G_adv"], "#2e8b57", "G adversarial loss")
    runs = log_csv.parent / "runs.jsonl"
    if runs.is_file():  # mark where each resumed run started
        for line in runs.read_text().splitlines():
            rec = json.loads(line)
            ax.axvline(rec["start_step"], color="#888", ls=":", lw=1)
            settings = rec["settings"]
            what = (f" gamma {settings['gamma']}" if began else
                    f" lr {settings['lr']:g}, ms {settings.get('mode_seeking', 0):g}"
                    + (f", r1 {settings['r1']:g}" if settings.get("r1") else "")
                    + (", full-res D" if settings.get("d_full_res") else ""))
            ax.text(rec["start_step"], ax.get_ylim()[1], what, fontsize=7, va="top",
                    color="#555", rotation=90 if not began else 0)
    ax.set_xlabel("step")
    ax.set_ylabel("convergence M" if began else "loss")
    if began:
        ax2 = ax.twinx()
        ax2.plot(step, col["k"], color="#d0661b", lw=1.0, label="k_t")
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
