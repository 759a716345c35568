"""Refiner checkpoints without pickle: networks and Adam's moments in one safetensors file,
the counters and settings in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core.errors import StudioError


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for idx, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            out[f"{prefix}.{idx}.{name}"] = torch.as_tensor(value).detach().clone()
    return out


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   prefix: str) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def module_tensors(net: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().contiguous().clone()
            for k, v in net.state_dict().items()}


def load_module(net: nn.Module, tensors: dict[str, torch.Tensor], prefix: str,
                path: Path) -> None:
    part = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing, unexpected = net.load_state_dict(part, strict=False)
    if missing or unexpected:
        raise StudioError(f"{path}: does not fit the refiner's {prefix} network "
                          f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})")


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, object]) -> None:
    """Written whole: a temporary file in the same folder, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"json": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("json", "{}"))
    except FileNotFoundError as exc:
        raise StudioError(f"refiner weights {path} are missing") from exc
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise StudioError(f"refiner weights {path} cannot be read ({exc})") from exc
    return tensors, meta
