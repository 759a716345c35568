"""The refiner wing's fixtures that more than one of its test files needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture()
def pair_folder(tmp_path) -> Path:
    """A shard of 12 synthetic pairs: noise composites, a disc mask, real = composite
    brightened inside the mask (what a refiner can learn in a few steps)."""
    rng = np.random.default_rng(0)
    comp = rng.integers(60, 120, (12, 32, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:32, :32]
    mask = np.repeat((((yy - 16) ** 2 + (xx - 16) ** 2) < 100)[None].astype(np.uint8) * 255,
                     12, 0)
    real = comp.copy()
    real[mask > 0] = np.clip(real[mask > 0].astype(int) + 60, 0, 255).astype(np.uint8)
    folder = tmp_path / "pairs"
    folder.mkdir()
    np.savez(folder / "pairs_0000.npz", composite=comp, real=real, mask=mask,
             sha256=np.array([f"{i:064x}" for i in range(12)]))
    return folder


@pytest.fixture(scope="module")
def face_crop(analyzer, utk_face) -> tuple[np.ndarray, np.ndarray]:
    """A real face cut with the refiner's framing, and a disc mask over its middle."""
    from studio.core.refiner.crops import CropBox, cut

    face = analyzer.analyze(utk_face).faces[0]
    crop = cut(utk_face, CropBox.around(face.landmarks))
    yy, xx = np.mgrid[:128, :128]
    mask = (((yy - 64) ** 2 + (xx - 64) ** 2) < 40 ** 2).astype(np.uint8) * 255
    return crop, mask


@pytest.fixture()
def small_config():
    """The small refiner the synthetic pairs (``pair_folder``, 32 px) train, on one torch
    thread as training runs here."""
    import torch

    from studio.core.refiner.network import RefinerConfig

    torch.set_num_threads(1)
    return RefinerConfig(base=8, depth=2, size=32)
