"""Pairs whose photo wears glasses are left out of the refiner's training (issue 27: it
half-painted glasses from their arms)."""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.refiner.glasses import BRIDGE, bridge_score, likely_glasses
from studio.core.refiner.pair_set import PairSet
from studio.core.refiner.training import RefinerSettings


def _with_glasses(crop: np.ndarray) -> np.ndarray:
    """The face with dark rims and a bridge drawn across it, where glasses sit."""
    out = crop.copy()
    y = (BRIDGE[0].start + BRIDGE[0].stop) // 2
    for cx in (42, 86):
        cv2.ellipse(out, (cx, y + 2), (17, 10), 0, 0, 360, (25, 20, 20), 2)
    cv2.line(out, (59, y - 2), (69, y - 2), (25, 20, 20), 2)
    return out


def test_bridge_score_finds_drawn_glasses_on_a_real_face(face_crop) -> None:
    crop, mask = face_crop
    bare = bridge_score(crop, crop, mask)
    worn = bridge_score(_with_glasses(crop), crop, mask)
    assert abs(bare) < 1e-6  # the photo is its own render: nothing more
    assert worn > bare + 0.3
    # The same face at half the size scores alike (the score is framed at 128 px).
    half = [cv2.resize(a, (64, 64), interpolation=cv2.INTER_AREA)
            for a in (_with_glasses(crop), crop, mask)]
    assert bridge_score(*half) > 0.3


def test_pairs_with_glasses_are_never_drawn(face_crop, tmp_path) -> None:
    crop, mask = face_crop
    rng = np.random.default_rng(1)
    bare = [np.clip(crop.astype(int) + rng.integers(-3, 4, crop.shape), 0, 255)
            .astype(np.uint8) for _ in range(9)]
    real = np.stack([*bare, _with_glasses(crop)])
    comp = np.stack([crop] * 10)
    masks = np.stack([mask] * 10)
    assert likely_glasses(real, comp, masks, 0.1).tolist() == [False] * 9 + [True]
    folder = tmp_path / "pairs"
    folder.mkdir()
    np.savez(folder / "pairs_0000.npz", composite=comp, real=real, mask=masks,
             sha256=np.array([f"{i:064x}" for i in range(10)]))
    pairs = PairSet(folder)
    assert 9 not in pairs.usable(0.1) and len(pairs.usable(0.1)) == 9
    assert len(pairs.usable(0.0)) == 10
    settings = RefinerSettings(drop_glasses=0.1, dilate_share=0.0)
    for seed in range(5):
        _, target = pairs.batch(np.random.default_rng(seed), 16, settings)
        worn = (real[9].astype(np.float32) / 127.5 - 1.0)
        for t in target.permute(0, 2, 3, 1).numpy():
            assert np.abs(t - worn).max() > 0.05 and np.abs(t - worn[:, ::-1]).max() > 0.05
