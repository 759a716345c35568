"""The adversarial objectives a generator run trains with, one strategy each.

An objective declares, in one place, what sets it apart: the settings it was measured with
(models/generator/README.md), the settings it refuses, its discriminator, its Adam betas,
its training step, and which of its discriminator's tensors a warm start may lack. The
``Trainer`` picks ``OBJECTIVES[settings.objective]`` and never asks for an objective by
name; a new objective is one more class registered here.

Why torch is imported inside the methods: ``studio --help`` builds the ``train`` flags
from ``TrainSettings``, which reads the defaults here, and must not load torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

    from studio.core.generator.networks import BeganConfig


class ObjectiveSettings(Protocol):
    """The settings an objective's step reads (``TrainSettings`` has them all)."""

    batch: int
    alpha: float
    gamma: float
    lambda_k: float
    label_weight: float
    label_ramp_steps: int
    constraint_in_generator: bool
    lr_decay_every: int
    k_min: float
    diffaugment: str
    mode_seeking: float
    r1: float
    r1_every: int
    d_full_res: bool
    config: BeganConfig


class Run(Protocol):
    """What a step drives: the ``Trainer``'s networks, optimisers and counters."""

    s: ObjectiveSettings
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: int
    k: float
    device: torch.device
    amp: bool
    amp_dtype: torch.dtype

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def label_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def update_ema(self) -> None: ...
    def lr_at(self, step: int) -> float: ...
    def set_lr(self, lr: float) -> None: ...


class Objective:
    """One adversarial objective. ``defaults`` fills the ``TrainSettings`` fields left at
    None (the command line's flags left out); ``base_channels`` sizes a new run's
    networks."""

    name: ClassVar[str]
    defaults: ClassVar[Mapping[str, object]]
    base_channels: ClassVar[int]
    betas: ClassVar[tuple[float, float]]

    def validate(self, s: ObjectiveSettings) -> None:
        """Refuse settings this objective cannot train with (ValueError)."""
        if s.r1 < 0 or s.r1_every < 1:
            raise ValueError("r1 must be >= 0 (hinge only) and r1_every >= 1.")

    def discriminator(self, s: ObjectiveSettings) -> nn.Module:
        raise NotImplementedError

    def step(self, run: Run) -> dict[str, float]:
        """One D and one G update; the losses to log, by name."""
        raise NotImplementedError

    def may_lack(self, s: ObjectiveSettings) -> Mapping[str, tuple[str, ...]]:
        """State-dict prefixes, by network, that a warm start may lack: parts new in this
        run that start from an initialisation which carries the saved network on."""
        return {}


class BeganObjective(Objective):
    """The thesis's BEGAN-CS: an autoencoder D whose reconstruction error is the realism
    score, balanced by k_t, with the constraint loss L_C tying D's code to z."""

    name = "began"
    defaults = MappingProxyType({"lr": 1e-4, "label_weight": 0.1, "mode_seeking": 0.0,
                                 "diffaugment": "color,translation,cutout"})
    base_channels = 16
    betas = (0.5, 0.999)

    def validate(self, s: ObjectiveSettings) -> None:
        super().validate(s)
        if s.r1:
            raise ValueError("r1 must be >= 0 (hinge only) and r1_every >= 1.")
        if s.d_full_res:
            raise ValueError("d_full_res is a stage of the hinge objective's discriminator.")

    def discriminator(self, s: ObjectiveSettings) -> nn.Module:
        from studio.core.generator.networks import Discriminator

        return Discriminator(s.config)

    def d_pass(self, run: Run, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor, torch.Tensor]:
        """D's reconstruction of the augmented images (BEGAN's adversarial term), and its
        code and labels of the plain ones (L_C and the label loss stay true): one encoder
        batch. Returns (reconstruction target, reconstruction, code, labels)."""
        import torch

        from studio.core.generator.networks import diff_augment

        D, policy = run.D, run.s.diffaugment
        if not policy:
            rec, code, pred = D(images)
            return images, rec, code, pred
        n = len(images)
        aug = diff_augment(images, policy)
        codes = D.encoder(torch.cat([aug, images]))
        return aug, D.decoder(codes[:n]), codes[n:], D.predictor(codes[n:])

    def step(self, run: Run) -> dict[str, float]:
        import torch

        from studio.core.generator.networks import (
            constraint_loss,
            convergence,
            reconstruction_loss,
            update_k,
        )

        s, G = run.s, run.G
        x, y = run.batch()
        z = torch.rand(s.batch, s.config.z_dim, device=run.device) * 2 - 1
        w_label = s.label_weight * min(1.0, run.step / max(s.label_ramp_steps, 1))
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp):
            fake = G(z, y)
            x_in, rec_real, _, pred_real = self.d_pass(run, x)
            fake_in, rec_fake, code_fake, _ = self.d_pass(run, fake.detach())
            l_real = reconstruction_loss(x_in.float(), rec_real.float())
            l_fake = reconstruction_loss(fake_in.float(), rec_fake.float())
            l_c = constraint_loss(z, code_fake.float())
            l_label_real = run.label_loss(pred_real, y)
            loss_d = l_real - run.k * l_fake + s.alpha * l_c + w_label * l_label_real
        run.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        run.opt_d.step()

        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp):
            g_in, rec_g, code_g, pred_g = self.d_pass(run, fake)
            l_g = reconstruction_loss(g_in.float(), rec_g.float())
            l_label_g = run.label_loss(pred_g, y)
            loss_g = l_g + w_label * l_label_g
            if s.constraint_in_generator:
                loss_g = loss_g + s.alpha * constraint_loss(z, code_g.float())
        run.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        run.opt_g.step()
        run.update_ema()

        lr_, lf_ = l_real.item(), l_fake.item()
        run.k = update_k(run.k, s.lambda_k, s.gamma, lr_, lf_, s.k_min)
        run.step += 1
        if s.lr_decay_every and run.step % s.lr_decay_every == 0:
            run.set_lr(run.lr_at(run.step))
        return {"L_real": lr_, "L_fake": lf_, "L_C": l_c.item(), "label_real":
                l_label_real.item(), "label_G": l_label_g.item(), "k": run.k,
                "M": convergence(s.gamma, lr_, lf_)}


class HingeObjective(Objective):
    """A hinge loss on a spectrally normalised projection D (projection.py): it rewards
    detail directly, where BEGAN's L1 autoencoder rewards smooth faces. Hinge's D learns
    the labels of augmented reals, so its defaults put no cutout over the mouth."""

    name = "hinge"
    defaults = MappingProxyType({"lr": 2e-4, "label_weight": 0.5, "mode_seeking": 1.0,
                                 "diffaugment": "color,translation"})
    base_channels = 32
    betas = (0.0, 0.99)  # StyleGAN2 / DiffAugment

    def discriminator(self, s: ObjectiveSettings) -> nn.Module:
        from studio.core.generator.projection import ProjectionDiscriminator

        return ProjectionDiscriminator(s.config, s.d_full_res)

    def may_lack(self, s: ObjectiveSettings) -> Mapping[str, tuple[str, ...]]:
        from studio.core.generator.projection import ProjectionDiscriminator

        return {"D": ProjectionDiscriminator.FULL_RES_KEYS} if s.d_full_res else {}

    def step(self, run: Run) -> dict[str, float]:
        """D sees DiffAugment-ed reals and fakes in one batch (Zhao et al. 2020: the same
        transforms on both, in both steps) and learns the labels of the augmented reals,
        whose colour and position change but not their smile, gender or pose."""
        import torch
        from torch.nn import functional as F

        from studio.core.generator.networks import diff_augment
        from studio.core.generator.projection import mode_spread, r1_penalty

        s, G, D = run.s, run.G, run.D
        x, y = run.batch()
        n, half = len(x), len(x) // 2
        z = torch.rand(n, s.config.z_dim, device=run.device) * 2 - 1
        # With mode seeking, the fakes' second half repeats the first half's labels, so
        # that each pair shares its labels and differs only in z.
        y_fake = torch.cat([y[:half], y[:half], y[2 * half:]]) if s.mode_seeking else y
        w_label = s.label_weight * min(1.0, run.step / max(s.label_ramp_steps, 1))
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp):
            fake = G(z, y_fake)
            both = diff_augment(torch.cat([x, fake.detach()]), s.diffaugment)
            logits, preds = D(both, torch.cat([y, y_fake]))
            logits = logits.float()
            d_real = F.relu(1 - logits[:n]).mean()
            d_fake = F.relu(1 + logits[n:]).mean()
            label_real = run.label_loss(preds[:n], y)
            loss_d = d_real + d_fake + s.label_weight * label_real
        run.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        run.opt_d.step()
        if s.r1 and run.step % s.r1_every == 0:  # lazy R1: every r1_every steps, scaled up
            penalty = r1_penalty(D, diff_augment(x, s.diffaugment), y)
            run.opt_d.zero_grad(set_to_none=True)
            (s.r1 / 2 * s.r1_every * penalty).backward()
            run.opt_d.step()

        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp):
            logit_g, pred_g = D(diff_augment(fake, s.diffaugment), y_fake)
            g_adv = -logit_g.float().mean()
            label_g = run.label_loss(pred_g, y_fake)
            loss_g = g_adv + w_label * label_g
            spread = mode_spread(fake[:2 * half].float(), z[:2 * half])
            if s.mode_seeking:
                loss_g = loss_g + s.mode_seeking / (spread + 1e-5)
        run.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        run.opt_g.step()
        run.update_ema()
        run.step += 1
        return {"D_real": d_real.item(), "D_fake": d_fake.item(), "G_adv": g_adv.item(),
                "label_real": label_real.item(), "label_G": label_g.item(),
                "real_minus_fake": (logits[:n].mean() - logits[n:].mean()).item(),
                "mode_spread": spread.item()}


#: The objectives a run can train with (``TrainSettings.objective``), by name; the
#: command line's ``--objective`` offers each. Register a new one by adding its instance.
OBJECTIVES: dict[str, Objective] = {o.name: o for o in (HingeObjective(), BeganObjective())}
#: What ``studio train`` and ``TrainSettings`` train with when not told: the objective the
#: shipped default generator was trained with (models/generator/README.md).
DEFAULT_OBJECTIVE = HingeObjective.name
#: What a saved run that names no objective was trained with: runs from before there was
#: a choice were BEGAN-CS.
UNNAMED_OBJECTIVE = BeganObjective.name
