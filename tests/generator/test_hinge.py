"""The hinge objective with a projection discriminator (issue 16), and stopping a
background training run with SIGTERM."""

from __future__ import annotations

import csv
import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from studio.cli.options import stop_on_term
from studio.core.errors import StudioError
from studio.core.generator.projection import FULL_RES_GAIN, ProjectionDiscriminator
from studio.core.generator.sampler import Sampler
from studio.core.generator.settings import new_run_config
from studio.core.generator.training import Trainer, TrainSettings
from studio.core.generator.training_data import TrainingSet


def _hinge(batch: int = 6, **changes: object) -> TrainSettings:
    return TrainSettings(batch=batch, objective="hinge", diffaugment="color,translation",
                         config=new_run_config(base_channels=4), **changes)


def test_projection_discriminator_reads_the_labels():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(new_run_config(base_channels=4))
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        logit, labels = d(x, torch.full((3, 5), 0.5))
        other, _ = d(x, torch.zeros(3, 5))
    assert logit.shape == (3,) and labels.shape == (3, 5)
    assert float(labels.min()) >= 0 and float(labels.max()) <= 1
    # The projection term: the same image scores differently under other labels.
    assert not torch.allclose(logit, other)


def test_hinge_trains_on_real_faces_and_resumes(tmp_path, genki_faces):
    settings = _hinge()
    t = Trainer(genki_faces(24), tmp_path, settings, torch.device("cpu"))
    assert isinstance(t.D, ProjectionDiscriminator)
    assert t.opt_d.param_groups[0]["betas"] == (0.0, 0.99)
    before = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(4):
        m = t.train_step()
    assert set(m) >= {"D_real", "D_fake", "G_adv", "label_real", "label_G"}
    assert all(np.isfinite(v) for v in m.values())
    assert m["D_real"] >= 0 and m["D_fake"] >= 0  # hinge terms cannot go below 0
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters(), strict=True))
    t.save_state()
    t2 = Trainer(t.data, tmp_path, settings, torch.device("cpu"))
    t2.load_state()
    assert t2.step == 4
    for a, b in zip(t.D.parameters(), t2.D.parameters(), strict=True):
        assert torch.equal(a, b)
    faces = Sampler(tmp_path / "generator.safetensors", device="cpu").sample(
        np.full(5, 0.5, np.float32), n=2, seed=0)
    assert faces.shape == (2, 64, 64, 3) and faces.std() > 0
    # A resumed run learns at its own --lr (a late run at a lower rate), moments kept.
    t3 = Trainer(t.data, tmp_path, replace(settings, lr=settings.lr / 2), torch.device("cpu"))
    t3.load_state()
    assert {g["lr"] for o in (t3.opt_g, t3.opt_d) for g in o.param_groups} == {settings.lr / 2}
    assert t3.opt_g.state_dict()["state"][0]["step"] == 4


def test_warm_start_refuses_another_objective(tmp_path):
    rng = np.random.default_rng(3)
    data = TrainingSet(rng.integers(0, 255, (20, 64, 64, 3), dtype=np.uint8),
                       rng.random((20, 5)).astype(np.float32), np.zeros(20, np.int8), {})
    hinge = Trainer(data, tmp_path / "h", _hinge(batch=4), torch.device("cpu"))
    hinge.train_step()
    hinge.export_weights(tmp_path / "carry.safetensors")
    began = Trainer(data, tmp_path / "b", TrainSettings(
        batch=4, objective="began", config=new_run_config(base_channels=4)),
        torch.device("cpu"))
    with pytest.raises(StudioError, match="hinge objective"):
        began.warm_start(tmp_path / "carry.safetensors")
    again = Trainer(data, tmp_path / "h2", _hinge(batch=4), torch.device("cpu"))
    again.warm_start(tmp_path / "carry.safetensors")
    assert again.step == 1


def test_cli_trains_hinge_and_logs_its_own_losses(tmp_path):
    from studio.cli import main

    rng = np.random.default_rng(4)
    TrainingSet(rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8),
                rng.random((40, 5)).astype(np.float32), np.zeros(40, np.int8),
                {}).save(tmp_path / "crops.npz")
    common = ["--minutes", "0.03", "--data", str(tmp_path / "crops.npz"), "--channels", "4",
              "--batch", "4", "--quiet", "--threads", "1"]
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *common]) == 0  # hinge is the default
    run = json.loads((out / "runs.jsonl").read_text().splitlines()[0])["settings"]
    assert (run["objective"], run["lr"], run["label_weight"], run["mode_seeking"],
            run["r1"]) == ("hinge", 2e-4, 0.5, 1.0, 0.0)
    assert main(["train", "--out", str(tmp_path / "r1"), "--r1", "5", "--d-full-res",
                 *common]) == 0
    r1 = json.loads((tmp_path / "r1" / "runs.jsonl").read_text().splitlines()[0])["settings"]
    assert (r1["r1"], r1["r1_every"], r1["d_full_res"], run["d_full_res"]) == (5.0, 16, True,
                                                                              False)
    assert "cutout" not in run["diffaugment"] and run["config"]["base_channels"] == 4
    with (out / "log.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["step", "seconds", "D_real", "D_fake"] and "mode_spread" in rows[0]
    # BEGAN keeps its own settings, and a flag still wins over the objective's default.
    assert main(["train", "--objective", "began", "--label-weight", "0.2",
                 "--out", str(tmp_path / "b"), *common]) == 0
    run = json.loads((tmp_path / "b" / "runs.jsonl").read_text().splitlines()[0])["settings"]
    assert (run["objective"], run["lr"], run["label_weight"], run["mode_seeking"]) == (
        "began", 1e-4, 0.2, 0.0)
    assert "cutout" in run["diffaugment"]


def test_sigterm_stops_a_run_at_a_step_boundary():
    previous = signal.getsignal(signal.SIGTERM)
    with stop_on_term() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)  # handled: the test process lives on
        assert stop()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_mode_seeking_pairs_share_labels_and_pushes_faces_apart():
    from studio.core.generator.projection import mode_spread

    z = torch.zeros(4, 8)
    z[2:] = 1.0
    same = torch.zeros(4, 3, 8, 8)
    apart = same.clone()
    apart[2:] = 0.5
    assert float(mode_spread(same, z)) == 0.0
    assert float(mode_spread(apart, z)) == pytest.approx(0.5)

    rng = np.random.default_rng(5)
    data = TrainingSet(rng.integers(0, 255, (20, 64, 64, 3), dtype=np.uint8),
                       rng.random((20, 5)).astype(np.float32), np.zeros(20, np.int8), {})
    t = Trainer(data, Path("unused"), _hinge(batch=6, mode_seeking=1.0), torch.device("cpu"))
    seen = []
    t.G.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[1].clone()))
    m = t.train_step()
    y = seen[0]
    assert torch.equal(y[:3], y[3:]) and np.isfinite(m["mode_spread"]) and m["mode_spread"] > 0


def test_r1_flattens_the_discriminator_at_real_faces(monkeypatch, genki_faces):
    """Descending the R1 penalty (through spectral norm, a gradient of a gradient) makes D
    flatter at real faces; a hinge run applies it every ``r1_every`` steps, not more."""
    from studio.core.generator import projection

    data = genki_faces(24)
    t = Trainer(data, Path("unused"), _hinge(batch=6, r1=10.0, r1_every=2),
                torch.device("cpu"))
    torch.manual_seed(1)
    x, y = t.batch()
    d = ProjectionDiscriminator(new_run_config(base_channels=4))
    opt = torch.optim.Adam(d.parameters(), 1e-2)
    before = float(projection.r1_penalty(d, x, y).detach())
    for _ in range(20):
        opt.zero_grad()
        projection.r1_penalty(d, x, y).backward()
        opt.step()
    after = float(projection.r1_penalty(d, x, y).detach())
    assert 0 < after < 0.5 * before, (before, after)

    calls = []
    real = projection.r1_penalty
    monkeypatch.setattr(projection, "r1_penalty",
                        lambda *a: calls.append(1) or real(*a))
    for _ in range(4):
        m = t.train_step()
    assert len(calls) == 2 and all(np.isfinite(v) for v in m.values())
    with pytest.raises(ValueError, match="r1"):
        TrainSettings(objective="began", r1=1.0)


def test_full_resolution_stage_warm_starts_as_the_saved_discriminator(tmp_path, genki_faces):
    """A D without the 64 px stage carries over into a run with it. The stage starts as the
    identity: with its gain at 0 D scores real faces exactly as saved, and at its starting
    gain it ranks them almost as saved. Every weight of the stage then trains from the
    first step. Any other missing tensor is refused."""
    data = genki_faces(24)
    plain = Trainer(data, tmp_path / "a", _hinge(), torch.device("cpu"))
    for _ in range(2):
        plain.train_step()
    plain.export_weights(tmp_path / "carry.safetensors")
    full = Trainer(data, tmp_path / "b", _hinge(d_full_res=True), torch.device("cpu"))
    full.warm_start(tmp_path / "carry.safetensors")
    assert full.step == 2 and float(full.D.gain64.detach()) == pytest.approx(FULL_RES_GAIN)
    x, y = plain.batch()
    plain.D.eval(), full.D.eval()
    with torch.no_grad():  # eval: spectral norm reuses its saved power-iteration vectors
        before, _ = plain.D(x, y)
        started, _ = full.D(x, y)
        full.D.gain64.zero_()
        off, _ = full.D(x, y)
        full.D.gain64.fill_(FULL_RES_GAIN)
    # The carry is fp16, so the two Ds agree to its precision.
    assert torch.allclose(before, off, atol=2e-2), (before - off).abs().max()
    assert np.corrcoef(before.numpy(), started.numpy())[0, 1] > 0.9
    full.D.train()
    dirac = full.D.stage64.weight_orig.detach().clone()
    for _ in range(3):
        m = full.train_step()
    assert all(np.isfinite(v) for v in m.values())
    assert float(full.D.gain64.detach()) != pytest.approx(FULL_RES_GAIN)
    assert not torch.equal(full.D.stage64.weight_orig.detach(), dirac)

    tensors = load_file(str(tmp_path / "carry.safetensors"))
    with safe_open(str(tmp_path / "carry.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    save_file({k: v for k, v in tensors.items() if not k.startswith("D.fc.")},
              str(tmp_path / "broken.safetensors"), metadata=meta)
    with pytest.raises(StudioError, match="missing"):
        Trainer(data, tmp_path / "c", _hinge(d_full_res=True),
                torch.device("cpu")).warm_start(tmp_path / "broken.safetensors")
    with pytest.raises(ValueError, match="d_full_res"):
        TrainSettings(objective="began", d_full_res=True)
