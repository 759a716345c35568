"""A generator run's files: the full state a run resumes from (``state.pt``, tensors and
plain types only, read with ``weights_only``), the small fp16 carry-over a later session
warm-starts from, and the generator the app ships (safetensors, no pickle).

Why apart from the training loop: what a file holds, and what an older file may lack, is
a contract with files already written (models/generator/carry, runs in progress).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from studio.core.errors import StudioError
from studio.core.generator.objectives import UNNAMED_OBJECTIVE, Objective

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

#: The full state's file name in a run's folder.
STATE_FILE = "state.pt"


class Checkpointed(Protocol):
    """What a checkpoint reads and restores: the ``Trainer``'s networks and counters."""

    s: Any  # TrainSettings (a dataclass)
    objective: Objective
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    k: float
    step: int
    seconds: float
    rng: np.random.Generator
    device: torch.device
    out: Path

    @property
    def sampling_net(self) -> nn.Module: ...
    def lr_at(self, step: int) -> float: ...
    def set_lr(self, lr: float) -> None: ...


def _nets(t: Checkpointed) -> dict[str, nn.Module]:
    return {"G": t.G, "D": t.D, **({"G_ema": t.G_ema} if t.G_ema is not None else {})}


def save_state(t: Checkpointed) -> None:
    """Everything a resumed run needs, written whole or not at all; and the generator."""
    t.out.mkdir(parents=True, exist_ok=True)
    state = {
        **{name: net.state_dict() for name, net in _nets(t).items()},
        "opt_g": t.opt_g.state_dict(), "opt_d": t.opt_d.state_dict(),
        "k": t.k, "step": t.step, "seconds": t.seconds,
        "rng": json.dumps(t.rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
        "settings": json.dumps(asdict(t.s)),
    }
    path = t.out / STATE_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint
    export_generator(t, t.out / "generator.safetensors")


def load_state(t: Checkpointed) -> None:
    """Resume from ``save_state``'s file, at this run's learning rate."""
    state = torch.load(t.out / STATE_FILE, map_location=t.device, weights_only=True)
    t.G.load_state_dict(state["G"])
    t.D.load_state_dict(state["D"])
    if t.G_ema is not None:  # a state from before the EMA starts it from G
        t.G_ema.load_state_dict(state.get("G_ema", state["G"]))
    t.opt_g.load_state_dict(state["opt_g"])
    t.opt_d.load_state_dict(state["opt_d"])
    t.k, t.step, t.seconds = state["k"], state["step"], state["seconds"]
    t.rng.bit_generator.state = json.loads(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    t.set_lr(t.lr_at(t.step))  # this run's --lr, not the saved optimiser's


def export_weights(t: Checkpointed, path: Path) -> None:
    """G, its EMA and D as one small fp16 safetensors, with the step and k: what a later
    session warm-starts from (``warm_start``) when the full state (optimiser moments
    included, several times larger) cannot travel with the repository."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{k}": v.detach().to("cpu", torch.float16).contiguous()
               for name, net in _nets(t).items() for k, v in net.state_dict().items()}
    meta = {"settings": json.dumps(asdict(t.s)), "step": str(t.step),
            "k": repr(t.k), "train_seconds": f"{t.seconds:.0f}"}
    save_file(tensors, str(path), metadata=meta)


def warm_start(t: Checkpointed, path: Path) -> None:
    """G, its EMA, D, step and k from ``export_weights``; the optimisers start afresh. A
    carry-over without an EMA starts it from G; parts of D new in this run
    (``Objective.may_lack``) keep their initialisation."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    saved_settings = json.loads(meta.get("settings", "{}"))
    objective = saved_settings.get("objective", UNNAMED_OBJECTIVE)
    if objective != t.s.objective:
        raise StudioError(f"{path.name} was trained with the {objective} objective, not "
                          f"this run's {t.s.objective} (match --objective)")
    saved = saved_settings.get("config")
    if saved is not None and saved != t.s.config.to_dict():
        raise StudioError(f"{path.name} was trained with {saved}, not this run's "
                          f"{t.s.config.to_dict()} (match --channels)")
    may_lack = t.objective.may_lack(t.s)
    for name, net in _nets(t).items():
        part = _part(tensors, name)
        if not part and name == "G_ema":
            part = _part(tensors, "G")
        load_part(net, part, path, may_lack.get(name, ()))
    t.step = int(meta.get("step", 0))
    t.k = float(meta.get("k", t.k))
    t.seconds = float(meta.get("train_seconds", 0))


def _part(tensors: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    return {k.split(".", 1)[1]: v.float() for k, v in tensors.items()
            if k.startswith(f"{name}.")}


def load_part(net: nn.Module, part: Mapping[str, torch.Tensor], path: Path,
              may_lack: tuple[str, ...] = ()) -> None:
    """Load one network's tensors; only keys under the ``may_lack`` prefixes may be
    missing, anything else missing or unexpected is refused."""
    missing, unexpected = net.load_state_dict(part, strict=False)
    missing = [k for k in missing if not k.startswith(may_lack)] if may_lack else missing
    if missing or unexpected:
        raise StudioError(f"{path.name} does not fit this run's networks: missing "
                          f"{missing[:3]}, unexpected {unexpected[:3]}")


def export_generator(t: Checkpointed, path: Path) -> None:
    """fp16 safetensors of G (its EMA when kept) plus its config: what the app ships and
    loads."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", torch.float16).contiguous()
               for k, v in t.sampling_net.state_dict().items()}
    meta = {"config": json.dumps(t.s.config.to_dict()), "step": str(t.step),
            "train_seconds": f"{t.seconds:.0f}"}
    if t.G_ema is not None:
        meta["ema"] = "true"
        meta["ema_decay"] = str(t.s.ema_decay)
    save_file(tensors, str(path), metadata=meta)
