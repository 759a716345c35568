"""Conditional BEGAN-CS networks (after the WPI thesis), sized for a 2-core CPU.

Generator G(z | y): z (64, uniform in [-1, 1]) concatenated with the five labels y in
[0, 1]; departing from the thesis, y also modulates every decoder block (FiLM), because
labels given only at the input left pose uncontrolled in the thesis and in our baseline.
Discriminator: an autoencoder (encoder to a 64-d code in [-1, 1], decoder) plus a
two-layer label predictor on the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class BeganConfig:
    image_size: int = 64
    z_dim: int = 64
    label_dim: int = 5
    code_dim: int = 64
    base_channels: int = 32
    film: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def widths(self) -> list[int]:
        """Channels at 4, 8, 16, 32 and 64 px: a pyramid, widest at low resolution."""
        c = self.base_channels
        return [8 * c, 8 * c, 4 * c, 2 * c, c]


class Film(nn.Module):
    """Feature-wise scale and shift from the labels."""

    def __init__(self, label_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(label_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(y)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class UpBlock(nn.Module):
    """Upsample, then one or two 3x3 convolutions; one only at 32 and 64 px, where a
    second convolution would cost most of the CPU time."""

    def __init__(self, cin: int, cout: int, label_dim: int | None, double: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1) if double else None
        self.film = Film(label_dim, cout) if label_dim else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        if self.conv2 is not None:
            h = self.conv2(F.elu(h))
        if self.film is not None:
            h = self.film(h, y)
        return F.elu(h)


class Decoder(nn.Module):
    """Code (plus labels when conditional) to a 64x64 image in [-1, 1]."""

    def __init__(self, cfg: BeganConfig, in_dim: int, conditional: bool) -> None:
        super().__init__()
        w = cfg.widths()
        self.w0 = w[0]
        self.fc = nn.Linear(in_dim, 4 * 4 * w[0])
        label_dim = cfg.label_dim if conditional and cfg.film else None
        self.conv0 = nn.Conv2d(w[0], w[0], 3, padding=1)
        self.blocks = nn.ModuleList(UpBlock(w[i], w[i + 1], label_dim, double=i < 2)
                                    for i in range(4))
        self.out = nn.Conv2d(w[-1], 3, 3, padding=1)

    def forward(self, v: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(v).view(-1, self.w0, 4, 4)
        h = F.elu(self.conv0(h))
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(h))


class Encoder(nn.Module):
    def __init__(self, cfg: BeganConfig) -> None:
        super().__init__()
        w = cfg.widths()[::-1]  # 64 px first
        self.conv0 = nn.Conv2d(3, w[0], 3, padding=1)
        self.downs = nn.ModuleList()
        for i in range(4):
            layers: list[nn.Module] = []
            if i >= 2:  # a second convolution only at 16 and 8 px, as in the decoder
                layers += [nn.Conv2d(w[i], w[i], 3, padding=1), nn.ELU()]
            layers += [nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1), nn.ELU()]
            self.downs.append(nn.Sequential(*layers))
        self.fc = nn.Linear(4 * 4 * w[-1], cfg.code_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.elu(self.conv0(x))
        for down in self.downs:
            h = down(h)
        return torch.tanh(self.fc(h.flatten(1)))


class Generator(nn.Module):
    def __init__(self, cfg: BeganConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.decoder = Decoder(cfg, cfg.z_dim + cfg.label_dim, conditional=True)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, y], dim=1), y)


class Discriminator(nn.Module):
    """Autoencoder discriminator with an auxiliary label predictor on the code."""

    def __init__(self, cfg: BeganConfig) -> None:
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, cfg.code_dim, conditional=False)
        self.predictor = nn.Sequential(nn.Linear(cfg.code_dim, 128), nn.ELU(),
                                       nn.Linear(128, cfg.label_dim), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        code = self.encoder(x)
        return self.decoder(code), code, self.predictor(code)


def reconstruction_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """BEGAN's L(v) = |v - D(v)|, as a mean absolute error."""
    return (x - recon).abs().mean()


def constraint_loss(z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """BEGAN-CS's L_C = ||z - Enc(G(z))||, mean squared over the batch."""
    return ((z - code) ** 2).mean()


def update_k(k: float, lambda_k: float, gamma: float, loss_real: float, loss_fake: float) -> float:
    """k_{t+1} = clip(k_t + lambda (gamma L(x) - L(G(z))), 0, 1)."""
    return float(min(max(k + lambda_k * (gamma * loss_real - loss_fake), 0.0), 1.0))


def convergence(gamma: float, loss_real: float, loss_fake: float) -> float:
    """BEGAN's M = L(x) + |gamma L(x) - L(G(z))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)
