"""The training loop for the conditional generator: resumable, time-boxed, logged. The
adversarial objective (BEGAN-CS's autoencoder discriminator or the hinge-loss projection
discriminator) is a strategy from ``objectives``; the files a run writes are
``checkpoint``'s; its settings are ``settings.TrainSettings``."""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from studio.core.generator import checkpoint
from studio.core.generator.networks import Generator
from studio.core.generator.objectives import OBJECTIVES
from studio.core.generator.settings import TrainSettings
from studio.core.generator.training_data import TrainingSet
from studio.core.progress import Progress, Stop, never_stop, no_progress


def ema_decay_at(decay: float, step: int) -> float:
    """EMA decay with a warm-up, (1 + t) / (10 + t) capped at ``decay``: early weights,
    from a random start, are forgotten quickly."""
    return min(decay, (1 + step) / (10 + step))


def sampling_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Flatten the (yaw, pitch) distribution: most pose variety is rare in the data."""
    yaw_bin = np.clip((labels[:, 2] * 18).astype(int), 0, 17)
    pitch_bin = np.clip((labels[:, 3] * 18).astype(int), 0, 17)
    cell = yaw_bin * 18 + pitch_bin
    counts = np.bincount(cell, minlength=18 * 18)
    w = 1.0 / counts[cell] ** power
    return w / w.sum()


def label_scale(labels: np.ndarray, weights: np.ndarray, standardize: bool) -> np.ndarray:
    """Per-label loss weights: 1 / variance under the sampling weights, or all ones."""
    if not standardize:
        return np.ones(labels.shape[1], np.float32)
    mean = weights @ labels
    var = weights @ (labels - mean) ** 2
    return (1.0 / np.maximum(var, 1e-4)).astype(np.float32)


def fixed_grid_inputs(z_dim: int, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 grid: rows sweep joy/gender/yaw/pitch, columns are 8 fixed identities."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(8, z_dim, generator=g) * 2 - 1).repeat(8, 1)
    base = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])
    rows = []
    for joy, male, yaw, pitch in [(0.05, 0.1, 0.5, 0.5), (0.95, 0.1, 0.5, 0.5),
                                  (0.05, 0.9, 0.5, 0.5), (0.95, 0.9, 0.5, 0.5),
                                  (0.5, 0.5, 0.2, 0.5), (0.5, 0.5, 0.8, 0.5),
                                  (0.5, 0.5, 0.5, 0.35), (0.5, 0.5, 0.5, 0.65)]:
        y = base.clone()
        y[:4] = torch.tensor([joy, male, yaw, pitch])
        rows.append(y.repeat(8, 1))
    return z, torch.cat(rows)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((images.float() + 1) / 2, str(path), nrow=nrow, padding=1)


class Trainer:
    """Owns the networks, optimisers and state; ``run`` trains for a time budget."""

    def __init__(self, data: TrainingSet, out: Path, settings: TrainSettings,
                 device: torch.device) -> None:
        self.data, self.out, self.s, self.device = data, out, settings, device
        torch.manual_seed(settings.seed)
        cfg = settings.config
        fmt = torch.channels_last
        self.G = Generator(cfg).to(device, memory_format=fmt)
        self.objective = OBJECTIVES[settings.objective]
        self.D = self.objective.discriminator(settings).to(device, memory_format=fmt)
        betas = self.objective.betas
        self.opt_g = torch.optim.Adam(self.G.parameters(), settings.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), settings.lr, betas=betas)
        # The averaged G: what is exported and drawn in grids; the raw G keeps training.
        self.G_ema = (copy.deepcopy(self.G).eval().requires_grad_(False)
                      if settings.ema_decay > 0 else None)
        self.k = settings.k_min
        self.step = 0
        self.seconds = 0.0
        self.rng = np.random.default_rng(settings.seed)
        self.weights = sampling_weights(data.labels, settings.pose_balance)
        self.label_scale = torch.from_numpy(
            label_scale(data.labels, self.weights, settings.label_standardize)).to(device)
        self.amp = device.type == "cpu" or device.type == "cuda"
        self.amp_dtype = torch.bfloat16

    # -- files (checkpoint.py) ---------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out / checkpoint.STATE_FILE

    def save_state(self) -> None:
        checkpoint.save_state(self)

    def load_state(self) -> None:
        checkpoint.load_state(self)

    def export_weights(self, path: Path) -> None:
        """The small fp16 carry-over a later session warm-starts from."""
        checkpoint.export_weights(self, path)

    def warm_start(self, path: Path) -> None:
        checkpoint.warm_start(self, path)

    def export_generator(self, path: Path) -> None:
        checkpoint.export_generator(self, path)

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step``: the settings' rate, halved every
        ``lr_decay_every`` steps when that is set (BEGAN)."""
        every = self.s.lr_decay_every
        return max(self.s.lr * 0.5 ** (step // every), 1e-6) if every else self.s.lr

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    @property
    def sampling_net(self) -> Generator:
        return self.G_ema if self.G_ema is not None else self.G

    def update_ema(self) -> None:
        """ema <- d ema + (1 - d) G, with d from ``ema_decay_at`` at the current step."""
        if self.G_ema is None:
            return
        d = ema_decay_at(self.s.ema_decay, self.step)
        with torch.no_grad():
            for e, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                e.lerp_(p, 1.0 - d)
            for e, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                e.copy_(b)

    # -- training --------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.rng.choice(len(self.data.labels), size=self.s.batch, p=self.weights)
        x = torch.from_numpy(self.data.images[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = torch.from_numpy(self.data.labels[idx].copy())
        flip = torch.from_numpy(self.rng.random(self.s.batch) < 0.5)
        x[flip] = x[flip].flip(3)
        # A horizontal flip negates yaw and roll: in [0, 1] that is v -> 1 - v.
        y[flip, 2] = 1 - y[flip, 2]
        y[flip, 4] = 1 - y[flip, 4]
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device)

    def label_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((pred.float() - y) ** 2 * self.label_scale).mean()

    def train_step(self) -> dict[str, float]:
        """One D and one G update under the run's objective; the losses to log, by name."""
        return self.objective.step(self)

    def sample_grid(self, path: Path) -> None:
        z, y = fixed_grid_inputs(self.s.config.z_dim)
        net = self.sampling_net
        was_training = net.training
        net.eval()
        with torch.inference_mode():
            imgs = net(z.to(self.device), y.to(self.device))
        net.train(was_training)
        save_grid(imgs, path)

    def run(self, minutes: float, grid_every_s: float = 300, progress: Progress | None = None,
            stop: Stop | None = None) -> None:
        """Train for ``minutes`` (or until ``stop()``); ``progress`` counts seconds of the
        budget, with the step and losses as its detail."""
        progress, stop = progress or no_progress, stop or never_stop
        self.out.mkdir(parents=True, exist_ok=True)
        with (self.out / "runs.jsonl").open("a") as fh:  # what each resumed run used
            fh.write(json.dumps({"start_step": self.step, "minutes": minutes,
                                 "device": str(self.device), "threads": torch.get_num_threads(),
                                 "settings": asdict(self.s)}) + "\n")
        log_path = self.out / "log.csv"
        new_log = not log_path.exists()
        budget = minutes * 60
        start = time.perf_counter()
        base_seconds = self.seconds  # training time of earlier runs
        last_grid = last_ckpt = start
        images_done = 0
        total = math.ceil(budget)
        progress(0, total, "seconds")
        with log_path.open("a", newline="") as fh:
            writer = csv.writer(fh)
            try:
                while (now := time.perf_counter()) - start < budget and not stop():
                    m = self.train_step()
                    images_done += self.s.batch
                    elapsed = time.perf_counter() - start
                    ips = images_done / max(elapsed, 1e-9)
                    if new_log:  # the columns are the objective's losses
                        writer.writerow(["step", "seconds", *m, "img_per_s"])
                        new_log = False
                    if self.step % 25 == 0:
                        writer.writerow([self.step, round(base_seconds + elapsed, 1),
                                         *(round(v, 5) for v in m.values()), round(ips, 1)])
                        fh.flush()
                        losses = " ".join(f"{k} {v:.3f}" for k, v in list(m.items())[:3])
                        progress(min(int(elapsed), total), total,
                                 f"seconds: step {self.step} {losses} {ips:.0f} img/s")
                    if now - last_grid > grid_every_s:
                        self.sample_grid(self.out / "grids" / f"step{self.step:07d}.png")
                        last_grid = now
                    if now - last_ckpt > 600:
                        self.seconds = base_seconds + time.perf_counter() - start
                        self.save_state()
                        last_ckpt = time.perf_counter()
            finally:
                self.seconds = base_seconds + time.perf_counter() - start
                progress(min(int(time.perf_counter() - start), total), total,
                         f"seconds: step {self.step}, stopped and saved")
                self.save_state()
                self.sample_grid(self.out / "grids" / f"step{self.step:07d}.png")
