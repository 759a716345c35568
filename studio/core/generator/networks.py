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
    # Issue 16. The defaults are the legacy layers, so files whose metadata lacks these keys
    # load exactly as trained; new runs choose "bilinear" and "avgpool" (see NEW_RUN_LAYERS).
    upsample: str = "nearest"  # "nearest" (legacy) or "bilinear", each followed by a 3x3 conv
    downsample: str = "stride"  # "stride" (3x3 stride-2 conv, legacy) or "avgpool" (2x2, conv)

    def __post_init__(self) -> None:
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', not {self.upsample!r}")
        if self.downsample not in ("stride", "avgpool"):
            raise ValueError(f"downsample must be 'stride' or 'avgpool', not {self.downsample!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def widths(self) -> list[int]:
        """Channels at 4, 8, 16, 32 and 64 px: a pyramid, widest at low resolution."""
        c = self.base_channels
        return [8 * c, 8 * c, 4 * c, 2 * c, c]


#: The layers new training runs use: bilinear upsampling in the decoders, and average pooling
#: before the encoder's 3x3 convolution instead of a stride-2 one, whose uneven overlap
#: (kernel 3, stride 2) sends a period-2 gradient back into G: the checkerboard.
NEW_RUN_LAYERS = {"upsample": "bilinear", "downsample": "avgpool"}


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

    def __init__(self, cin: int, cout: int, label_dim: int | None, double: bool,
                 mode: str = "nearest") -> None:
        super().__init__()
        self.mode = mode
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1) if double else None
        self.film = Film(label_dim, cout) if label_dim else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "nearest":
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        else:
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
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
        self.blocks = nn.ModuleList(UpBlock(w[i], w[i + 1], label_dim, double=i < 2,
                                            mode=cfg.upsample) for i in range(4))
        self.out = nn.Conv2d(w[-1], 3, 3, padding=1)

    def forward(self, v: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(v).view(-1, self.w0, 4, 4)
        h = F.elu(self.conv0(h))
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(h))


class PoolConv(nn.Conv2d):
    """2x2 average pooling, then the convolution: every input pixel weighs the same, unlike
    under a 3x3 stride-2 convolution. Same parameters and cost as that convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.avg_pool2d(x, 2))


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
            if cfg.downsample == "stride":
                layers += [nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1), nn.ELU()]
            else:
                layers += [PoolConv(w[i], w[i + 1], 3, padding=1), nn.ELU()]
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


def update_k(k: float, lambda_k: float, gamma: float, loss_real: float, loss_fake: float,
             k_min: float = 0.0) -> float:
    """k_{t+1} = clip(k_t + lambda (gamma L(x) - L(G(z))), k_min, 1). A floor above 0 keeps
    the discriminator pushing back on fakes (k sat at 0 from step 15,300 in the shipped run)."""
    return float(min(max(k + lambda_k * (gamma * loss_real - loss_fake), k_min), 1.0))


def convergence(gamma: float, loss_real: float, loss_fake: float) -> float:
    """BEGAN's M = L(x) + |gamma L(x) - L(G(z))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)


# -- DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
# Training"), after the authors' PyTorch code: the same transforms, ratios and fills.
def _per_image(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (_per_image(x) - 0.5)


def _saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_image(x) * 2) + mean


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_per_image(x) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; uncovered pixels become 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + dy + 1, 0, h + 1)
    gx = torch.clamp(gx + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` of the size per image, centred anywhere."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch)
              & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw))
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS = {"color": (_brightness, _saturation, _contrast), "translation": (_translation,),
            "cutout": (_cutout,)}


def check_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in AUGMENTS]
    if unknown:
        raise ValueError(f"Unknown DiffAugment transform(s) {unknown}; use {sorted(AUGMENTS)}.")
    return names


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Random, differentiable augmentation, fresh per image; ``policy`` "" returns x."""
    for name in check_policy(policy):
        for fn in AUGMENTS[name]:
            x = fn(x)
    return x.contiguous(memory_format=torch.channels_last) if policy else x
