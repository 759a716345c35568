"""Training the refiner: hinge-loss patch GAN plus L1 on pairs of (own-fit composite, real
photo). No loss on dlib or FER features: those are the instruments realism, identity and
expression are measured with, and a loss on them would flatter the measures.

Masks are dilated by a random amount on half the samples, the ring filled with a blur of
the crop, so the same network learns to paint a new outline (the strict privacy preset).

The eyes and the mouth can have critics of their own (``refiner.parts``, ``parts`` > 0):
tried from step 3,606 to 4,527 they stayed at chance and the refiner came out no better
(models/refiner/README.md), so they are off by default. A run whose state has no part
critics (an older carry-over) starts them fresh.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from studio.core.progress import Progress, Stop, never_stop, no_progress
from studio.core.refiner import checkpoint
from studio.core.refiner.guide import as_guide, blur_sigma
from studio.core.refiner.network import (
    PatchDiscriminator,
    RefinerConfig,
    RefinerUNet,
    saved_normalised,
)
from studio.core.refiner.pair_set import PairSet, to_images, to_tensor
from studio.core.refiner.parts import PartCritics, WholeFaceCritic


@dataclass(frozen=True)
class RefinerSettings:
    batch: int = 16
    lr: float = 2e-4
    #: The critics' rate. At 2e-4 the whole-crop critic's hinge loss sat at 1.93-1.99 (2
    #: is chance) for 3,800 steps; twice that (steps 3,928-4,527) did not move it either.
    d_lr: float = 2e-4
    l1: float = 10.0
    #: Share of samples whose mask is dilated, and the largest dilation (share of the side).
    dilate_share: float = 0.5
    max_dilate: float = 0.12
    #: The ring a dilation opens is filled with the crop blurred by this (share of side).
    ring_blur: float = 0.05
    #: Weight of the eye and mouth critics in the refiner's loss (0: not trained).
    parts: float = 0.0
    #: Critic steps per refiner step (each on a batch of its own).
    d_steps: int = 1
    #: Average the whole-crop critic's hinge over the face's patches only. Outside the
    #: mask the refined crop *is* the photo, so those patches can only score chance and
    #: held the logged loss near 2 whatever the critic learned about the face.
    face_weighted: bool = False
    #: Spectral norm in the whole-crop critic. With it a fresh critic stayed at chance
    #: against the frozen refiner (150 steps); without it, it learned (network.py).
    critic_sn: bool = True
    #: The render as a guide only (``refiner.guide``): the face blurred by this share of
    #: the crop's side before the refiner sees it (drawn from ``guide.TRAIN_SPREAD`` times
    #: it in training; exactly it at use). 0: the composite as it is.
    guide_blur: float = 0.0
    #: Grey levels of the random smooth tint added to the guide in training (0: none).
    guide_tint: float = 0.0
    #: Share of pairs left out as likely wearing glasses (``refiner.glasses``; 0: none).
    drop_glasses: float = 0.0
    #: The critic's fakes are new draws refined (``draws`` shards, made as at use), not
    #: the own-fit pairs the L1 learns from: the adversarial loss then trains the refiner
    #: on what it meets at use. Set when ``run`` is given draws.
    critic_on_draws: bool = False
    #: Weight of L1 between a refined new draw and its own composite. Without it, the
    #: draws had no tie but the critic's: within 150 steps from step 3,925 the refiner
    #: painted them black nostrils and blown highlights.
    draws_anchor: float = 0.0
    #: L1 to the photo on both crops average-pooled by this factor (1: pixel by pixel).
    #: At 1 the L1 asks for detail the composite does not determine (pores, folds,
    #: stubble) and gets its average: aged faces, a moustache shadow. Pooled, it holds the
    #: face's tone and shape and leaves the fine detail to the critic.
    l1_pool: int = 1
    #: Weight of the whole-face critic (``parts.WholeFaceCritic``) in the refiner's loss
    #: (0: not trained).
    whole_face: float = 0.0
    #: The whole-face critic's fakes are new draws refined (where ``run`` is given
    #: draws). Refined own fits are the photo itself but for detail: no critic here told
    #: them from the photos (hinge loss 2.00). New draws are what dlib tells apart, and
    #: this critic, seeing 32 px, can only move their coarse structure.
    whole_face_on_draws: bool = False
    #: The eye and mouth critics' fakes are new draws refined (where ``run`` is given
    #: draws): our eyes alone took a real face's dlib two-sample figure from 0.62 to 0.77
    #: (models/refiner/README.md, fifth session).
    parts_on_draws: bool = False
    #: Spectral norm in the eye and mouth critics (a state's critics of the other kind
    #: start fresh).
    parts_sn: bool = True
    seed: int = 0

    def uses_draws(self) -> bool:
        """Whether any loss reads new draws (a draws batch costs a refiner pass)."""
        return (self.critic_on_draws or self.draws_anchor > 0
                or (self.parts_on_draws and self.parts > 0)
                or (self.whole_face_on_draws and self.whole_face > 0))


#: The losses written to the run's log.csv, in its columns' order.
LOGGED = ("d", "adv", "l1", "parts_d", "parts_adv", "face_d", "face_adv")
LOG_HEADER = ("step", "hours", "pairs", *LOGGED)


def widen_log(log: Path) -> None:
    """A log begun by an older run (fewer columns) rewritten whole with today's header,
    its rows padded, so that a resumed run appends rows that fit."""
    with open(log, newline="") as fh:
        rows = list(csv.reader(fh))
    if rows and tuple(rows[0]) == LOG_HEADER:
        return
    tmp = log.with_name(log.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LOG_HEADER)
        writer.writerows(r + [""] * (len(LOG_HEADER) - len(r)) for r in rows[1:])
    tmp.replace(log)


class RefinerTrainer:
    def __init__(self, out: Path, config: RefinerConfig | None = None,
                 settings: RefinerSettings | None = None) -> None:
        self.out = out
        self.config, self.settings = config or RefinerConfig(), settings or RefinerSettings()
        config, settings = self.config, self.settings
        torch.manual_seed(settings.seed)
        self.g = RefinerUNet(config)
        self.d = PatchDiscriminator(normalised=settings.critic_sn)
        self.dp = PartCritics(normalised=settings.parts_sn)
        self.dw = WholeFaceCritic()
        self.opt_g = torch.optim.Adam(self.g.parameters(), settings.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), settings.d_lr, betas=(0.5, 0.999))
        self.opt_dp = torch.optim.Adam(self.dp.parameters(), settings.d_lr, betas=(0.5, 0.999))
        self.opt_dw = torch.optim.Adam(self.dw.parameters(), settings.d_lr, betas=(0.5, 0.999))
        self.step, self.seconds = 0, 0.0
        self.rng = np.random.default_rng(settings.seed)

    @property
    def state_path(self) -> Path:
        return self.out / "state.safetensors"

    def networks(self) -> dict[str, torch.Tensor]:
        return {**checkpoint.module_tensors(self.g, "g"), **checkpoint.module_tensors(self.d, "d"),
                **checkpoint.module_tensors(self.dp, "dp"),
                **checkpoint.module_tensors(self.dw, "dw")}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {**self.networks(), **checkpoint.optimizer_tensors(self.opt_g, "opt_g"),
                **checkpoint.optimizer_tensors(self.opt_d, "opt_d"),
                **checkpoint.optimizer_tensors(self.opt_dp, "opt_dp"),
                **checkpoint.optimizer_tensors(self.opt_dw, "opt_dw")}

    def meta(self) -> dict[str, object]:
        return {"step": self.step, "seconds": self.seconds, "config": asdict(self.config),
                "settings": asdict(self.settings)}

    def save_state(self, path: Path | None = None, optimisers: bool = True) -> None:
        """The whole run; without ``optimisers`` (a carry-over small enough to commit)
        Adam restarts from it."""
        tensors = self.tensors() if optimisers else self.networks()
        checkpoint.save(path or self.state_path, tensors, self.meta())

    def load_state(self, path: Path | None = None, optimisers: bool = True) -> None:
        path = path or self.state_path
        tensors, meta = checkpoint.load(path)
        checkpoint.load_module(self.g, tensors, "g", path)
        # A critic of the other kind (with or without spectral norm) starts fresh, and so
        # does its optimiser.
        has_critic = any(k.startswith("d.") for k in tensors)  # a refiner alone: fresh
        same_critic = has_critic and (saved_normalised(tensors, "d.net.0")
                                      == self.settings.critic_sn)
        if same_critic:
            checkpoint.load_module(self.d, tensors, "d", path)
        has_parts = (any(k.startswith("dp.") for k in tensors)
                     and PartCritics.normalised_in(tensors) == self.settings.parts_sn)
        if has_parts:
            checkpoint.load_module(self.dp, tensors, "dp", path)
        has_whole = any(k.startswith("dw.") for k in tensors)  # older states: fresh
        if has_whole:
            checkpoint.load_module(self.dw, tensors, "dw", path)
        if optimisers and any(k.startswith("opt_g.") for k in tensors):
            checkpoint.load_optimizer(self.opt_g, tensors, "opt_g")
            if same_critic:
                checkpoint.load_optimizer(self.opt_d, tensors, "opt_d")
            if has_parts:
                checkpoint.load_optimizer(self.opt_dp, tensors, "opt_dp")
            if has_whole and any(k.startswith("opt_dw.") for k in tensors):
                checkpoint.load_optimizer(self.opt_dw, tensors, "opt_dw")
        self.step, self.seconds = int(meta.get("step", 0)), float(meta.get("seconds", 0.0))
        self.rng = np.random.default_rng([self.settings.seed, self.step])

    def export_weights(self, path: Path, pairs: int) -> None:
        """The refiner alone (what the studio loads), float16, with what it is."""
        tensors = {k: v.half() if v.is_floating_point() else v
                   for k, v in checkpoint.module_tensors(self.g, "g").items()}
        checkpoint.save(path, tensors, {**self.meta(), "pairs": pairs,
                                        "licence": "research only (UTKFace)"})

    def patch_mean(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean of per-patch ``scores``, weighted by the face's share of each patch
        where ``settings.face_weighted`` (plain mean otherwise)."""
        if not self.settings.face_weighted:
            return scores.mean()
        w = F.adaptive_avg_pool2d(mask, scores.shape[-2:])
        return (scores * w).sum() / w.sum().clamp_min(1e-6)

    def critic_step(self, real: torch.Tensor, real_mask: torch.Tensor, fake: torch.Tensor,
                    fake_mask: torch.Tensor) -> float:
        d_real = self.d(torch.cat([real, real_mask], 1))
        d_fake = self.d(torch.cat([fake.detach(), fake_mask], 1))
        loss_d = (self.patch_mean(F.relu(1 - d_real), real_mask)
                  + self.patch_mean(F.relu(1 + d_fake), fake_mask))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return float(loss_d.item())

    def _draw_fakes(self, draws: PairSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of new draws refined, their masks and their composites: the critic's
        fakes."""
        xd, _ = draws.batch(self.rng, self.settings.batch, self.settings)
        return self.g(xd), xd[:, 3:4], xd[:, :3]

    def train_step(self, pairs: PairSet, draws: PairSet | None = None) -> dict[str, float]:
        """One refiner step (and ``d_steps`` critic steps): L1 on own-fit pairs; the
        critics' fakes are the same batch refined, or new ``draws`` refined where given
        and the settings send them there (``critic_on_draws``, ``whole_face_on_draws``,
        ``parts_on_draws``)."""
        s = self.settings
        draws = draws if s.uses_draws() else None
        patch_on_draws = draws is not None and s.critic_on_draws
        for _ in range(max(0, s.d_steps - 1)):
            xd, real_d = pairs.batch(self.rng, s.batch, s)
            with torch.no_grad():
                fake_d, mask_d, _ = (self._draw_fakes(draws) if patch_on_draws
                                     else (self.g(xd), xd[:, 3:4], None))
            self.critic_step(real_d, xd[:, 3:4], fake_d, mask_d)
        x, real = pairs.batch(self.rng, s.batch, s)
        mask = x[:, 3:4]
        fake = self.g(x)
        drawn_fake, drawn_mask, drawn = (self._draw_fakes(draws) if draws is not None
                                         else (None, None, None))
        adv_fake, adv_mask = (drawn_fake, drawn_mask) if patch_on_draws else (fake, mask)
        loss_d = self.critic_step(real, mask, adv_fake, adv_mask)
        parts_d, parts_adv = self.part_step(
            real, drawn_fake if drawn is not None and s.parts_on_draws else fake)
        face_d, face_adv = self.whole_face_step(
            real, drawn_fake if drawn is not None and s.whole_face_on_draws else fake)
        adv = -self.patch_mean(self.d(torch.cat([adv_fake, adv_mask], 1)), adv_mask)
        l1 = self.l1_distance(fake, real)
        loss_g = adv + s.l1 * l1 + s.parts * parts_adv + s.whole_face * face_adv
        if drawn is not None and s.draws_anchor > 0:
            loss_g = loss_g + s.draws_anchor * (drawn_fake - drawn).abs().mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        return {"d": loss_d, "adv": adv.item(), "l1": l1.item(),
                "parts_d": parts_d, "parts_adv": parts_adv.item(), "face_d": face_d,
                "face_adv": face_adv.item()}

    def l1_distance(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean absolute difference, at ``settings.l1_pool`` times coarser (1: per pixel)."""
        k = self.settings.l1_pool
        if k > 1:
            fake, real = F.avg_pool2d(fake, k), F.avg_pool2d(real, k)
        return (fake - real).abs().mean()

    def whole_face_step(self, real: torch.Tensor, fake: torch.Tensor
                        ) -> tuple[float, torch.Tensor]:
        """One hinge step of the whole-face critic; its adversarial loss for the refiner
        (zero, and the critic untouched, where ``settings.whole_face`` is 0)."""
        if self.settings.whole_face <= 0:
            return 0.0, fake.new_zeros(())
        loss = (F.relu(1 - self.dw(real)).mean() + F.relu(1 + self.dw(fake.detach())).mean())
        self.opt_dw.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_dw.step()
        return float(loss.item()), -self.dw(fake).mean()

    def part_step(self, real: torch.Tensor, fake: torch.Tensor
                  ) -> tuple[float, torch.Tensor]:
        """One hinge step of the eye and mouth critics; their adversarial loss for the
        refiner (zero, and the critics untouched, where ``settings.parts`` is 0)."""
        if self.settings.parts <= 0:
            return 0.0, fake.new_zeros(())
        shifts = PartCritics.shifts(self.rng, real.shape[-1])
        d_real = self.dp(real, shifts)
        d_fake = self.dp(fake.detach(), shifts)
        loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
                   for r, f in zip(d_real, d_fake, strict=True))
        self.opt_dp.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_dp.step()
        adv = sum(-o.mean() for o in self.dp(fake, shifts))
        return float(loss.item()), adv

    def sample_grid(self, pairs: PairSet, path: Path, n: int = 8) -> None:
        """Rows: composite, refined, real, for ``n`` fixed pairs (held-out ones)."""
        sigma = blur_sigma(self.settings.guide_blur, pairs._cat["composite"].shape[1])
        guides = np.stack([as_guide(c, m, sigma) for c, m in
                           zip(pairs._cat["composite"][:n], pairs._cat["mask"][:n],
                               strict=True)])
        x = torch.cat([to_tensor(guides),
                       torch.from_numpy(pairs._cat["mask"][:n, None] > 127).float()], 1)
        with torch.no_grad():
            fake = self.g.eval()(x)
        self.g.train()
        rows = [pairs._cat["composite"][:n], to_images(fake), pairs._cat["real"][:n]]
        grid = np.concatenate([np.concatenate(list(r), 1) for r in rows], 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))

    def run(self, pairs: PairSet, minutes: float, preview: PairSet | None = None,
            save_every_s: float = 600, progress: Progress | None = None,
            stop: Stop | None = None, draws: PairSet | None = None) -> None:
        report, stop = progress or no_progress, stop or never_stop
        if minutes <= 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        log = self.out / "log.csv"
        new_log = not log.exists()
        if not new_log:
            widen_log(log)
        start = time.perf_counter()
        last_save = last_refresh = start
        base = self.seconds
        total = max(1, int(minutes * 60))
        with open(log, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new_log:
                writer.writerow(LOG_HEADER)
            while not stop():
                now = time.perf_counter()
                if now - start >= minutes * 60:
                    break
                if now - last_refresh > 300:
                    pairs.refresh()
                    last_refresh = now
                losses = self.train_step(pairs, draws)
                self.seconds = base + time.perf_counter() - start
                if self.step % 25 == 0:
                    writer.writerow([self.step, f"{self.seconds / 3600:.4f}", len(pairs),
                                     *(f"{losses[k]:.4f}" for k in LOGGED)])
                    fh.flush()
                    report(int(now - start), total, f"refiner: step {self.step}, l1 "
                           f"{losses['l1']:.3f}, {len(pairs)} pairs")
                if time.perf_counter() - last_save > save_every_s:
                    self.save_state()
                    if preview is not None and len(preview):
                        self.sample_grid(preview, self.out / "preview.png")
                    last_save = time.perf_counter()
        self.save_state()
        if preview is not None and len(preview):
            self.sample_grid(preview, self.out / "preview.png")
