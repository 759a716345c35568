"""Training loop for the conditional generator under either objective (BEGAN-CS's
autoencoder discriminator or the hinge-loss projection discriminator): resumable,
time-boxed, logged."""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio.core.errors import StudioError
from studio.core.generator.networks import (
    NEW_RUN_LAYERS,
    BeganConfig,
    Discriminator,
    Generator,
    check_policy,
    constraint_loss,
    convergence,
    diff_augment,
    reconstruction_loss,
    update_k,
)
from studio.core.generator.projection import HINGE_BETAS, ProjectionDiscriminator, hinge_step
from studio.core.generator.training_data import TrainingSet
from studio.core.progress import Progress, Stop, never_stop, no_progress


def new_run_config(**changes: object) -> BeganConfig:
    """The network config for new runs: the checkerboard-free layers (issue 16)."""
    return BeganConfig(**{**NEW_RUN_LAYERS, **changes})


@dataclass
class TrainSettings:
    batch: int = 32
    lr: float = 1e-4
    alpha: float = 0.5  # weight of the constraint loss L_C (thesis)
    gamma: float = 0.1  # BEGAN diversity ratio (thesis)
    lambda_k: float = 1e-3
    label_weight: float = 0.1
    # Weigh each label's squared error by 1 / its variance in the sampled batches. Plain MSE
    # let pitch (std 6 degrees = 0.07 in [0, 1]) contribute almost nothing, so G ignored it.
    label_standardize: bool = True
    label_ramp_steps: int = 3000  # label loss ramps up from 0 (thesis: avoids blur)
    constraint_in_generator: bool = True  # without it z collapsed in our baseline trial
    pose_balance: float = 0.5  # sampling weight = 1 / count(yaw, pitch bin) ** pose_balance
    lr_decay_every: int = 0  # steps; 0 keeps the learning rate constant
    seed: int = 0
    # Issue 16 levers; TrainSettings.legacy() turns all four off (the shipped run's setup).
    ema_decay: float = 0.999  # EMA of G's weights, exported and sampled; 0 disables
    k_min: float = 0.005  # floor of k_t, so D keeps pushing back on fakes; 0 is BEGAN's
    diffaugment: str = "color,translation,cutout"  # DiffAugment before D; "" disables
    # "began": the thesis's autoencoder D and k_t; "hinge": a projection D (projection.py)
    objective: str = "began"
    mode_seeking: float = 0.0  # hinge only: weight of the mode-seeking term (projection.py)
    r1: float = 0.0  # hinge only: R1 penalty weight (gamma) on D at reals (projection.py)
    r1_every: int = 16  # steps between R1 updates (lazy regularisation, scaled to match)
    d_full_res: bool = False  # hinge only: a residual D stage at 64 px (projection.py)
    config: BeganConfig = field(default_factory=new_run_config)

    def __post_init__(self) -> None:
        check_policy(self.diffaugment)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        if self.r1 < 0 or self.r1_every < 1 or (self.r1 and self.objective != "hinge"):
            raise ValueError("r1 must be >= 0 (hinge only) and r1_every >= 1.")
        if self.d_full_res and self.objective != "hinge":
            raise ValueError("d_full_res is a stage of the hinge objective's discriminator.")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.k_min < 1:
            raise ValueError("ema_decay and k_min must lie in [0, 1).")

    @classmethod
    def legacy(cls, **changes: object) -> TrainSettings:
        """Settings as the shipped weights were trained: no lever of issue 16."""
        config = changes.pop("config", BeganConfig())
        return cls(ema_decay=0.0, k_min=0.0, diffaugment="", config=config, **changes)


#: The adversarial objectives a run can train with (``TrainSettings.objective``), each with
#: the settings it was measured with (models/generator/README.md); ``studio train`` fills
#: what its flags leave out from here. Hinge's D learns the labels of augmented reals, so
#: it gets no cutout over the mouth.
OBJECTIVE_DEFAULTS: dict[str, dict[str, object]] = {
    "hinge": {"lr": 2e-4, "base_channels": 32, "label_weight": 0.5, "mode_seeking": 1.0,
              "diffaugment": "color,translation"},
    "began": {"lr": 1e-4, "base_channels": 16, "label_weight": 0.1, "mode_seeking": 0.0,
              "diffaugment": "color,translation,cutout"},
}
OBJECTIVES = tuple(OBJECTIVE_DEFAULTS)


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
        hinge = settings.objective == "hinge"
        self.D = (ProjectionDiscriminator(cfg, settings.d_full_res) if hinge
                  else Discriminator(cfg)).to(device, memory_format=fmt)
        betas = HINGE_BETAS if hinge else (0.5, 0.999)
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

    # -- state -----------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        state = {
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "k": self.k, "step": self.step, "seconds": self.seconds,
            "rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "settings": json.dumps(asdict(self.s)),
        }
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)  # never leave a half-written checkpoint
        self.export_generator(self.out / "generator.safetensors")

    def load_state(self) -> None:
        state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:  # a state from before the EMA starts it from G
            self.G_ema.load_state_dict(state.get("G_ema", state["G"]))
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.k, self.step, self.seconds = state["k"], state["step"], state["seconds"]
        self.rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.set_lr(self.lr_at(self.step))  # this run's --lr, not the saved optimiser's

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step``: the settings' rate, halved every
        ``lr_decay_every`` steps when that is set (BEGAN)."""
        every = self.s.lr_decay_every
        return max(self.s.lr * 0.5 ** (step // every), 1e-6) if every else self.s.lr

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def export_weights(self, path: Path) -> None:
        """G, its EMA and D as one small fp16 safetensors, with the step and k: what a
        later session warm-starts from (``warm_start``) when the full state (optimiser
        moments included, several times larger) cannot travel with the repository."""
        from safetensors.torch import save_file

        nets = {"G": self.G, "D": self.D, **({"G_ema": self.G_ema} if self.G_ema else {})}
        tensors = {f"{name}.{k}": v.detach().to("cpu", torch.float16).contiguous()
                   for name, net in nets.items() for k, v in net.state_dict().items()}
        meta = {"settings": json.dumps(asdict(self.s)), "step": str(self.step),
                "k": repr(self.k), "train_seconds": f"{self.seconds:.0f}"}
        save_file(tensors, str(path), metadata=meta)

    def warm_start(self, path: Path) -> None:
        """G, its EMA, D, step and k from ``export_weights``; the optimisers start afresh."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        saved_settings = json.loads(meta.get("settings", "{}"))
        objective = saved_settings.get("objective", "began")
        if objective != self.s.objective:
            raise StudioError(f"{path.name} was trained with the {objective} objective, not "
                              f"this run's {self.s.objective} (match --objective)")
        saved = saved_settings.get("config")
        if saved is not None and saved != self.s.config.to_dict():
            raise StudioError(f"{path.name} was trained with {saved}, not this run's "
                              f"{self.s.config.to_dict()} (match --channels)")
        nets = {"G": self.G, "D": self.D, **({"G_ema": self.G_ema} if self.G_ema else {})}
        for name, net in nets.items():
            part = {k.split(".", 1)[1]: v.float() for k, v in tensors.items()
                    if k.startswith(f"{name}.")}
            if not part and name == "G_ema":
                part = {k.split(".", 1)[1]: v.float() for k, v in tensors.items()
                        if k.startswith("G.")}
            self._load_part(net, part, path)
        self.step = int(meta.get("step", 0))
        self.k = float(meta.get("k", self.k))
        self.seconds = float(meta.get("train_seconds", 0))

    @staticmethod
    def _load_part(net: torch.nn.Module, part: dict, path: Path) -> None:
        """Load one network's tensors; only a projection D's full-resolution stage, new in
        this run, may be missing (it starts as the identity, so D goes on nearly as it was
        saved)."""
        missing, unexpected = net.load_state_dict(part, strict=False)
        if isinstance(net, ProjectionDiscriminator) and net.full_res:
            missing = [k for k in missing if not k.startswith(net.FULL_RES_KEYS)]
        if missing or unexpected:
            raise StudioError(f"{path.name} does not fit this run's networks: missing "
                              f"{missing[:3]}, unexpected {unexpected[:3]}")

    def export_generator(self, path: Path) -> None:
        """fp16 safetensors of G (its EMA when kept) plus its config: what the app ships
        and loads."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu", torch.float16).contiguous()
                   for k, v in self.sampling_net.state_dict().items()}
        meta = {"config": json.dumps(self.s.config.to_dict()), "step": str(self.step),
                "train_seconds": f"{self.seconds:.0f}"}
        if self.G_ema is not None:
            meta["ema"] = "true"
            meta["ema_decay"] = str(self.s.ema_decay)
        save_file(tensors, str(path), metadata=meta)

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

    def d_pass(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                    torch.Tensor]:
        """D's reconstruction of the augmented images (BEGAN's adversarial term), and its
        code and labels of the plain ones (L_C and the label loss stay true): one encoder
        batch. Returns (reconstruction target, reconstruction, code, labels)."""
        if not self.s.diffaugment:
            rec, code, pred = self.D(images)
            return images, rec, code, pred
        n = len(images)
        aug = diff_augment(images, self.s.diffaugment)
        codes = self.D.encoder(torch.cat([aug, images]))
        return aug, self.D.decoder(codes[:n]), codes[n:], self.D.predictor(codes[n:])

    def train_step(self) -> dict[str, float]:
        """One D and one G update; the losses to log, by name."""
        if self.s.objective == "hinge":
            return hinge_step(self)
        return self.began_step()

    def began_step(self) -> dict[str, float]:
        s, G = self.s, self.G
        x, y = self.batch()
        z = torch.rand(s.batch, s.config.z_dim, device=self.device) * 2 - 1
        w_label = s.label_weight * min(1.0, self.step / max(s.label_ramp_steps, 1))
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            fake = G(z, y)
            x_in, rec_real, _, pred_real = self.d_pass(x)
            fake_in, rec_fake, code_fake, _ = self.d_pass(fake.detach())
            l_real = reconstruction_loss(x_in.float(), rec_real.float())
            l_fake = reconstruction_loss(fake_in.float(), rec_fake.float())
            l_c = constraint_loss(z, code_fake.float())
            l_label_real = self.label_loss(pred_real, y)
            loss_d = l_real - self.k * l_fake + s.alpha * l_c + w_label * l_label_real
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            g_in, rec_g, code_g, pred_g = self.d_pass(fake)
            l_g = reconstruction_loss(g_in.float(), rec_g.float())
            l_label_g = self.label_loss(pred_g, y)
            loss_g = l_g + w_label * l_label_g
            if s.constraint_in_generator:
                loss_g = loss_g + s.alpha * constraint_loss(z, code_g.float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.update_ema()

        lr_, lf_ = l_real.item(), l_fake.item()
        self.k = update_k(self.k, s.lambda_k, s.gamma, lr_, lf_, s.k_min)
        self.step += 1
        if s.lr_decay_every and self.step % s.lr_decay_every == 0:
            self.set_lr(self.lr_at(self.step))
        return {"L_real": lr_, "L_fake": lf_, "L_C": l_c.item(), "label_real":
                l_label_real.item(), "label_G": l_label_g.item(), "k": self.k,
                "M": convergence(s.gamma, lr_, lf_)}

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
