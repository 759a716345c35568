"""Training objectives as strategies (issue 26): each objective declares its defaults,
validation, discriminator, betas, step and what a warm start may lack; the command line's
``studio train`` flags are built from ``TrainSettings``, so the two cannot disagree."""

from __future__ import annotations

import argparse
import inspect
import math
from dataclasses import asdict, fields

import numpy as np
import pytest
import torch

from studio.cli import build_parser
from studio.cli import generator as cli
from studio.core.generator import checkpoint, training
from studio.core.generator.choices import BY_KEY
from studio.core.generator.objectives import (
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    BeganObjective,
)
from studio.core.generator.sampler import Sampler
from studio.core.generator.settings import (
    TrainSettings,
    flag_fields,
    new_run_config,
    objective_defaults,
)
from studio.core.generator.training import Trainer
from studio.core.generator.training_data import TrainingSet

CPU = torch.device("cpu")


def _data(n: int = 16) -> TrainingSet:
    rng = np.random.default_rng(0)
    return TrainingSet(rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8),
                       rng.random((n, 5)).astype(np.float32), np.zeros(n, np.int8), {})


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _settings(*flags: str) -> TrainSettings:
    return cli._settings(build_parser().parse_args(["train", *flags]))


def test_train_flags_are_the_settings_fields():
    options = {a.dest: a for a in _train_parser()._actions}
    flagged = flag_fields()
    assert {f.name for f in flagged} >= {"objective", "lr", "batch", "seed", "r1",
                                         "mode_seeking", "label_weight", "d_full_res"}
    for f in flagged:
        action = options[f.name]
        assert action.default == f.default, f.name
        assert f.metadata["help"] in action.help
        for objective, value in objective_defaults(f.name).items():
            assert f"{value:g} for {objective}" in action.help
    assert options["label_standardize"].option_strings == ["--plain-label-loss"]
    assert tuple(options["objective"].choices) == tuple(OBJECTIVES)
    # Every per-objective default is a field left at None, filled from the objective.
    nones = {f.name for f in fields(TrainSettings) if f.default is None} - {"config"}
    assert all(set(o.defaults) == nones for o in OBJECTIVES.values())


def test_train_with_no_flags_is_the_default_settings():
    """One default: `studio train` and `TrainSettings()` both train the shipped default
    generator's objective, with its measured settings, at its width."""
    assert TrainSettings().objective == DEFAULT_OBJECTIVE == "hinge"
    assert _settings() == TrainSettings()
    for name, objective in OBJECTIVES.items():
        s = _settings("--objective", name)
        assert s == TrainSettings(objective=name)
        assert {k: getattr(s, k) for k in objective.defaults} == dict(objective.defaults)
        assert s.config == new_run_config(base_channels=objective.base_channels)
    assert _settings("--legacy") == TrainSettings.legacy()
    flagged = _settings("--lr", "1e-3", "--plain-label-loss", "--channels", "8", "--r1", "2")
    assert (flagged.lr, flagged.label_standardize, flagged.config.base_channels,
            flagged.r1) == (1e-3, False, 8, 2.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--objective", "wgan"])


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_steps_a_tiny_run(name, tmp_path):
    objective = OBJECTIVES[name]
    settings = TrainSettings(batch=4, objective=name, label_ramp_steps=1,
                             config=new_run_config(base_channels=4))
    t = Trainer(_data(), tmp_path, settings, CPU)
    assert type(t.D) is type(objective.discriminator(settings))
    assert t.opt_g.param_groups[0]["betas"] == objective.betas
    before = [p.detach().clone() for p in t.G.parameters()]
    losses = [t.train_step() for _ in range(2)]
    assert t.step == 2 and losses[0].keys() == losses[1].keys()
    assert all(math.isfinite(v) for m in losses for v in m.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters(), strict=True))
    t.save_state()  # and it resumes where it stopped
    again = Trainer(_data(), tmp_path, settings, CPU)
    again.load_state()
    assert again.step == 2 and again.train_step().keys() == losses[0].keys()


def test_an_objective_registered_at_run_time_trains(monkeypatch, tmp_path):
    """The trainer, the settings and the command line read the registry; none names an
    objective."""

    class Toy(BeganObjective):
        name = "toy"
        betas = (0.9, 0.9)

    monkeypatch.setitem(OBJECTIVES, "toy", Toy())
    settings = TrainSettings(batch=4, objective="toy", config=new_run_config(base_channels=4))
    assert settings.lr == BeganObjective.defaults["lr"]
    t = Trainer(_data(), tmp_path, settings, CPU)
    assert t.opt_d.param_groups[0]["betas"] == (0.9, 0.9)
    assert math.isfinite(t.train_step()["L_real"])
    assert _settings("--objective", "toy").objective == "toy"
    for module in (training, checkpoint):
        source = inspect.getsource(module)
        assert '"hinge"' not in source and '"began"' not in source, module.__name__


def test_validation_is_the_objectives():
    with pytest.raises(ValueError, match="objective must be one of"):
        TrainSettings(objective="wgan")
    with pytest.raises(ValueError, match="r1"):
        TrainSettings(objective="began", r1=1.0)
    with pytest.raises(ValueError, match="d_full_res"):
        TrainSettings(objective="began", d_full_res=True)
    with pytest.raises(ValueError, match="r1_every"):
        TrainSettings(r1_every=0)
    assert TrainSettings(r1=1.0, d_full_res=True).r1 == 1.0  # the hinge's own options


def test_the_shipped_files_load_and_the_carry_over_warm_starts_the_default(tmp_path):
    """The shipped generators draw, and the shipped carry-over fits a run at the default
    settings (the objective and the width it was trained with)."""
    for key in ("projection", "thesis"):
        faces = Sampler(BY_KEY[key].path, device="cpu").sample(
            np.full(5, 0.5, np.float32), n=1, seed=0)
        assert faces.shape == (1, 64, 64, 3) and faces.std() > 0
    carry = BY_KEY["projection"].path.parent / "carry" / "projection_64_carry.safetensors"
    t = Trainer(_data(), tmp_path, TrainSettings(), CPU)
    t.warm_start(carry)
    assert t.step == 39336
    saved = Sampler(BY_KEY["projection"].path, device="cpu").net.state_dict()
    ema = t.G_ema.state_dict()
    assert all(torch.equal(v.float(), ema[k].half().float()) for k, v in saved.items())
    assert asdict(t.s)["objective"] == DEFAULT_OBJECTIVE
