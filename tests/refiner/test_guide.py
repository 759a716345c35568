"""Issue 27's third remedy: the render given to the refiner as a guide only (blurred, and
tinted at random in training), the same at training and at use."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from studio.core.refiner.guide import as_guide, blur_sigma, random_tint
from studio.core.refiner.model import Refiner
from studio.core.refiner.pair_set import PairSet
from studio.core.refiner.training import RefinerSettings, RefinerTrainer


def _detail(image: np.ndarray, where: np.ndarray) -> float:
    lap = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), -1)
    return float(np.abs(lap[where]).mean())


def test_guide_blurs_the_face_only(face_crop) -> None:
    crop, mask = face_crop
    guide = as_guide(crop, mask, blur_sigma(0.015, 128))
    outside = mask == 0
    assert np.array_equal(guide[outside], crop[outside])
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    assert _detail(guide, inner) < 0.5 * _detail(crop, inner)  # eyes, mouth softened
    assert abs(float(guide[inner].mean()) - float(crop[inner].mean())) < 2.0  # tone kept
    assert as_guide(crop, mask, 0.0) is crop  # weights trained without it see the composite


def test_random_tint_is_smooth_and_repeatable() -> None:
    a = random_tint(np.random.default_rng(3), 128, 10.0)
    b = random_tint(np.random.default_rng(3), 128, 10.0)
    assert a.shape == (128, 128, 3) and np.array_equal(a, b)
    assert 2.0 < float(np.abs(a).mean()) < 20.0
    assert float(np.abs(np.diff(a, axis=0)).max()) < 1.5  # no edges: shading, not texture


def test_trainer_feeds_guides_and_the_weights_carry_the_blur(pair_folder, small_config,
                                                              tmp_path) -> None:
    pairs = PairSet(pair_folder)
    settings = RefinerSettings(guide_blur=0.05, guide_tint=8.0, dilate_share=0.0)
    x, _ = pairs.batch(np.random.default_rng(0), 12, settings)
    idx = np.random.default_rng(0).integers(0, len(pairs), 12)  # the batch's first draw
    with np.load(pair_folder / "pairs_0000.npz") as data:
        comps = data["composite"][idx]
    seen = ((x[:, :3].permute(0, 2, 3, 1).numpy() + 1) * 127.5).round()
    for i in range(12):
        inside = x[i, 3].numpy() > 0
        plain = min((comps[i], comps[i, :, ::-1]),
                    key=lambda c: np.abs(seen[i][~inside] - c[~inside]).max())
        assert np.abs(seen[i][~inside] - plain[~inside]).max() < 1  # the context untouched
        assert np.abs(seen[i][inside] - plain[inside]).mean() > 3  # the face a guide
    trainer = RefinerTrainer(tmp_path / "run", small_config,
                             settings)
    trainer.train_step(pairs)
    weights = tmp_path / "refiner.safetensors"
    trainer.export_weights(weights, len(pairs))
    refiner = Refiner.load(weights)
    assert refiner.guide_blur == 0.05
    # At use the change is counted from the composite: a refiner that has learned
    # nothing yet (zero head) hands back the guide, so the change is the blur, inside only.
    torch.nn.init.zeros_(refiner.net.head.weight)
    torch.nn.init.zeros_(refiner.net.head.bias)
    with np.load(pair_folder / "pairs_0000.npz") as data:
        comp, mask = data["composite"][0], data["mask"][0]
    change = refiner.change(comp, mask)
    expected = as_guide(comp, mask, blur_sigma(0.05, 32)).astype(np.float32) - comp
    assert np.abs(change - expected).max() < 1.0
    assert np.abs(change[mask == 0]).max() < 1e-3 and np.abs(change[mask > 0]).max() > 1.0
