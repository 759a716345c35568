"""Issue 27: the refiner wing (framing, network, checkpoints, training) and its use inside
the in-context surrogate (mask only, fallback, determinism)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.refiner import checkpoint
from studio.core.refiner.crops import CropBox, cut, paste_change
from studio.core.refiner.model import REFINER_FILE, Refiner, load_refiner
from studio.core.refiner.network import PatchDiscriminator, RefinerConfig, RefinerUNet
from studio.core.refiner.pair_set import PairSet, open_ring
from studio.core.refiner.training import (
    LOG_HEADER,
    RefinerSettings,
    RefinerTrainer,
    widen_log,
)


def test_crop_box_and_cut_past_the_border() -> None:
    marks = np.array([[10.0, 20.0, 0], [50.0, 60.0, 0]])
    box = CropBox.around(marks)
    assert box.side == 50 and (box.x0, box.y0) == (5, 15)
    photo = np.arange(40 * 40 * 3, dtype=np.uint8).reshape(40, 40, 3)
    out = cut(photo, CropBox(-10, -10, 20), 20)
    assert (out[:10, :10] == photo[0, 0]).all()  # the border repeated
    mask = cut(np.full((40, 40), 255, np.uint8), CropBox(-10, -10, 20), 20, 0, 0)
    assert mask[:10, :10].max() == 0 and mask[15, 15] == 255  # nothing past the edge


def test_paste_change_only_where_weighted() -> None:
    photo = np.full((40, 40, 3), 100, np.uint8)
    box = CropBox(10, 10, 20)
    weight = np.zeros((20, 20), np.float32)
    weight[5:15, 5:15] = 1
    out = paste_change(photo, np.full((8, 8, 3), 30.0), weight, box)
    assert (out[15:25, 15:25] == 130).all()
    out[15:25, 15:25] = 100
    assert (out == photo).all()


def test_the_change_fades_in_from_a_photo_edge_the_box_reaches_past() -> None:
    photo = np.full((40, 40, 3), 100, np.uint8)
    box = CropBox(-10, 10, 50)  # past the left and bottom edges: 0 there, 1 inside
    weight = np.ones((30, 40), np.float32)
    out = paste_change(photo, np.full((8, 8, 3), 40.0), weight, box).astype(int)
    assert (out[20, 0] <= 106).all() and (out[20, 20] == 140).all()  # faded at the edge
    assert (out[39, 20] <= 106).all() and (np.diff(out[20, :6, 0]) >= 0).all()  # rising in
    inside = paste_change(photo, np.full((8, 8, 3), 40.0), np.ones((20, 20), np.float32),
                          CropBox(10, 10, 20))
    assert (inside[10:30, 10:30] == 140).all()  # a box inside the photo: no fade


def test_refiner_starts_as_identity_and_never_changes_outside_the_mask() -> None:
    net = RefinerUNet(RefinerConfig(base=8, depth=2, size=32))
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    x[:, 3] = (torch.rand(2, 32, 32) > 0.5).float()
    assert torch.equal(net(x), x[:, :3])
    torch.nn.init.normal_(net.head.weight)
    y = net(x)
    outside = x[:, 3:4].expand(-1, 3, -1, -1) == 0
    assert torch.equal(y[outside], x[:, :3][outside])
    assert not torch.equal(y, x[:, :3])
    assert PatchDiscriminator()(torch.cat([y, x[:, 3:]], 1)).shape[1] == 1


def test_open_ring_grows_the_mask_and_blurs_only_the_ring() -> None:
    rng = np.random.default_rng(1)
    comp = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[12:20, 12:20] = 255
    out, grown = open_ring(comp, mask, 3, 2.0)
    ring = (grown > 127) & (mask <= 127)
    assert ring.sum() > 0 and (grown >= mask).all()
    assert (out[~ring] == comp[~ring]).all() and (out[ring] != comp[ring]).any()


def test_training_learns_saves_resumes_and_exports(pair_folder, small_config,
                                                   tmp_path) -> None:
    pairs = PairSet(pair_folder)
    assert len(pairs) == 12 and len(set(pairs.sha256)) == 12
    trainer = RefinerTrainer(tmp_path / "run", small_config)
    first = np.mean([trainer.train_step(pairs)["l1"] for _ in range(3)])
    for _ in range(20):
        trainer.train_step(pairs)
    last = np.mean([trainer.train_step(pairs)["l1"] for _ in range(3)])
    assert last < first  # the brightening inside the mask is being learned
    trainer.save_state()
    again = RefinerTrainer(tmp_path / "run", small_config)
    again.load_state()
    assert again.step == trainer.step == 26
    for a, b in zip(trainer.g.parameters(), again.g.parameters(), strict=True):
        assert torch.equal(a, b)
    assert again.opt_g.state_dict()["state"].keys() == trainer.opt_g.state_dict()["state"].keys()
    again.train_step(pairs)  # the restored optimiser steps
    weights = tmp_path / "refiner.safetensors"
    trainer.export_weights(weights, len(pairs))
    refiner = Refiner.load(weights)
    assert refiner.step == 26 and refiner.net.config == small_config


def test_missing_or_corrupt_weights_say_which_file(tmp_path) -> None:
    refiner, why = load_refiner(tmp_path / "nope.safetensors")
    assert refiner is None and "nope.safetensors" in why and "missing" in why
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    refiner, why = load_refiner(bad)
    assert refiner is None and "bad.safetensors" in why and "cannot be read" in why
    with pytest.raises(Exception, match=r"bad\.safetensors"):
        checkpoint.load(bad)


@pytest.fixture(scope="module")
def context_maker():
    from studio.core.surrogates.incontext import InContextMaker

    maker = InContextMaker()
    yield maker
    maker.close()


@pytest.mark.skipif(not REFINER_FILE.is_file(), reason="no refiner weights in models/")
def test_refined_face_stays_inside_its_mask_and_is_repeatable(analyzer, utk_face,
                                                               context_maker) -> None:
    from studio.core.surrogates.incontext import ContextRequest

    faces = analyzer.analyze(utk_face).faces
    assert context_maker.refiner is not None
    refined = context_maker.make(utk_face, faces, ContextRequest(seed=4))
    raw = context_maker.make(utk_face, faces, ContextRequest(seed=4, refine=False))
    again = context_maker.make(utk_face, faces, ContextRequest(seed=4))
    assert refined.image.tobytes() == again.image.tobytes()
    drawn = refined.rendered
    assert drawn is not None and drawn.any()
    assert (refined.image[~drawn] == raw.image[~drawn]).all()
    assert (refined.image[~refined.changed] == utk_face[~refined.changed]).all()
    change = np.abs(refined.image.astype(int) - raw.image.astype(int))[drawn].mean()
    assert change > 1.0  # the refiner did something to the face


def test_in_context_falls_back_unrefined_and_says_so(analyzer, utk_face, context_maker,
                                                     tmp_path) -> None:
    from studio.core.surrogates.incontext import ContextRequest

    faces = analyzer.analyze(utk_face).faces
    kept = context_maker.refiner, context_maker.refiner_note
    try:
        context_maker.refiner, context_maker.refiner_note = load_refiner(tmp_path / "x.st")
        result = context_maker.make(utk_face, faces, ContextRequest(seed=4))
    finally:
        context_maker.refiner, context_maker.refiner_note = kept
    raw = context_maker.make(utk_face, faces, ContextRequest(seed=4, refine=False))
    assert result.image.tobytes() == raw.image.tobytes()
    assert any("x.st" in n and "not refined" in n for n in result.notes)


@pytest.mark.parametrize(("weight", "critic", "logged"),
                         [("parts", "dp", "parts"), ("whole_face", "dw", "face")])
def test_extra_critics_train_and_an_older_state_resumes_without_them(
        pair_folder, small_config, tmp_path, weight, critic, logged) -> None:
    """The eye and mouth critics, and the whole-face one, learn beside the whole-crop
    critic and resume with the run; a state saved before they existed (g and d only)
    still resumes, with them fresh; weight 0 leaves them untouched."""
    pairs = PairSet(pair_folder)
    on = RefinerSettings(**{weight: 1.0})
    trainer = RefinerTrainer(tmp_path / "run", small_config, on)
    before = [p.detach().clone() for p in getattr(trainer, critic).parameters()]
    losses = trainer.train_step(pairs)
    assert losses[f"{logged}_d"] > 0 and np.isfinite(losses[f"{logged}_adv"])
    assert any(not torch.equal(a, b) for a, b in
               zip(before, getattr(trainer, critic).parameters(), strict=True))
    trainer.save_state()
    resumed = RefinerTrainer(tmp_path / "run", small_config, on)
    resumed.load_state()
    for a, b in zip(getattr(trainer, critic).parameters(),
                    getattr(resumed, critic).parameters(), strict=True):
        assert torch.equal(a, b)
    old = tmp_path / "old.safetensors"
    checkpoint.save(old, {**checkpoint.module_tensors(trainer.g, "g"),
                          **checkpoint.module_tensors(trainer.d, "d")}, trainer.meta())
    again = RefinerTrainer(tmp_path / "again", small_config, on)
    again.load_state(old)
    assert again.step == 1
    assert torch.equal(next(again.g.parameters()), next(trainer.g.parameters()))
    off = RefinerTrainer(tmp_path / "off", small_config)
    frozen = [p.detach().clone() for p in getattr(off, critic).parameters()]
    assert off.train_step(pairs)[f"{logged}_d"] == 0.0
    assert all(torch.equal(a, b) for a, b in
               zip(frozen, getattr(off, critic).parameters(), strict=True))


def test_the_whole_face_critic_sees_the_whole_crop() -> None:
    """Each output of the whole-face critic sees the far corner of a 128 px crop; the
    whole-crop critic's do not (34 px each)."""
    from studio.core.refiner.parts import WholeFaceCritic

    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    WholeFaceCritic()(x)[0, 0, -1, -1].backward()
    assert x.grad[0, :, :8, :8].abs().sum() > 0  # the bottom-right output, the top-left
    x4 = torch.zeros(1, 4, 128, 128, requires_grad=True)
    PatchDiscriminator()(x4)[0, 0, -1, -1].backward()
    assert x4.grad[0, :, :8, :8].abs().sum() == 0


def test_face_weighted_critic_scores_only_the_face_patches(tmp_path) -> None:
    """Outside the mask the refined crop is the photo: with face weighting those patches
    count for nothing, so a critic wrong only there scores as if it were right."""
    trainer = RefinerTrainer(tmp_path / "run", settings=RefinerSettings(face_weighted=True))
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    scores = torch.full((1, 1, 4, 4), 5.0)
    scores[..., 1:3, 1:3] = 1.0  # the four patches the face fills
    assert trainer.patch_mean(scores, mask).item() == pytest.approx(1.0)
    plain = RefinerTrainer(tmp_path / "plain")
    assert plain.patch_mean(scores, mask).item() == pytest.approx(scores.mean().item())


def test_a_plain_critic_starts_fresh_from_a_normalised_state(pair_folder, small_config,
                                                             tmp_path) -> None:
    """A state whose critic had spectral norm resumes with the refiner's weights and
    optimiser, and a fresh plain critic that trains (two critic steps per refiner step)."""
    pairs = PairSet(pair_folder)
    normalised = RefinerTrainer(tmp_path / "sn", small_config)
    normalised.train_step(pairs)
    state = tmp_path / "sn.safetensors"
    normalised.save_state(state)
    settings = RefinerSettings(critic_sn=False, d_steps=2, face_weighted=True)
    plain = RefinerTrainer(tmp_path / "plain", small_config, settings)
    plain.load_state(state)
    assert plain.step == 1
    for a, b in zip(normalised.g.parameters(), plain.g.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not any("weight_orig" in k for k in plain.d.state_dict())
    before = [p.detach().clone() for p in plain.d.parameters()]
    losses = plain.train_step(pairs)
    assert np.isfinite(losses["d"]) and plain.step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, plain.d.parameters(),
                                                      strict=True))
    plain.save_state()
    again = RefinerTrainer(tmp_path / "plain", small_config, settings)
    again.load_state()  # the plain critic itself resumes
    for a, b in zip(plain.d.parameters(), again.d.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pooled_l1_holds_the_tone_and_leaves_fine_detail_to_the_critic(face_crop,
                                                                      tmp_path) -> None:
    """``l1_pool``: a real face with pixel-scale detail added costs nothing pooled (and
    its full size per pixel); a changed tone costs the same either way."""
    from studio.core.refiner.pair_set import to_tensor

    crop, _ = face_crop
    real = to_tensor(crop[None])
    grain = torch.ones(1, 1, 128, 128)
    grain[..., 1::2, :] *= -1
    grain[..., 1::2] *= -1  # a checkerboard: zero mean over every 2 x 2 block
    detailed, toned = real + 0.2 * grain, real + 0.1
    pooled = RefinerTrainer(tmp_path / "pooled", settings=RefinerSettings(l1_pool=4))
    per_pixel = RefinerTrainer(tmp_path / "pixel")
    assert pooled.l1_distance(detailed, real).item() == pytest.approx(0.0, abs=1e-6)
    assert per_pixel.l1_distance(detailed, real).item() == pytest.approx(0.2, abs=1e-6)
    for trainer in (pooled, per_pixel):
        assert trainer.l1_distance(toned, real).item() == pytest.approx(0.1, abs=1e-6)


def test_training_starts_from_exported_weights_with_a_fresh_critic(pair_folder, small_config,
                                                                    tmp_path) -> None:
    """The shipped file holds the refiner alone: a run started from it takes its weights
    and a fresh critic of either kind, and trains."""
    pairs = PairSet(pair_folder)
    first = RefinerTrainer(tmp_path / "first", small_config)
    first.train_step(pairs)
    weights = tmp_path / "refiner.safetensors"
    first.export_weights(weights, len(pairs))
    for sn in (True, False):
        run = RefinerTrainer(tmp_path / f"from_{sn}", small_config, RefinerSettings(critic_sn=sn))
        run.load_state(weights)
        assert run.step == 1
        for a, b in zip(first.g.parameters(), run.g.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-2)  # float16 in the shipped file
        assert np.isfinite(run.train_step(pairs)["d"]) and run.step == 2


def test_a_log_from_an_older_run_is_widened_not_mixed(tmp_path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("step,hours,pairs,d,adv,l1\n25,0.01,12,1.9,-0.3,0.05\n")
    widen_log(log)
    rows = log.read_text().splitlines()
    assert rows[0].split(",") == list(LOG_HEADER)
    old = ["25", "0.01", "12", "1.9", "-0.3", "0.05"]
    assert rows[1].split(",") == old + [""] * (len(LOG_HEADER) - len(old))
    widen_log(log)
    assert log.read_text().splitlines() == rows


@pytest.fixture
def black_draws(pair_folder, tmp_path) -> PairSet:
    """New draws that are easy to tell: black faces, with the pairs' masks."""
    draws_dir = tmp_path / "draws"
    draws_dir.mkdir()
    with np.load(pair_folder / "pairs_0000.npz") as data:
        mask, shas = data["mask"], data["sha256"]
    dark = np.zeros((12, 32, 32, 3), np.uint8)
    np.savez(draws_dir / "pairs_0000.npz", composite=dark, real=dark, mask=mask, sha256=shas)
    return PairSet(draws_dir)


def test_the_critic_can_see_new_draws_while_l1_learns_from_pairs(
        pair_folder, small_config, black_draws, tmp_path) -> None:
    """With draws, the critic's fakes are new-draw composites refined (what the refiner
    meets at use); the L1 still pairs own-fit composites with their photos."""
    pairs, draws = PairSet(pair_folder), black_draws
    trainer = RefinerTrainer(tmp_path / "run", small_config,
                             RefinerSettings(critic_on_draws=True, dilate_share=0.0))
    seen: list[torch.Tensor] = []
    forward = trainer.d.forward
    trainer.d.forward = lambda x: (seen.append(x.detach()), forward(x))[1]
    losses = trainer.train_step(pairs, draws)
    real_in, fake_in, adv_in = seen  # the critic's step (real, fake), then the refiner's
    inside = fake_in[:, 3:4].expand(-1, 3, -1, -1) > 0
    assert float(fake_in[:, :3][inside].mean()) < -0.9  # the black draws, refined
    assert float(adv_in[:, :3][inside].mean()) < -0.9
    assert float(real_in[:, :3][inside].mean()) > -0.5  # the photos of the pairs
    assert 0.05 < losses["l1"] < 1.0  # the pairs' L1, not the draws' (black vs black)
    assert trainer.meta()["settings"]["critic_on_draws"] is True
    # An anchor ties the refined draws to their own composites: a refiner that
    # brightens every face it sees is pulled back harder with it than without.
    grads = []
    for anchor in (0.0, 5.0):
        t = RefinerTrainer(tmp_path / f"run{anchor}", small_config,
                           RefinerSettings(critic_on_draws=True, dilate_share=0.0,
                                           draws_anchor=anchor))
        torch.nn.init.constant_(t.g.head.bias, 0.5)
        t.opt_g.step = lambda: None  # keep the gradient, take no step
        t.train_step(pairs, draws)
        grads.append(float(t.g.head.bias.grad.mean()))
    assert grads[1] > grads[0] + 0.01


@pytest.mark.parametrize(("settings", "critic"), [
    ({"whole_face": 1.0, "whole_face_on_draws": True}, "dw"),
    ({"parts": 1.0, "parts_on_draws": True, "parts_sn": False}, "dp")])
def test_new_draws_can_go_to_one_extra_critic_alone(pair_folder, small_config, black_draws,
                                                    tmp_path, settings, critic) -> None:
    """``whole_face_on_draws``, ``parts_on_draws``: that critic judges the refined new
    draws, while the whole-crop critic still judges the refined own fits."""
    trainer = RefinerTrainer(tmp_path / "run", small_config,
                             RefinerSettings(dilate_share=0.0, **settings))
    seen: dict[str, list[torch.Tensor]] = {"d": [], critic: []}
    for name in seen:
        net = getattr(trainer, name)
        net.forward = (lambda f, k: lambda x, *rest: (seen[k].append(x.detach()),
                                                      f(x, *rest))[1])(net.forward, name)
    trainer.train_step(PairSet(pair_folder), black_draws)
    _real, patch_fake, _adv = seen["d"]
    extra_real, extra_fake, _ = seen[critic]
    inside = patch_fake[:, 3:4].expand(-1, 3, -1, -1) > 0
    assert float(patch_fake[:, :3][inside].mean()) > -0.5  # the pairs, refined
    assert float(extra_fake.mean()) < float(extra_real.mean()) - 0.3  # the black draws


def test_plain_part_critics_start_fresh_from_normalised_ones(pair_folder, small_config,
                                                             tmp_path) -> None:
    """``parts_sn=False``: eye and mouth critics without spectral norm; a state whose part
    critics had it resumes with the refiner's weights and fresh plain part critics."""
    normalised = RefinerTrainer(tmp_path / "sn", small_config, RefinerSettings(parts=1.0))
    normalised.train_step(PairSet(pair_folder))
    normalised.save_state()
    plain = RefinerTrainer(tmp_path / "plain", small_config,
                           RefinerSettings(parts=1.0, parts_sn=False))
    plain.load_state(normalised.state_path)
    assert plain.step == 1
    assert not any("weight_orig" in k or "parametrizations" in k
                   for k in plain.dp.state_dict())
    assert np.isfinite(plain.train_step(PairSet(pair_folder))["parts_d"])
