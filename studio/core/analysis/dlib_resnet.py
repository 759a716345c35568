"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

dlib-bin is built without BLAS, so ``compute_face_descriptor`` takes ~170 ms per face on
a small CPU. The same network in PyTorch takes a fraction of that and can batch. This
module reads dlib's own binary serialization (no dlib needed, no pickle), rebuilds the
network of dlib's ``dnn_face_recognition_ex.cpp`` and caches the weights as safetensors.

The network, input side first: input_rgb_image_sized<150> ((RGB - mean) / 256), con 32
7x7/2, affine, relu, max_pool 3x3/2, then residual blocks (3x32, down+3x64, down+2x128,
down+2x256, down+256), avg_pool_everything, fc_no_bias 128. A residual block is
``relu(x + affine(con(relu(affine(con(x))))))``; a "down" block strides its first con by
2 and adds ``avg_pool 2x2/2 (x)`` instead of ``x``. dlib adds tensors of different sizes
by zero-padding the smaller one at its end (more channels, and 3x3 + 4x4 in the 256
down block), which :func:`_add_zero_padded` reproduces.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from studio.core.analysis.dlib_format import (
    CACHE_DIR,
    DlibFormatError,
    DlibLayer,
    DlibNet,
    load_dlib_net,
)

DESCRIPTOR_SIZE = 128
#: The residual stage whose output :meth:`DlibResNet.features` pools (0 = the 32-channel
#: stage at the input side): the 128-channel stage, 8x8 on a 150 px chip, halfway between
#: texture and identity.
POOLED_STAGE = 2
#: At most this many threads for the forward pass: past 4 a 150 px ResNet gains little.
MAX_THREADS = 4

# ----------------------------------------------------------------------------------------
# The network in PyTorch


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the smaller tensor counts as zeros past its end (channels, rows, cols)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


def _conv_affine(con: DlibLayer, affine: DlibLayer) -> nn.Conv2d:
    """A Conv2d equal to dlib's con followed by its affine (frozen batch norm), folded."""
    gamma = affine.arrays["gamma"].astype(np.float64)
    weight = con.arrays["weight"] * gamma[:, None, None, None]
    bias = con.arrays["bias"] * gamma + affine.arrays["beta"]
    out_ch, in_ch, kh, kw = weight.shape
    cfg = con.config
    conv = nn.Conv2d(in_ch, out_ch, (kh, kw), stride=(cfg["stride_y"], cfg["stride_x"]),
                     padding=(cfg["padding_y"], cfg["padding_x"]), device="meta")
    conv.weight = _frozen(weight)
    conv.bias = _frozen(bias)
    return conv


def _frozen(array: np.ndarray) -> nn.Parameter:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if t.ndim == 4:  # NHWC is ~20% faster on CPU, and chips arrive NHWC anyway
        t = t.contiguous(memory_format=torch.channels_last)
    return nn.Parameter(t, requires_grad=False)


class _Pool(nn.Module):
    """dlib's max_pool / avg_pool; a window of 0 means the whole map (avg_pool_everything)."""

    def __init__(self, layer: DlibLayer) -> None:
        super().__init__()
        cfg = layer.config
        if cfg["padding_y"] or cfg["padding_x"]:  # this network has none; not verified
            raise DlibFormatError("padded pooling is not supported")
        self.is_max = layer.kind == "max_pool"
        self.window = (cfg["nr"], cfg["nc"])
        self.stride = (cfg["stride_y"], cfg["stride_x"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = (self.window[0] or x.shape[2], self.window[1] or x.shape[3])
        pool = F.max_pool2d if self.is_max else F.avg_pool2d
        return pool(x, window, self.stride)


class _Residual(nn.Module):
    """relu(skip(x) + affine(con(relu(affine(con(x)))))); skip is avg_pool when down."""

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, pool: _Pool | None) -> None:
        super().__init__()
        self.conv1, self.conv2, self.pool = conv1, conv2, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        skip = self.pool(x) if self.pool is not None else x
        return F.relu(_add_zero_padded(y, skip))


class _Layers:
    """Takes layers off the parsed list in order, checking each is what the design says."""

    def __init__(self, layers: tuple[DlibLayer, ...]) -> None:
        self.layers, self.i = layers, 0

    def take(self, *kinds: str) -> list[DlibLayer]:
        got = list(self.layers[self.i : self.i + len(kinds)])
        if tuple(layer.kind for layer in got) != kinds:
            raise DlibFormatError(
                f"layers {self.i}..: expected {kinds}, found {tuple(g.kind for g in got)}"
            )
        self.i += len(kinds)
        return got


class DlibResNet(nn.Module):
    """dlib's face recognition ResNet: (N, 3, 150, 150) RGB in 0..255 -> (N, 128)."""

    def __init__(self, net: DlibNet) -> None:
        super().__init__()
        self.input_size = net.input_size
        mean = torch.tensor(net.input_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

        seq = _Layers(net.layers)
        con, affine, _, pool = seq.take("con", "affine", "relu", "max_pool")
        self.stem = _conv_affine(con, affine)
        self.stem_pool = _Pool(pool)
        blocks = []
        while seq.i < len(net.layers) and net.layers[seq.i].kind == "tag":
            c1, a1, _, c2, a2 = seq.take("tag", "con", "affine", "relu", "con", "affine")[1:]
            down = None
            if net.layers[seq.i].kind == "tag":  # tag2, skip1, avg_pool: a down block
                down = _Pool(seq.take("tag", "tag", "avg_pool")[2])
            seq.take("add_prev", "relu")
            blocks.append(_Residual(_conv_affine(c1, a1), _conv_affine(c2, a2), down))
        self.blocks = nn.Sequential(*blocks)
        #: Index of each stage's last block (a stage ends before the next down block).
        self.stage_ends = [i - 1 for i, b in enumerate(blocks) if i and b.pool is not None]
        self.stage_ends.append(len(blocks) - 1)
        pool, fc = seq.take("avg_pool", "fc")
        if pool.config["nr"] or pool.config["nc"]:
            raise DlibFormatError("expected avg_pool_everything before the fc layer")
        weight = fc.arrays["weight"].T  # dlib multiplies x (N, in) by W (in, out)
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in fc.arrays,
                            device="meta")
        self.fc.weight = _frozen(weight)
        if "bias" in fc.arrays:
            self.fc.bias = _frozen(fc.arrays["bias"])
        if seq.i != len(net.layers):
            raise DlibFormatError(f"{len(net.layers) - seq.i} unexpected layers at the end")
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        x = (x - self.mean) / 256.0  # input_rgb_image_sized
        x = self.stem_pool(F.relu(self.stem(x)))
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def features(self, x: torch.Tensor, stage: int = POOLED_STAGE
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The descriptor (equal to ``forward``'s) and the global average of residual
        stage ``stage``'s output, from one pass: a mid-level view for realism measures."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = (x - self.mean) / 256.0
        x = self.stem_pool(F.relu(self.stem(x)))
        end = self.stage_ends[stage]
        pooled = None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == end:
                pooled = x.mean(dim=(2, 3))
        return self.fc(x.mean(dim=(2, 3))), pooled


# ----------------------------------------------------------------------------------------
# Public entry points


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (process-wide!) to ``threads`` or to one CPU fewer than
    there are, at most MAX_THREADS.

    Leaving a CPU free matters more than it seems: torch's OpenMP threads wait for each
    other after every layer, so when another process holds one of two cores, two threads
    took 260-770 ms per chip where one thread took 30 ms.
    """
    if threads is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            available = os.cpu_count() or 1
        threads = max(1, min(available - 1, MAX_THREADS))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


class DlibFaceEncoder:
    """128-d dlib face descriptors of aligned 150x150 chips, batched, on the CPU.

    Thread-safe: the model is only read. Building one sets torch's thread count
    (see :func:`configure_threads`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 cache_dir: str | os.PathLike[str] | None = CACHE_DIR,
                 threads: int | None = None) -> None:
        configure_threads(threads)
        self.model = DlibResNet(load_dlib_net(path, cache_dir))

    def descriptors(self, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips, as ``dlib.get_face_chip(rgb, shape, 150, 0.25)``
        gives them (one (150, 150, 3) chip also works), to (N, 128) float32 descriptors
        equal to dlib's ``compute_face_descriptor(chip)``."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        chips = self._checked(chips)
        out = np.empty((len(chips), DESCRIPTOR_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for start, x in self._batches(chips, batch_size):
                out[start : start + len(x)] = self.model(x).numpy()
        return out

    def features(self, chips: np.ndarray, batch_size: int = 32
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 150, 150, 3) uint8 RGB chips to ((N, 128) descriptors as :meth:`descriptors`
        gives them, (N, C) pooled outputs of residual stage ``POOLED_STAGE``)."""
        chips = self._checked(chips)
        descs, pooled = [], []
        with torch.inference_mode():
            for _, x in self._batches(chips, batch_size):
                d, p = self.model.features(x)
                descs.append(d.numpy())
                pooled.append(p.numpy())
        width = self.pooled_size
        return (np.concatenate(descs) if descs else np.empty((0, DESCRIPTOR_SIZE), np.float32),
                np.concatenate(pooled) if pooled else np.empty((0, width), np.float32))

    @property
    def pooled_size(self) -> int:
        """Channels of the pooled stage (128)."""
        block = self.model.blocks[self.model.stage_ends[POOLED_STAGE]]
        return int(block.conv2.out_channels)

    def _checked(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        rows, cols = self.model.input_size
        if chips.ndim != 4 or chips.shape[1:] != (rows, cols, 3):
            raise ValueError(f"expected (N, {rows}, {cols}, 3) RGB chips, got {chips.shape}")
        return chips

    @staticmethod
    def _batches(chips: np.ndarray, batch_size: int):
        for start in range(0, len(chips), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(chips[start : start + batch_size]))
            yield start, batch.permute(0, 3, 1, 2).float()


__all__ = ["DESCRIPTOR_SIZE", "POOLED_STAGE", "DlibFaceEncoder", "DlibResNet", "configure_threads"]
