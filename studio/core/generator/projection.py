"""The hinge objective's projection discriminator and its penalties (issue 16): the lever
that replaces BEGAN's autoencoder discriminator while the generator stays the thesis's
network. The hinge step that uses them is ``objectives.HingeObjective``.

Why: BEGAN's discriminator scores a face by how well it reconstructs it, and an L1
autoencoder reconstructs smooth faces best, so its generator drifts towards blur; with a
narrow CPU-sized network that is what our identity-disjoint BEGAN run drew after 11,000
steps. A hinge loss on a spectrally normalised classifier (Miyato et al. 2018) rewards
detail directly. The labels enter D twice: as a projection term <embed(y), phi(x)>
(Miyato & Koyama 2018), so that D judges whether a face fits its labels, and through the
same auxiliary label predictor as BEGAN-CS, trained on real faces, that G must satisfy.
An optional mode-seeking term keeps faces apart when only z differs, an optional R1
penalty keeps D smooth around the real faces, and an optional full-resolution stage lets D
look at 64 px detail (thin streaks) before it first pools.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from studio.core.generator.networks import BeganConfig, PoolConv

#: Width of D's feature vector, on which the projection and the label predictor sit.
FEATURES = 256
#: Starting gain of the optional full-resolution stage (``ProjectionDiscriminator``).
FULL_RES_GAIN = 0.1


class ProjectionDiscriminator(nn.Module):
    """64 px image and labels to a realism logit and a label estimate.

    The encoder mirrors the BEGAN encoder's pyramid (``cfg.widths`` reversed, 2x2 pooling
    before each 3x3 convolution, so no period-2 gradient reaches G), every layer spectrally
    normalised, with leaky ReLUs as in SN-GAN.

    ``full_res`` adds a residual 3x3 convolution at 64 px, h + g * lrelu(conv(h)), whose
    kernel starts as the identity (Dirac) and g at ``FULL_RES_GAIN``: a D carried over from
    a run without it starts out as that D up to a scale of its features, and every weight
    of the stage gets a gradient from the first step. (With g at 0, as SAGAN starts its
    attention, the stage got no gradient and g stayed within 1e-4 of 0 for 1,500 steps.)"""

    #: State-dict prefixes of the full-resolution stage: what a D carried over from a run
    #: without it may lack (``HingeObjective.may_lack``).
    FULL_RES_KEYS = ("stage64.", "gain64")

    def __init__(self, cfg: BeganConfig, full_res: bool = False) -> None:
        super().__init__()
        w = cfg.widths()[::-1]  # 64 px first
        self.conv0 = spectral_norm(nn.Conv2d(3, w[0], 3, padding=1))
        self.full_res = full_res
        if full_res:
            conv = nn.Conv2d(w[0], w[0], 3, padding=1)
            nn.init.dirac_(conv.weight)  # spectral norm 1: kept as it is
            nn.init.zeros_(conv.bias)
            self.stage64 = spectral_norm(conv)
            self.gain64 = nn.Parameter(torch.tensor(FULL_RES_GAIN))
        self.downs = nn.ModuleList()
        for i in range(4):
            layers: list[nn.Module] = []
            if i >= 1:  # a second convolution from 32 px down; at 64 px it costs most
                layers += [spectral_norm(nn.Conv2d(w[i], w[i], 3, padding=1)),
                           nn.LeakyReLU(0.2)]
            layers += [spectral_norm(PoolConv(w[i], w[i + 1], 3, padding=1)), nn.LeakyReLU(0.2)]
            self.downs.append(nn.Sequential(*layers))
        self.fc = spectral_norm(nn.Linear(4 * 4 * w[-1], FEATURES))
        self.out = spectral_norm(nn.Linear(FEATURES, 1))
        self.embed = spectral_norm(nn.Linear(cfg.label_dim, FEATURES, bias=False))
        self.predictor = nn.Sequential(nn.Linear(FEATURES, 128), nn.LeakyReLU(0.2),
                                       nn.Linear(128, cfg.label_dim), nn.Sigmoid())

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.leaky_relu(self.conv0(x), 0.2)
        if self.full_res:
            h = h + self.gain64 * F.leaky_relu(self.stage64(h), 0.2)
        for down in self.downs:
            h = down(h)
        phi = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        logit = self.out(phi).squeeze(1) + (self.embed(y) * phi).sum(1)
        return logit, self.predictor(phi)


def r1_penalty(D: ProjectionDiscriminator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of D's gradient with respect to real faces (R1, Mescheder et al.
    2018). Why: a D that is flat around the reals cannot reward detail that is not in
    them, such as thin streaks, nor overfit single training faces. In float32, outside
    autocast, because it differentiates a gradient."""
    x = x.detach().float().requires_grad_(True)
    logit, _ = D(x, y)
    (grad,) = torch.autograd.grad(logit.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def mode_spread(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """How far apart the two halves' faces are per unit of z distance: MSGAN's ratio
    (Mao et al. 2019, "Mode Seeking GANs"); under ``mode_seeking`` G is pushed to raise it,
    so that labels do not settle every z on one face."""
    half = len(fake) // 2
    image = (fake[:half] - fake[half:]).abs().mean()
    return image / (z[:half] - z[half:]).abs().mean()
