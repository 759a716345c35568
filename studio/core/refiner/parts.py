"""Eye and mouth critics: discriminators that see only the eyes' band and the mouth.

At step 3,131 the pixel-space two-sample test had reached its target (0.645) while the one
in dlib's face space stalled near 0.79: the grain was learnt, the structure (painted
irises, a drawn mouth) was not. Issue 27's first remedy for that is to give the eyes and
the mouth their own discriminator, so that their share of the adversarial signal is not
diluted by the cheek and the forehead patches of the whole-crop ``PatchDiscriminator``.

The crops are framed by the landmark box (``refiner.crops``), so the parts sit at nearly
fixed places; the bands were read off the mean of 400 real training crops (eyes on row
43, mouth on row 86 at 128 px) and are jittered a few pixels each step so that a turned
head does not fall out of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.refiner.network import PatchDiscriminator, saved_normalised


@dataclass(frozen=True)
class PartBand:
    """A band of the crop, as shares of its side (so it holds at any network size)."""

    name: str
    cy: float
    cx: float
    height: float
    width: float

    def window(self, side: int, dy: int = 0, dx: int = 0) -> tuple[slice, slice]:
        h, w = round(self.height * side), round(self.width * side)
        y0 = min(max(round(self.cy * side - h / 2) + dy, 0), side - h)
        x0 = min(max(round(self.cx * side - w / 2) + dx, 0), side - w)
        return slice(y0, y0 + h), slice(x0, x0 + w)


#: Eyes: rows 27-59 and columns 16-112 at 128 px; mouth: rows 68-104, columns 32-96.
PARTS = (PartBand("eyes", 43 / 128, 0.5, 0.25, 0.75),
         PartBand("mouth", 86 / 128, 0.5, 0.28, 0.5))
#: Largest shift of the bands, as a share of the side (4 px at 128).
JITTER = 0.03


class PartCritics(nn.Module):
    """One hinge critic per band of ``PARTS``: a ``PatchDiscriminator`` of base 32 on the
    band's RGB, without the middle layer (each output sees about 46 px: an eye and its
    lids, or most of the mouth); with spectral norm unless ``normalised`` is False."""

    def __init__(self, normalised: bool = True) -> None:
        super().__init__()
        self.critics = nn.ModuleDict({
            p.name: PatchDiscriminator(32, 3, middle=False, normalised=normalised)
            for p in PARTS})

    @staticmethod
    def normalised_in(tensors: dict, prefix: str = "dp") -> bool:
        """Whether saved part critics (under ``prefix``) had spectral norm."""
        return saved_normalised(tensors, f"{prefix}.critics.{PARTS[0].name}.net.0")

    @staticmethod
    def shifts(rng: np.random.Generator, side: int) -> list[tuple[int, int]]:
        """One random shift per band, used for the real and the refined batch alike."""
        j = max(1, round(JITTER * side))
        return [(int(rng.integers(-j, j + 1)), int(rng.integers(-j, j + 1))) for _ in PARTS]

    def forward(self, images: torch.Tensor, shifts: list[tuple[int, int]]
                ) -> list[torch.Tensor]:
        side = images.shape[-1]
        out = []
        for band, (dy, dx) in zip(PARTS, shifts, strict=True):
            ys, xs = band.window(side, dy, dx)
            out.append(self.critics[band.name](images[:, :, ys, xs]))
        return out


#: The whole-face critic sees the crop this many times smaller (32 px at 128).
WHOLE_FACE_POOL = 4


class WholeFaceCritic(nn.Module):
    """A critic of the whole face's structure: the crop shrunk 4 times (32 px at 128),
    seen by a ``PatchDiscriminator`` whose every output sees the whole shrunk crop (about
    54 px of receptive field on 32). The whole-crop critic sees 34 px of 128, the
    part critics an eye or the mouth; none sees how the eyes, nose, mouth and outline sit
    together, which is what dlib's descriptor reads (issue 27: its two-sample test stalled
    near 0.79 while the pixel-space one fell). Without spectral norm, which held the
    whole-crop critic at chance."""

    def __init__(self) -> None:
        super().__init__()
        self.critic = PatchDiscriminator(32, 3, normalised=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.critic(F.avg_pool2d(images, WHOLE_FACE_POOL))
