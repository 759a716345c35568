"""MediaPipe's canonical face mesh: 468 vertices, their UV layout and the triangle list.

It lives in ``geometry_pipeline_metadata_landmarks.binarypb`` inside the landmarker's
``face_landmarker.task`` bundle (a zip). The mediapipe wheel ships no Python classes for
that protobuf, so the few fields needed are read from the wire format directly:
``canonical_mesh`` (field 1) holds ``vertex_buffer`` (field 3: x, y, z, u, v per vertex,
in centimetres) and ``index_buffer`` (field 4: triangles).
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from functools import cache

import numpy as np

from studio.core.assets import third_party_file
from studio.core.errors import ModelFileError

MESH_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
N_VERTICES = 468  # the landmarker adds 10 iris points (468..477) that are not in the mesh


@dataclass(frozen=True)
class CanonicalMesh:
    vertices: np.ndarray  # (468, 3) cm; x right, y up, z towards the viewer
    uv: np.ndarray  # (468, 2) in [0, 1]; v = 0 at the top of the texture
    triangles: np.ndarray  # (898, 3) vertex indices, counter-clockwise seen from the front


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        byte = buf[i]
        i += 1
        out |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return out, i


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs; packed repeated fields come back as raw bytes."""
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


def parse_canonical_mesh(metadata: bytes) -> CanonicalMesh:
    mesh = next(v for n, v in _fields(metadata) if n == 1)
    floats: list[float] = []
    indices: list[int] = []
    for number, value in _fields(mesh):
        if number == 3:  # fixed32 floats, one per field or packed
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value))
        elif number == 4:
            if isinstance(value, int):
                indices.append(value)
            else:  # packed varints
                i = 0
                while i < len(value):
                    v, i = _varint(value, i)
                    indices.append(v)
    vb = np.asarray(floats, np.float32).reshape(-1, 5)
    return CanonicalMesh(vb[:, :3].copy(), vb[:, 3:].copy(),
                         np.asarray(indices, np.int32).reshape(-1, 3))


@cache
def canonical_mesh() -> CanonicalMesh:
    path = third_party_file("face_landmarker.task")
    try:
        with zipfile.ZipFile(path) as bundle:
            mesh = parse_canonical_mesh(bundle.read(MESH_MEMBER))
    except (KeyError, zipfile.BadZipFile, ValueError, StopIteration) as exc:
        raise ModelFileError(f"{path.name} holds no readable canonical face mesh ({exc}); "
                             "run `make models` to fetch it again.") from exc
    if mesh.vertices.shape != (N_VERTICES, 3):
        raise ModelFileError(f"unexpected canonical mesh with {len(mesh.vertices)} vertices")
    return mesh
