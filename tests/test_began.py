"""BEGAN-CS losses, the k_t update and the training conventions, on small tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.generator.networks import (
    BeganConfig,
    Discriminator,
    Generator,
    constraint_loss,
    convergence,
    reconstruction_loss,
    update_k,
)
from studio.core.generator.training import Trainer, TrainSettings, sampling_weights
from studio.core.generator.training_data import TrainingSet


def test_reconstruction_and_constraint_losses():
    x = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    r = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    assert reconstruction_loss(x, r).item() == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    z = torch.tensor([[1.0, -1.0]])
    code = torch.tensor([[0.0, -1.0]])
    assert constraint_loss(z, code).item() == pytest.approx(0.5)


def test_k_update_follows_the_formula_and_clips():
    assert update_k(0.5, 0.001, 0.1, 0.2, 0.01) == pytest.approx(0.5 + 0.001 * (0.02 - 0.01))
    assert update_k(0.0, 0.1, 0.1, 0.1, 5.0) == 0.0
    assert update_k(1.0, 0.1, 0.5, 10.0, 0.0) == 1.0
    assert convergence(0.1, 0.2, 0.05) == pytest.approx(0.2 + 0.03)


def test_networks_shapes_and_label_predictor_range():
    cfg = BeganConfig(base_channels=4)
    G, D = Generator(cfg), Discriminator(cfg)
    z, y = torch.rand(3, 64) * 2 - 1, torch.rand(3, 5)
    img = G(z, y)
    assert img.shape == (3, 3, 64, 64) and img.abs().max() <= 1
    rec, code, pred = D(img)
    assert rec.shape == img.shape and code.shape == (3, 64) and pred.shape == (3, 5)
    assert code.abs().max() <= 1 and ((pred >= 0) & (pred <= 1)).all()


def test_labels_reach_every_decoder_block():
    # FiLM: changing only y must change the output even with the z/y input layer frozen.
    cfg = BeganConfig(base_channels=4)
    G = Generator(cfg)
    for block in G.decoder.blocks:
        torch.nn.init.normal_(block.film.proj.weight, std=0.5)
    z = torch.zeros(1, 64)
    a = G(z, torch.zeros(1, 5))
    b = G(z, torch.ones(1, 5))
    assert (a - b).abs().mean() > 1e-3


def test_flip_negates_yaw_and_roll(tmp_path):
    img = np.zeros((1, 64, 64, 3), np.uint8)
    img[0, :, :16] = 255  # bright on the left
    labels = np.array([[0.9, 0.2, 0.7, 0.6, 0.3]], np.float32)
    data = TrainingSet(img, labels, np.zeros(1, np.int8), {})
    trainer = Trainer(data, tmp_path, TrainSettings(batch=64, config=BeganConfig(base_channels=4)),
                      torch.device("cpu"))
    x, y = trainer.batch()
    left_bright = x[:, 0, 32, 2] > 0
    assert 0 < left_bright.sum() < 64  # both flipped and unflipped samples
    assert torch.allclose(y[left_bright], torch.tensor(labels[0]))
    flipped = y[~left_bright]
    assert torch.allclose(flipped[:, 2], torch.tensor(0.3)) and torch.allclose(
        flipped[:, 4], torch.tensor(0.7))
    assert torch.allclose(flipped[:, [0, 1, 3]], torch.tensor(labels[0, [0, 1, 3]]))


def test_pose_balancing_upweights_rare_poses():
    labels = np.full((101, 5), 0.5, np.float32)
    labels[0, 2] = 0.95  # one strongly turned face among frontal ones
    w = sampling_weights(labels, 0.5)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > 5 * w[1]


def test_train_step_checkpoint_and_resume(tmp_path):
    rng = np.random.default_rng(0)
    data = TrainingSet(rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8),
                       rng.random((40, 5)).astype(np.float32), np.zeros(40, np.int8), {})
    settings = TrainSettings(batch=4, config=BeganConfig(base_channels=4))
    t = Trainer(data, tmp_path, settings, torch.device("cpu"))
    for _ in range(3):
        m = t.train_step()
    assert all(np.isfinite(v) for v in m.values()) and 0 <= m["k"] <= 1
    t.save_state()
    t2 = Trainer(data, tmp_path, settings, torch.device("cpu"))
    t2.load_state()  # weights_only=True: no pickle
    assert t2.step == 3 and t2.k == t.k
    for a, b in zip(t.G.parameters(), t2.G.parameters(), strict=True):
        assert torch.equal(a, b)
    assert (tmp_path / "generator.safetensors").is_file()
