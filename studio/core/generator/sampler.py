"""The shipped conditional generator: load once, sample faces with requested attributes."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from studio.core.analysis.attributes import Attributes
from studio.core.errors import ModelFileError, StudioError
from studio.core.generator.choices import DEFAULT, resolve_weights
from studio.core.generator.latent import interpolate
from studio.core.generator.networks import BeganConfig
from studio.core.generator.networks import Generator as GeneratorNet

DEFAULT_WEIGHTS = DEFAULT.path
#: Batches at least this large run under bfloat16 autocast.
BF16_MIN_BATCH = 8


#: What ``--device`` takes.
DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """The torch device ``name`` asks for (auto: a CUDA GPU when there is one, else the
    CPU), or a StudioError, before any work, when it is unknown or not usable here."""
    kind = name.partition(":")[0]
    if kind not in DEVICES or (name != kind and not name.partition(":")[2].isdigit()):
        raise StudioError(f"unknown device {name!r}: use {', '.join(DEVICES)} (or cuda:N)")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise StudioError(f"device {name}: no usable CUDA GPU here (no NVIDIA GPU or driver "
                          "found); use --device cpu or auto")
    if kind == "cuda" and name != kind and int(name[5:]) >= torch.cuda.device_count():
        raise StudioError(f"device {name}: there are {torch.cuda.device_count()} CUDA GPUs "
                          "here, numbered from 0")
    return torch.device(name)


class Sampler:
    """The shipped generator, loaded once: draws 64x64 RGB faces (uint8) for attributes;
    uses the GPU when there is one."""

    def __init__(self, weights: str | Path | None = None, device: str = "auto") -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = resolve_weights(weights)
        if not path.is_file():
            raise ModelFileError(
                f"Generator weights {path.name} are missing from {path.parent}. They ship with "
                "the repository: restore them with `git checkout models/`, or train your own "
                "with `studio train`."
            )
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            state = load_file(str(path))
        except Exception as exc:  # a damaged file: say so plainly
            raise ModelFileError(f"Generator weights {path} cannot be read ({exc}).") from exc
        self.config = BeganConfig(**json.loads(meta["config"]))
        self.metadata = meta
        self.device = pick_device(device)
        self.net = GeneratorNet(self.config)
        self.net.load_state_dict({k: v.float() for k, v in state.items()})
        self.net.to(self.device, memory_format=torch.channels_last).eval()
        self._lock = threading.Lock()
        self._single: torch.jit.ScriptModule | None = None
        self.path = path

    def freeze_single(self) -> None:
        """Trace a frozen TorchScript copy for one-sample calls on the CPU (about a second).

        The window's slider sample runs beside a UI thread that paints in Python. An eager
        module takes the GIL at every layer and waits behind the painting; a TorchScript
        graph runs without the GIL, which halved the sample's time in the window.
        ``torch.jit`` is deprecated in favour of ``torch.compile``, which needs a C++
        compiler and minutes here; the pinned torch still runs it.
        """
        if self.device.type != "cpu" or self._single is not None:
            return
        z = torch.zeros(1, self.config.z_dim)
        y = torch.full((1, self.config.label_dim), 0.5)
        with self._lock, warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore", FutureWarning)
            self._single = torch.jit.freeze(torch.jit.trace(self.net, (z, y)))

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "CPU"

    def random_z(self, n: int = 1, seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.uniform(-1.0, 1.0, size=(n, self.config.z_dim)).astype(np.float32)

    def sample(self, labels: Attributes | np.ndarray | list, z: np.ndarray | None = None,
               seed: int | None = None, n: int | None = None) -> np.ndarray:
        """Faces (N, 64, 64, 3) uint8. ``labels``: Attributes, or normalised (5,) / (N, 5)."""
        if isinstance(labels, Attributes):
            y = labels.normalized()[None]
        elif isinstance(labels, list) and labels and isinstance(labels[0], Attributes):
            y = np.stack([a.normalized() for a in labels])
        else:
            y = np.atleast_2d(np.asarray(labels, dtype=np.float32))
        if z is None:
            count = n or len(y)
            z = self.random_z(count, seed)
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        if len(y) == 1 and len(z) > 1:
            y = np.repeat(y, len(z), axis=0)
        if len(z) == 1 and len(y) > 1:
            z = np.repeat(z, len(y), axis=0)
        # bf16 pays off for batches (2.5x on this CPU) but not for one slider sample.
        fast = len(z) >= BF16_MIN_BATCH
        with self._lock, torch.inference_mode(), torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=fast):
            zt = torch.from_numpy(z).to(self.device)
            yt = torch.from_numpy(np.clip(y, 0, 1).astype(np.float32)).to(self.device)
            net = self._single if self._single is not None and len(zt) == 1 else self.net
            out = net(zt, yt).float()
        imgs = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1)
        return np.ascontiguousarray(imgs.cpu().numpy())

    @staticmethod
    def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int,
                    mode: str = "slerp") -> np.ndarray:
        """``steps`` latent vectors from z0 to z1 (both ends included)."""
        return interpolate(z0, z1, steps, mode)
