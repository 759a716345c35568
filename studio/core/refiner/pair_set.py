"""The refiner's training pairs in memory and the batches drawn from them: each pair
flipped at random, its mask dilated on a share of samples (the opened ring blurred, so
that the network learns to paint a new outline), and the composite given as a guide where
the settings ask for one; pairs likely to wear glasses left out on request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from studio.core.refiner.crops import grow_mask
from studio.core.refiner.glasses import likely_glasses
from studio.core.refiner.guide import TRAIN_SPREAD, as_guide, blur_sigma, random_tint

if TYPE_CHECKING:
    from studio.core.refiner.training import RefinerSettings


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_images(t: torch.Tensor) -> np.ndarray:
    return ((t.clamp(-1, 1) + 1) * 127.5 + 0.5).byte().permute(0, 2, 3, 1).numpy()


def open_ring(composite: np.ndarray, mask: np.ndarray, radius: int, blur: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """The mask grown by ``radius`` pixels and the composite with the new ring blurred:
    what the network sees when it is to paint a new outline."""
    grown = grow_mask(mask, radius)
    ring = (grown > 127) & (mask <= 127)
    soft = cv2.GaussianBlur(composite, (0, 0), blur)
    out = composite.copy()
    out[ring] = soft[ring]
    return out, grown


class PairSet:
    """Every pair of a folder of shards in memory; ``refresh`` takes shards written since
    (the pairs are still being made while training starts)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[Path] = set()
        self.parts: dict[str, list[np.ndarray]] = {"composite": [], "real": [], "mask": [],
                                                   "sha256": []}
        self.refresh()

    def refresh(self) -> int:
        new = 0
        for path in sorted(self.folder.glob("pairs_*.npz")):
            if path in self.seen or ".tmp" in path.name:
                continue
            with np.load(path) as data:
                for k in self.parts:
                    self.parts[k].append(data[k])
                new += len(data["mask"])
            self.seen.add(path)
        self._cat = {k: np.concatenate(v) for k, v in self.parts.items() if v}
        self._usable: tuple[float, int, np.ndarray] | None = None
        return new

    def usable(self, drop_glasses: float) -> np.ndarray:
        """Indices of the pairs trained on: all but the ``drop_glasses`` share most likely
        to wear glasses (scored once per refresh)."""
        if self._usable is None or self._usable[:2] != (drop_glasses, len(self)):
            keep = np.arange(len(self))
            if drop_glasses > 0 and len(self):
                glasses = likely_glasses(self._cat["real"], self._cat["composite"],
                                         self._cat["mask"], drop_glasses)
                keep = np.flatnonzero(~glasses)
            self._usable = (drop_glasses, len(self), keep)
        return self._usable[2]

    def __len__(self) -> int:
        return len(self._cat.get("mask", ()))

    @property
    def sha256(self) -> list[str]:
        return [str(s) for s in self._cat.get("sha256", ())]

    def batch(self, rng: np.random.Generator, n: int, settings: RefinerSettings
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (n, 4, S, S), targets (n, 3, S, S)), flipped and dilated at random."""
        pool = self.usable(settings.drop_glasses)
        idx = pool[rng.integers(0, len(pool), n)]
        comp, real, mask = (self._cat[k][idx].copy() for k in ("composite", "real", "mask"))
        side = comp.shape[1]
        for i in range(n):
            if rng.random() < 0.5:
                comp[i], real[i], mask[i] = comp[i, :, ::-1], real[i, :, ::-1], mask[i, :, ::-1]
            if rng.random() < settings.dilate_share:
                r = int(rng.integers(1, max(2, int(settings.max_dilate * side) + 1)))
                comp[i], mask[i] = open_ring(np.ascontiguousarray(comp[i]),
                                             np.ascontiguousarray(mask[i]), r,
                                             settings.ring_blur * side)
            if settings.guide_blur > 0 or settings.guide_tint > 0:
                sigma = blur_sigma(settings.guide_blur, side) * rng.uniform(*TRAIN_SPREAD)
                tint = (random_tint(rng, side, settings.guide_tint)
                        if settings.guide_tint > 0 else None)
                comp[i] = as_guide(np.ascontiguousarray(comp[i]), mask[i], sigma, tint)
        x = torch.cat([to_tensor(comp), torch.from_numpy(mask[:, None] > 127).float()], 1)
        return x, to_tensor(real)
