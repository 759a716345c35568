"""The refiner's networks: a U-Net that predicts a change inside the face mask, and the
hinge-loss patch discriminator it is trained against.

Inputs are (B, 4, S, S): the composite's RGB in [-1, 1] and the face mask in {0, 1}. The
U-Net's output is the composite plus a tanh residual weighted by a softened mask, so
outside the mask it is the composite exactly and it starts as the identity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


@dataclass(frozen=True)
class RefinerConfig:
    """The U-Net's shape; saved in the weights' metadata so a file says what it holds.
    Base 16 (1.2 M weights): base 32 took 3x as long a step on one CPU thread (5.7 s
    against 1.8 s at batch 16), for a budget counted in CPU hours."""

    base: int = 16
    depth: int = 4
    size: int = 128

    def to_meta(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> RefinerConfig:
        return cls(**{k: int(meta[k]) for k in ("base", "depth", "size") if k in meta})


def _groups(ch: int) -> int:
    return 8 if ch % 8 == 0 else 1


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(_groups(cout), cout), nn.SiLU(),
            nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(_groups(cout), cout), nn.SiLU())


def soft_mask(mask: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """The mask feathered inward: 0 outside, rising to 1 a few pixels inside its edge."""
    r = max(1, round(2 * sigma))
    x = torch.arange(-r, r + 1, dtype=mask.dtype, device=mask.device)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    m = F.pad(mask, (r, r, r, r), mode="replicate")
    m = F.conv2d(m, k.view(1, 1, 1, -1))
    m = F.conv2d(m, k.view(1, 1, -1, 1))
    return m * mask


class RefinerUNet(nn.Module):
    def __init__(self, config: RefinerConfig = RefinerConfig()) -> None:
        super().__init__()
        self.config = config
        chans = [config.base * min(2 ** i, 8) for i in range(config.depth + 1)]
        self.stem = _Block(4, chans[0])
        self.down = nn.ModuleList(_Block(chans[i], chans[i + 1], 2)
                                  for i in range(config.depth))
        self.up = nn.ModuleList(_Block(chans[i + 1] + chans[i], chans[i])
                                for i in reversed(range(config.depth)))
        self.head = nn.Conv2d(chans[0], 3, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips.pop()
        for block in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], 1))
        return torch.tanh(self.head(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The refined crop in [-1, 1]: the composite changed inside the mask only."""
        rgb, mask = x[:, :3], x[:, 3:4]
        return torch.clamp(rgb + soft_mask(mask) * self.residual(x), -1.0, 1.0)


class PatchDiscriminator(nn.Module):
    """Real or refined, patch by patch: three strided convolutions with spectral norm, a
    3x3 one where ``middle`` (about 34 px receptive field at 128 px; without it, as the
    eye and mouth critics of ``refiner.parts`` use it, about 46 px on their bands), and a
    3x3 head. Without spectral norm (``normalised=False``) a fresh critic learned where
    one with it did not: against the refiner frozen at step 4,405, 150 steps took its
    accuracy on face patches to 0.557, while the normalised one stayed at 0.50."""

    def __init__(self, base: int = 64, cin: int = 4, middle: bool = True,
                 normalised: bool = True) -> None:
        super().__init__()
        norm = spectral_norm if normalised else (lambda conv: conv)
        layers: list[nn.Module] = []
        ch = cin
        for out in (base, base * 2, base * 4):
            layers += [norm(nn.Conv2d(ch, out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            ch = out
        if middle:
            layers += [norm(nn.Conv2d(ch, ch, 3, 1, 1)), nn.LeakyReLU(0.2)]
        layers += [norm(nn.Conv2d(ch, 1, 3, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def saved_normalised(tensors: dict, conv: str) -> bool:
    """Whether the saved convolution ``conv`` (its key prefix, e.g. "d.net.0") had spectral
    norm, under either of torch's two spellings of it."""
    return f"{conv}.weight_orig" in tensors or f"{conv}.parametrizations.weight.original" in tensors
