"""A TFLite model file read without TensorFlow: tensors, constants and operators.

A ``.tflite`` file is a FlatBuffer (schema ``tensorflow/compiler/mlir/lite/schema/
schema.fbs``). The ``flatbuffers`` package's generic ``Table`` reader walks it with the
schema's field numbers below, so no generated code, no interpreter and no pickle are
needed: the studio rebuilds the graph in PyTorch from what this returns. Only what a
float32 graph of plain operators uses is read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table
from flatbuffers.util import GetBufferIdentifier

from studio.core.errors import ModelFileError

IDENTIFIER = b"TFL3"

#: Builtin operator codes (schema.fbs ``BuiltinOperator``) the studio's graphs use.
OPERATORS = {0: "ADD", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 18: "MUL", 19: "RELU",
             22: "RESHAPE", 41: "SUB", 101: "ABS"}
#: schema.fbs ``TensorType`` -> numpy.
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
#: Field numbers of the tables read (schema.fbs order, from 0).
_MODEL = {"operator_codes": 1, "subgraphs": 2, "buffers": 4}
_OPCODE = {"deprecated_builtin_code": 0, "builtin_code": 3}
_SUBGRAPH = {"tensors": 0, "inputs": 1, "outputs": 2, "operators": 3}
_TENSOR = {"shape": 0, "type": 1, "buffer": 2, "name": 3}
_OPERATOR = {"opcode_index": 0, "inputs": 1, "outputs": 2, "builtin_options": 4}
_BUFFER = {"data": 0, "offset": 1, "size": 2}
#: ``Conv2DOptions`` and ``DepthwiseConv2DOptions``: field -> number, per operator.
_CONV_OPTIONS = {
    "CONV_2D": {"padding": 0, "stride_w": 1, "stride_h": 2, "activation": 3,
                "dilation_w": 4, "dilation_h": 5},
    "DEPTHWISE_CONV_2D": {"padding": 0, "stride_w": 1, "stride_h": 2, "depth_multiplier": 3,
                          "activation": 4, "dilation_w": 5, "dilation_h": 6},
}
_BYTE_OPTIONS = {"padding", "activation"}  # enums stored as one byte; the rest are int32
_OPTION_DEFAULTS = {"padding": 0, "stride_w": 1, "stride_h": 1, "activation": 0,
                    "dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1}
PADDING_SAME = 0


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = field(default=None, repr=False)  # constants only


@dataclass(frozen=True)
class Operator:
    kind: str  # an OPERATORS name, or "BUILTIN_<code>" for one the studio does not run
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, int]  # the convolutions' options; empty for the others


@dataclass(frozen=True)
class Graph:
    """The first subgraph of a model: tensors by index, operators in execution order."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _slot(table: Table, number: int) -> int:
    return table.Offset(4 + 2 * number)  # the vtable entry of field ``number``; 0 if absent


def _scalar(table: Table, number: int, flags, default: int) -> int:
    o = _slot(table, number)
    return int(table.Get(flags, o + table.Pos)) if o else default


def _ints(table: Table, number: int) -> tuple[int, ...]:
    o = _slot(table, number)
    return tuple(int(v) for v in table.GetVectorAsNumpy(nt.Int32Flags, o)) if o else ()


def _tables(table: Table, number: int) -> list[Table]:
    o = _slot(table, number)
    if not o:
        return []
    start = table.Vector(o)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(o))]


def _child(table: Table, number: int) -> Table | None:
    o = _slot(table, number)
    return Table(table.Bytes, table.Indirect(o + table.Pos)) if o else None


def _string(table: Table, number: int) -> str:
    o = _slot(table, number)
    return table.String(o + table.Pos).decode("utf-8", "replace") if o else ""


def _buffer_bytes(buf: bytes, buffer: Table) -> bytes:
    o = _slot(buffer, _BUFFER["data"])
    if o:
        start = buffer.Vector(o)
        return bytes(buf[start:start + buffer.VectorLen(o)])
    offset = _scalar(buffer, _BUFFER["offset"], nt.Uint64Flags, 0)  # files over 2 GB
    size = _scalar(buffer, _BUFFER["size"], nt.Uint64Flags, 0)
    return bytes(buf[offset:offset + size]) if offset > 1 else b""


def _operator(op: Table, codes: list[int]) -> Operator:
    code = codes[_scalar(op, _OPERATOR["opcode_index"], nt.Uint32Flags, 0)]
    kind = OPERATORS.get(code, f"BUILTIN_{code}")
    options: dict[str, int] = {}
    table = _child(op, _OPERATOR["builtin_options"]) if kind in _CONV_OPTIONS else None
    for name, number in _CONV_OPTIONS.get(kind, {}).items():
        flags = nt.Int8Flags if name in _BYTE_OPTIONS else nt.Int32Flags
        default = _OPTION_DEFAULTS[name]
        options[name] = default if table is None else _scalar(table, number, flags, default)
    return Operator(kind, _ints(op, _OPERATOR["inputs"]), _ints(op, _OPERATOR["outputs"]),
                    options)


def parse_tflite(buf: bytes, name: str = "model") -> Graph:
    """The graph of a TFLite flatbuffer held in ``buf``; ModelFileError if it is not one."""
    if len(buf) < 8 or GetBufferIdentifier(buf, 0) != IDENTIFIER:
        raise ModelFileError(f"{name} is not a TFLite model (no {IDENTIFIER.decode()} mark).")
    try:
        model = Table(buf, struct.unpack_from("<I", buf, 0)[0])  # the root table
        codes = [max(_scalar(c, _OPCODE["deprecated_builtin_code"], nt.Int8Flags, 0),
                     _scalar(c, _OPCODE["builtin_code"], nt.Int32Flags, 0))
                 for c in _tables(model, _MODEL["operator_codes"])]
        buffers = _tables(model, _MODEL["buffers"])
        subgraph = _tables(model, _MODEL["subgraphs"])[0]
        tensors = []
        for t in _tables(subgraph, _SUBGRAPH["tensors"]):
            shape = _ints(t, _TENSOR["shape"])
            kind = _scalar(t, _TENSOR["type"], nt.Int8Flags, 0)
            raw = _buffer_bytes(buf, buffers[_scalar(t, _TENSOR["buffer"], nt.Uint32Flags, 0)])
            data = None
            if raw:
                if kind not in DTYPES:
                    raise ModelFileError(f"{name}: tensor type {kind} is not supported")
                data = np.frombuffer(raw, np.dtype(DTYPES[kind]).newbyteorder("<")
                                     ).reshape(shape).astype(DTYPES[kind])
            tensors.append(Tensor(_string(t, _TENSOR["name"]), shape, data))
        operators = [_operator(op, codes) for op in _tables(subgraph, _SUBGRAPH["operators"])]
        return Graph(tensors, operators, _ints(subgraph, _SUBGRAPH["inputs"]),
                     _ints(subgraph, _SUBGRAPH["outputs"]))
    except (IndexError, ValueError, TypeError, struct.error) as exc:
        raise ModelFileError(f"{name} could not be read as a TFLite model: {exc}") from exc


def read_tflite(path: Path) -> Graph:
    """The graph of the TFLite file at ``path``."""
    return parse_tflite(Path(path).read_bytes(), Path(path).name)
