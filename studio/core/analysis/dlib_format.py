"""dlib's binary network format (``dlib_face_recognition_resnet_model_v1.dat``), read
without dlib and without pickle, and cached as safetensors keyed by the file's sha256.

Follows dlib/serialize.h, dlib/float_details.h and dlib/dnn/tensor.h; the network built
from it is :mod:`studio.core.analysis.dlib_resnet`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.assets import sha256_of, third_party_file, user_cache_dir

MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
#: Converted weights live here, one file per .dat keyed by its sha256: the user cache
#: directory, as for every other cache of the studio.
CACHE_DIR = user_cache_dir() / "dlib_resnet"
#: Bumped when the cached layout changes, so stale caches are rebuilt rather than misread.
CACHE_FORMAT = 1


class DlibFormatError(ValueError):
    """The file is not a dlib network of the kind this module understands."""


# ----------------------------------------------------------------------------------------
# What the parser returns


@dataclass(frozen=True)
class DlibLayer:
    """One computational layer of a dlib network, in forward (input to output) order.

    ``kind`` is one of "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    or "tag". dlib writes tags and skips identically (a version number, no ID), so both
    appear as "tag"; which is which comes from the known architecture.
    """

    kind: str
    #: Integer settings, e.g. stride_y, padding_x, nr (window rows; 0 = whole image).
    config: dict[str, int] = field(default_factory=dict)
    #: Arrays: con ``weight`` (out, in, kh, kw), ``bias`` (out,); affine ``gamma``, ``beta``
    #: (channels,); fc ``weight`` (in, out) as dlib stores it, ``bias`` if it has one.
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    """A parsed dlib network: its input layer's settings, layers and loss parameters."""

    input_mean: tuple[float, float, float]  # RGB, subtracted before dividing by 256
    input_size: tuple[int, int]  # rows, columns the input layer insists on
    layers: tuple[DlibLayer, ...]
    loss: dict[str, float]  # loss_metric's margin and dist_thresh (unused at inference)


# ----------------------------------------------------------------------------------------
# dlib's serialization (dlib/serialize.h, dlib/float_details.h, dlib/dnn/tensor.h)


class _Reader:
    """Reads dlib's serialized primitives from a byte buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"file ends early (wanted {n} bytes at offset {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self) -> int:
        """Control byte (bit 7: negative, low 4 bits: byte count), then |value| little-endian."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def peek_integer(self) -> int:
        pos = self.pos
        try:
            return self.integer()
        finally:
            self.pos = pos

    def real(self) -> float:
        """float_details: mantissa and exponent as integers, value = mantissa * 2**exponent."""
        if self.data[self.pos] & 0x70:
            raise DlibFormatError("old ASCII float format is not supported")
        mantissa = self.integer()
        exponent = self.integer()
        if exponent >= 32000:  # is_inf, is_ninf, is_nan
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def boolean(self) -> bool:
        ch = bytes(self._take(1))
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {ch!r} at {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        return bytes(self._take(self.integer())).decode("latin-1")

    def tensor(self) -> np.ndarray:
        """resizable_tensor: version, (num_samples, k, nr, nc), then the floats."""
        version = self.integer()
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:  # raw little-endian float32
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        elif version == 1:  # one float_details per element
            values = np.array([self.real() for _ in range(count)], dtype=np.float32)
        else:
            raise DlibFormatError(f"unsupported tensor version {version}")
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """alias_tensor: version 1 and the shape of a view into a layer's params."""
        version = self.integer()
        if version != 1:
            raise DlibFormatError(f"unsupported alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))  # type: ignore[return-value]


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Consecutive views of a layer's flat parameter tensor, as dlib's alias_tensors are."""
    flat = params.reshape(-1)
    out, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        if start + n > flat.size:
            raise DlibFormatError("layer parameters are shorter than their aliases")
        out.append(flat[start : start + n].reshape(shape).copy())
        start += n
    return out


def _read_layer_details(r: _Reader) -> DlibLayer:
    """One layer's details object, dispatched on the version string dlib writes first."""
    name = r.string()
    if name == "con_4":
        params = r.tensor()
        num_filters, nr, nc = r.integer(), r.integer(), r.integer()
        stride_y, stride_x, padding_y, padding_x = (r.integer() for _ in range(4))
        filters, biases = r.alias_tensor(), r.alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.real()
        weight, bias = _split(params, filters, (biases[1],))
        if weight.shape[:1] + weight.shape[2:] != (num_filters, nr, nc):
            raise DlibFormatError(f"con filters {weight.shape} are not {num_filters}x{nr}x{nc}")
        config = dict(stride_y=stride_y, stride_x=stride_x,
                      padding_y=padding_y, padding_x=padding_x)
        return DlibLayer("con", config, {"weight": weight, "bias": bias})
    if name == "affine_":
        params = r.tensor()
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        mode = r.integer()  # CONV_MODE = 0: one gamma and beta per channel
        if gamma[2:] != (1, 1) or beta != gamma:
            raise DlibFormatError(f"unsupported affine layer (mode {mode}, gamma {gamma})")
        g, b = _split(params, gamma, beta)
        return DlibLayer("affine", {"mode": mode}, {"gamma": g.reshape(-1), "beta": b.reshape(-1)})
    if name in ("relu_", "add_prev_"):
        return DlibLayer(name.rstrip("_"))
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(name[:-2], {k: r.integer() for k in keys})
    if name == "fc_2":
        num_outputs, num_inputs = r.integer(), r.integer()
        params = r.tensor()
        weights, _biases = r.alias_tensor(), r.alias_tensor()
        bias_mode = r.integer()  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        for _ in range(4):
            r.real()
        if weights[:2] != (num_inputs, num_outputs):
            raise DlibFormatError(f"fc weights {weights} do not match {num_inputs}x{num_outputs}")
        shapes = [(num_inputs, num_outputs)] + ([(num_outputs,)] if bias_mode == 0 else [])
        arrays = dict(zip(("weight", "bias"), _split(params, *shapes), strict=False))
        return DlibLayer("fc", {"num_inputs": num_inputs, "num_outputs": num_outputs}, arrays)
    raise DlibFormatError(f"unsupported dlib layer type {name!r}")


def parse_dlib_dat(path: str | os.PathLike[str]) -> DlibNet:
    """Parse a dlib ``loss_metric`` network file (such as dlib's face recognition ResNet).

    dlib writes a network from the loss layer inwards: each wrapper writes its version and
    then its subnetwork before its own details, so the file opens with a run of versions
    (2 for add_layer, 1 for tag/skip, 2 or 3 for the add_layer on the input), then the
    input layer, then each layer's details from the input outwards, each followed by
    three flags and three (empty) tensors.
    """
    r = _Reader(Path(path).read_bytes())
    if r.integer() != 1:
        raise DlibFormatError("not a dlib add_loss_layer (version 1)")
    loss_name = r.string()
    if loss_name == "loss_metric_2":
        loss = {"margin": r.real(), "dist_thresh": r.real()}
    elif loss_name == "loss_metric_":
        loss = {"margin": 0.1, "dist_thresh": 0.75}
    else:
        raise DlibFormatError(f"unsupported loss layer {loss_name!r}")

    wrappers: list[int] = []  # versions, outermost first
    while r.peek_integer() in (1, 2, 3):
        wrappers.append(r.integer())
    if not wrappers or wrappers[-1] not in (2, 3) or 3 in wrappers[:-1]:
        raise DlibFormatError("unexpected layer versions: only dlib >= 19.5 files are read")

    input_name = r.string()
    if input_name != "input_rgb_image_sized":
        raise DlibFormatError(f"unsupported input layer {input_name!r}")
    mean = (r.real(), r.real(), r.real())
    size = (r.integer(), r.integer())

    layers = []
    for depth, version in enumerate(reversed(wrappers)):
        if version == 1:  # add_tag_layer / add_skip_layer: nothing after the subnetwork
            layers.append(DlibLayer("tag"))
            continue
        layers.append(_read_layer_details(r))
        for _ in range(3):  # setup called, gradient stale, output disabled
            r.boolean()
        for _ in range(3):  # x_grad, cached_output, params_grad (grad_final next to input)
            r.tensor()
        if depth == 0 and version == 3:
            r.integer()  # the input add_layer's sample_expansion_factor
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} bytes left after the network")
    return DlibNet(mean, size, tuple(layers), loss)


# ----------------------------------------------------------------------------------------
# Cache: the parsed network as safetensors (arrays) plus JSON metadata (everything else)


def _cache_path(sha256: str, cache_dir: Path) -> Path:
    return cache_dir / f"{sha256}.safetensors"


def _save_cache(net: DlibNet, path: Path) -> None:
    from safetensors.numpy import save_file

    tensors = {f"{i}.{name}": np.ascontiguousarray(a)
               for i, layer in enumerate(net.layers) for name, a in layer.arrays.items()}
    meta = {
        "format": CACHE_FORMAT,
        "input_mean": list(net.input_mean),
        "input_size": list(net.input_size),
        "loss": net.loss,
        "layers": [{"kind": layer.kind, "config": layer.config} for layer in net.layers],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a concurrent reader never sees half a file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"dlib_net": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_cache(path: Path) -> DlibNet | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = json.loads((fh.metadata() or {})["dlib_net"])
            if meta.get("format") != CACHE_FORMAT:
                return None
            arrays: dict[int, dict[str, np.ndarray]] = {}
            for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                index, name = key.split(".", 1)
                arrays.setdefault(int(index), {})[name] = fh.get_tensor(key)
    except (OSError, KeyError, ValueError, SafetensorError):
        return None  # unreadable or foreign: rebuild from the .dat
    layers = tuple(DlibLayer(spec["kind"], spec["config"], arrays.get(i, {}))
                   for i, spec in enumerate(meta["layers"]))
    return DlibNet(tuple(meta["input_mean"]), tuple(meta["input_size"]), layers, meta["loss"])


def load_dlib_net(path: str | os.PathLike[str] | None = None,
                  cache_dir: str | os.PathLike[str] | None = CACHE_DIR) -> DlibNet:
    """The parsed network, from the safetensors cache when the .dat's sha256 is known.

    ``path`` defaults to the verified third-party model; ``cache_dir=None`` disables the
    cache. A cache that cannot be written (read-only install) is silently skipped.
    """
    dat = Path(path) if path is not None else third_party_file(MODEL_NAME)
    if cache_dir is None:
        return parse_dlib_dat(dat)
    cached = _cache_path(sha256_of(dat), Path(cache_dir))
    if cached.is_file() and (net := _load_cache(cached)) is not None:
        return net
    net = parse_dlib_dat(dat)
    with contextlib.suppress(OSError):  # e.g. a read-only install: just parse next time
        _save_cache(net, cached)
    return net
