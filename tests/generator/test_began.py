"""BEGAN-CS losses, the k_t update and the training conventions, on small tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from studio.core.generator.networks import (
    BeganConfig,
    Discriminator,
    Generator,
    UpBlock,
    constraint_loss,
    convergence,
    diff_augment,
    reconstruction_loss,
    update_k,
)
from studio.core.generator.sampler import Sampler
from studio.core.generator.settings import new_run_config
from studio.core.generator.training import (
    Trainer,
    TrainSettings,
    ema_decay_at,
    sampling_weights,
)
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
    settings = TrainSettings(batch=4, objective="began", config=BeganConfig(base_channels=4))
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


# -- issue 16: the training levers ------------------------------------------------------------
def test_new_runs_use_every_lever_and_legacy_turns_them_off():
    new, old = TrainSettings(), TrainSettings.legacy(batch=8)
    assert new.ema_decay > 0 and new.k_min > 0 and new.diffaugment
    assert (new.config.upsample, new.config.downsample) == ("bilinear", "avgpool")
    assert old.ema_decay == 0 and old.k_min == 0 and old.diffaugment == "" and old.batch == 8
    assert old.objective == "began" and old.config == BeganConfig(base_channels=16)  # thesis
    with pytest.raises(ValueError, match="DiffAugment"):
        TrainSettings(diffaugment="color,zoom")
    with pytest.raises(ValueError, match="upsample"):
        BeganConfig(upsample="transposed")


def test_k_floor():
    assert update_k(0.0, 0.1, 0.1, 0.1, 5.0, k_min=0.005) == 0.005
    assert update_k(0.3, 0.001, 0.1, 0.2, 0.01, k_min=0.005) == pytest.approx(0.30001)


def test_every_lever_trains_on_real_faces(tmp_path, genki_faces):
    settings = TrainSettings(batch=6, objective="began", config=new_run_config_small())
    t = Trainer(genki_faces(24), tmp_path, settings, torch.device("cpu"))
    for _ in range(4):
        m = t.train_step()
    assert all(np.isfinite(v) for v in m.values())
    assert settings.k_min <= m["k"] <= 1 and t.k >= settings.k_min
    # The EMA moved away from its start but is not the raw G.
    diffs = [(e - p).abs().max().item()
             for e, p in zip(t.G_ema.parameters(), t.G.parameters(), strict=True)]
    assert max(diffs) > 0
    t.save_state()
    from safetensors import safe_open

    with safe_open(str(tmp_path / "generator.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        exported = fh.get_tensor("decoder.out.weight").float()
    assert meta["ema"] == "true"
    assert json.loads(meta["config"])["upsample"] == "bilinear"
    assert torch.allclose(exported, t.G_ema.decoder.out.weight.detach(), atol=1e-3)
    # Resume restores the EMA exactly, and the sampler draws from the exported file.
    t2 = Trainer(t.data, tmp_path, settings, torch.device("cpu"))
    t2.load_state()
    for a, b in zip(t.G_ema.parameters(), t2.G_ema.parameters(), strict=True):
        assert torch.equal(a, b)
    faces = Sampler(tmp_path / "generator.safetensors", device="cpu").sample(
        np.full(5, 0.5, np.float32), n=2, seed=0)
    assert faces.shape == (2, 64, 64, 3)


def new_run_config_small() -> BeganConfig:
    return new_run_config(base_channels=4)


def test_ema_follows_the_decay_formula(tmp_path):
    settings = TrainSettings(batch=2, ema_decay=0.9, config=new_run_config_small())
    data = TrainingSet(np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 5), np.float32),
                       np.zeros(2, np.int8), {})
    t = Trainer(data, tmp_path, settings, torch.device("cpu"))
    w = t.G.decoder.out.bias
    e = t.G_ema.decoder.out.bias
    before = e.detach().clone()
    for step, d in ((0, 0.1), (100, 0.9)):  # warm-up (1 + t) / (10 + t), then the cap
        assert ema_decay_at(0.9, step) == pytest.approx(d)
        t.step = step
        with torch.no_grad():
            w.add_(1.0)
        expected = d * before + (1 - d) * w.detach()
        t.update_ema()
        assert torch.allclose(e, expected, atol=1e-6)
        before = e.detach().clone()


def _interior_std(t: torch.Tensor, border: int = 4) -> float:
    """The largest spatial std of any channel, away from the zero-padded borders."""
    return t[..., border:-border, border:-border].flatten(-2).std(-1).max().item()


def test_where_the_checkerboard_comes_from_and_the_new_layers_avoid_it():
    torch.manual_seed(0)
    legacy, new = BeganConfig(base_channels=4), new_run_config_small()
    # The discriminator's 3x3 stride-2 convolutions (kernel not divisible by the stride)
    # send G a period-2 gradient even for a flat image; average pooling does not.
    grads = {}
    for cfg in (legacy, new):
        D = Discriminator(cfg)
        D.load_state_dict(Discriminator(legacy).state_dict())  # same weights, other layers
        down = D.encoder.downs[0][-2]  # the 64 -> 32 px layer
        x = torch.zeros(1, 4, 64, 64, requires_grad=True)
        down(x).sum().backward()  # a flat gradient from above
        grads[cfg.downsample] = _interior_std(x.grad)
    assert grads["avgpool"] < 1e-5 and grads["stride"] > 1e-3
    # Upsampling: a flat map stays flat in both modes; a smooth ramp stays smooth only
    # under bilinear (nearest makes 2-pixel steps, i.e. a period-2 second difference).
    ramp = torch.arange(16.0).repeat(16, 1)[None, None]
    for mode, step_pattern in (("nearest", True), ("bilinear", False)):
        block = UpBlock(1, 1, None, double=False, mode=mode)
        flat = block(torch.ones(1, 1, 16, 16))
        assert _interior_std(flat) < 1e-5
        up = F.interpolate(ramp, scale_factor=2, mode=mode,
                           **({} if mode == "nearest" else {"align_corners": False}))
        second = up[..., 4:-4].diff(n=2, dim=-1).abs().max().item()
        assert (second > 0.4) == step_pattern
    # Whole generators: the new config keeps the exported shapes, so state dicts interchange.
    assert Generator(new).load_state_dict(Generator(legacy).state_dict())


def test_diffaugment_is_differentiable_and_keeps_shape():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 64, 64) * 2 - 1).requires_grad_(True)
    for policy in ("color", "translation", "cutout", "color,translation,cutout"):
        out = diff_augment(x, policy)
        assert out.shape == x.shape and not torch.equal(out, x)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    assert diff_augment(x, "") is x
    # Cutout zeroes exactly one 32x32 square (clipped at the edges) per image.
    zeroed = (diff_augment(torch.ones(8, 3, 64, 64), "cutout") == 0).all(1).sum((1, 2))
    assert ((zeroed >= 16 * 16) & (zeroed <= 32 * 32)).all()
    # Translation moves each image by at most 8 px and fills with 0.
    img = torch.zeros(16, 1, 64, 64)
    img[:, :, 32, 32] = 1
    moved = diff_augment(img, "translation")
    pos = moved.flatten(1).argmax(1)
    assert ((pos // 64 - 32).abs() <= 8).all() and ((pos % 64 - 32).abs() <= 8).all()
    assert torch.allclose(moved.sum((1, 2, 3)), torch.ones(16))


def test_shipped_thesis_file_loads_with_legacy_layers():
    from safetensors.torch import load_file

    from studio.core.generator.choices import BY_KEY

    thesis = BY_KEY["thesis"].path
    s = Sampler(thesis, device="cpu")
    meta_cfg = json.loads(s.metadata["config"])
    assert "upsample" not in meta_cfg and "ema" not in s.metadata  # trained before issue 16
    assert (s.config.upsample, s.config.downsample) == ("nearest", "stride")
    # Drawing with the layers as they were (nearest + conv) reproduces the sampler exactly.
    ref = Generator(BeganConfig(**meta_cfg)).eval()
    ref.load_state_dict({k: v.float() for k, v in load_file(str(thesis)).items()})
    z = s.random_z(2, seed=11)
    y = np.full((2, 5), 0.5, np.float32)
    with torch.inference_mode():
        out = ref(torch.from_numpy(z), torch.from_numpy(y))
    expected = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(s.sample(y, z=z), expected)
    for block in s.net.decoder.blocks:
        assert block.mode == "nearest"


def test_exported_weights_warm_start_a_new_run(tmp_path):
    rng = np.random.default_rng(1)
    data = TrainingSet(rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8),
                       rng.random((40, 5)).astype(np.float32), np.zeros(40, np.int8), {})
    settings = TrainSettings(batch=4, objective="began", config=new_run_config(base_channels=4))
    first = Trainer(data, tmp_path / "a", settings, torch.device("cpu"))
    for _ in range(3):
        first.train_step()
    first.export_weights(tmp_path / "carry.safetensors")
    second = Trainer(data, tmp_path / "b", settings, torch.device("cpu"))
    second.warm_start(tmp_path / "carry.safetensors")
    assert second.step == 3 and second.k == first.k
    for a, b in ((first.G, second.G), (first.D, second.D), (first.G_ema, second.G_ema)):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.allclose(p.half().float(), q)  # carried at half precision
    m = second.train_step()  # and it trains on from there
    assert np.isfinite(m["M"]) and second.step == 4


def test_train_carry_to_writes_weights_a_later_run_starts_from(tmp_path):
    """`studio train --carry-to` leaves a small file (and the run's manifest beside it)
    that `--init-from` starts the next session's run from."""
    from studio.cli import main

    rng = np.random.default_rng(2)
    data = TrainingSet(rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8),
                       rng.random((40, 5)).astype(np.float32), np.zeros(40, np.int8), {})
    data.save(tmp_path / "crops.npz")
    carry = tmp_path / "carry" / "run_carry.safetensors"
    common = ["--data", str(tmp_path / "crops.npz"), "--channels", "4", "--batch", "4",
              "--quiet", "--threads", "1"]
    assert main(["train", "--out", str(tmp_path / "a"), "--minutes", "0.02",
                 "--carry-to", str(carry), *common]) == 0
    assert carry.is_file() and carry.stat().st_size < 2_000_000
    assert main(["train", "--out", str(tmp_path / "b"), "--minutes", "0.01",
                 "--init-from", str(carry), *common]) == 0
