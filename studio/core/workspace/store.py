"""A curation workspace: one SQLite file holding originals, faces, candidates and decisions.

WAL journaling and one transaction per original mean a crash or a kill loses at most the
photo being processed; nothing outside the file is written, and the originals are only
read (their path and sha256 are recorded, never their pixels).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.analysis.attributes import Attributes
from studio.core.errors import StudioError

SCHEMA = """
CREATE TABLE IF NOT EXISTS originals (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,          -- ok | unreadable | no_face
    message TEXT NOT NULL DEFAULT '',
    width INTEGER, height INTEGER,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    original_id INTEGER NOT NULL REFERENCES originals(id),
    face_index INTEGER NOT NULL,
    box TEXT NOT NULL,
    attributes TEXT NOT NULL,
    landmarks BLOB NOT NULL,       -- (478, 3) float32
    blendshapes BLOB NOT NULL,     -- (52,) float32
    descriptor BLOB,               -- (128,) float32
    UNIQUE (original_id, face_index)
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    face_id INTEGER NOT NULL REFERENCES faces(id),
    method TEXT NOT NULL,          -- gan | 3d
    seed INTEGER NOT NULL,
    labels TEXT NOT NULL,          -- the attributes it was made with
    metrics TEXT NOT NULL,         -- expression and identity measures
    image BLOB NOT NULL,           -- PNG, no metadata
    decision TEXT NOT NULL DEFAULT 'pending',
    note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    UNIQUE (face_id, method, seed)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    old TEXT NOT NULL, new TEXT NOT NULL, at REAL NOT NULL
);
"""

DECISIONS = ("pending", "accepted", "rejected")


class WorkspaceError(StudioError):
    pass


@dataclass(frozen=True)
class FaceRecord:
    id: int
    original_id: int
    original_path: str
    original_sha256: str
    face_index: int
    attributes: Attributes
    landmarks: np.ndarray
    blendshapes: np.ndarray
    descriptor: np.ndarray | None

    @property
    def key(self) -> str:
        """Identifies the face in exports' private mappings without naming the file."""
        return f"{self.original_sha256[:16]}:{self.face_index}"


@dataclass(frozen=True)
class Candidate:
    id: int
    face_id: int
    method: str
    seed: int
    labels: Attributes
    metrics: dict
    decision: str
    note: str

    @property
    def distance(self) -> float | None:
        return self.metrics.get("distance")


def _blob(a: np.ndarray | None) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, np.float32).tobytes()


def _array(b: bytes | None, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if b is None else np.frombuffer(b, np.float32).reshape(shape).copy()


class Workspace:
    """Open (or create) a ``.studio`` workspace file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.path} is not a studio workspace ({exc}).") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: one original with its faces and candidates."""
        with self.db:
            yield self.db

    # -- originals and faces ---------------------------------------------------------
    def original_status(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT status FROM originals WHERE sha256=?", (sha256,)).fetchone()
        return None if row is None else row[0]

    def add_original(self, db: sqlite3.Connection, path: str, sha256: str, status: str,
                     message: str = "", size: tuple[int, int] | None = None) -> int:
        w, h = size or (None, None)
        cur = db.execute(
            "INSERT INTO originals (path, sha256, status, message, width, height, added) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET path=excluded.path,"
            " status=excluded.status, message=excluded.message RETURNING id",
            (path, sha256, status, message, w, h, time.time()))
        return int(cur.fetchone()[0])

    def add_face(self, db: sqlite3.Connection, original_id: int, face_index: int, face) -> int:
        cur = db.execute(
            "INSERT INTO faces (original_id, face_index, box, attributes, landmarks, "
            "blendshapes, descriptor) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(original_id, face_index) DO UPDATE SET attributes=excluded.attributes"
            " RETURNING id",
            (original_id, face_index, json.dumps(list(face.box)),
             json.dumps(face.attributes.to_dict()), _blob(face.landmarks),
             _blob(face.blendshapes), _blob(face.descriptor)))
        return int(cur.fetchone()[0])

    def faces(self, face_id: int | None = None) -> list[FaceRecord]:
        sql = ("SELECT f.id, f.original_id, o.path, o.sha256, f.face_index, f.attributes, "
               "f.landmarks, f.blendshapes, f.descriptor FROM faces f "
               "JOIN originals o ON o.id = f.original_id")
        args: tuple = ()
        if face_id is not None:
            sql, args = sql + " WHERE f.id = ?", (face_id,)
        rows = self.db.execute(sql + " ORDER BY o.id, f.face_index", args).fetchall()
        return [FaceRecord(r[0], r[1], r[2], r[3], r[4], Attributes(**json.loads(r[5])),
                           _array(r[6], (-1, 3)), _array(r[7], (-1,)), _array(r[8], (-1,)))
                for r in rows]

    def face(self, face_id: int) -> FaceRecord:
        found = self.faces(face_id)
        if not found:
            raise WorkspaceError(f"no face {face_id}")
        return found[0]

    # -- candidates ------------------------------------------------------------------
    def add_candidate(self, db: sqlite3.Connection, face_id: int, method: str, seed: int,
                      labels: Attributes, metrics: dict, png: bytes) -> int:
        cur = db.execute(
            "INSERT INTO candidates (face_id, method, seed, labels, metrics, image, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(face_id, method, seed) DO UPDATE SET "
            "metrics=excluded.metrics, image=excluded.image RETURNING id",
            (face_id, method, seed, json.dumps(labels.to_dict()), json.dumps(metrics), png,
             time.time()))
        return int(cur.fetchone()[0])

    def candidates(self, face_id: int | None = None, decision: str | None = None
                   ) -> list[Candidate]:
        sql = ("SELECT id, face_id, method, seed, labels, metrics, decision, note "
               "FROM candidates WHERE 1=1")
        args: list = []
        if face_id is not None:
            sql += " AND face_id=?"
            args.append(face_id)
        if decision is not None:
            sql += " AND decision=?"
            args.append(decision)
        rows = self.db.execute(sql + " ORDER BY face_id, method, id", args).fetchall()
        return [Candidate(r[0], r[1], r[2], r[3], Attributes(**json.loads(r[4])),
                          json.loads(r[5]), r[6], r[7]) for r in rows]

    def face_of(self, candidate_id: int) -> int:
        row = self.db.execute("SELECT face_id FROM candidates WHERE id=?",
                              (candidate_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no candidate {candidate_id}")
        return int(row[0])

    def image(self, candidate_id: int) -> bytes:
        row = self.db.execute("SELECT image FROM candidates WHERE id=?",
                              (candidate_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no candidate {candidate_id}")
        return row[0]

    def decide(self, candidate_id: int, decision: str, note: str | None = None) -> None:
        if decision not in DECISIONS:
            raise WorkspaceError(f"decision must be one of {DECISIONS}, not {decision!r}")
        with self.db:
            row = self.db.execute("SELECT decision FROM candidates WHERE id=?",
                                  (candidate_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"no candidate {candidate_id}")
            self.db.execute("INSERT INTO history (candidate_id, old, new, at) VALUES "
                            "(?, ?, ?, ?)", (candidate_id, row[0], decision, time.time()))
            self.db.execute("UPDATE candidates SET decision=? WHERE id=?",
                            (decision, candidate_id))
            if note is not None:
                self.db.execute("UPDATE candidates SET note=? WHERE id=?", (note, candidate_id))

    def undo(self) -> int | None:
        """Revert the last decision; returns its candidate id, or None when there is none."""
        with self.db:
            row = self.db.execute("SELECT id, candidate_id, old FROM history "
                                  "ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            self.db.execute("UPDATE candidates SET decision=? WHERE id=?", (row[2], row[1]))
            self.db.execute("DELETE FROM history WHERE id=?", (row[0],))
            return int(row[1])

    def summary(self) -> dict[str, int]:
        q = self.db.execute
        out = {f"originals_{s}": n for s, n in
               q("SELECT status, COUNT(*) FROM originals GROUP BY status")}
        out["faces"] = q("SELECT COUNT(*) FROM faces").fetchone()[0]
        out.update({f"candidates_{d}": n for d, n in
                    q("SELECT decision, COUNT(*) FROM candidates GROUP BY decision")})
        return out


def face_analysis(face: FaceRecord):
    """The stored face as the analysis object the comparison code takes."""
    from studio.core.analysis.analyzer import FaceAnalysis

    pts = face.landmarks
    box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()),
           float(pts[:, 1].max()))
    return FaceAnalysis(box, pts, face.blendshapes, np.eye(4), face.attributes,
                        face.descriptor)


def needs_attention(candidate: Candidate, kind: str) -> bool:
    """The curation view's filters."""
    m = candidate.metrics
    if kind == "pending":
        return candidate.decision == "pending"
    if kind == "rejected":
        return candidate.decision == "rejected"
    if kind == "identity too close":
        d = m.get("distance")
        return d is None or d < IDENTITY_MARGIN
    if kind == "expression off":
        return (not m.get("found") or m.get("smile_kept") is False
                or max(abs(m.get(k, 0.0)) for k in ("d_yaw", "d_pitch", "d_roll")) > POSE_OFF_DEG)
    return True


#: A candidate this close to the 0.6 threshold is flagged for a second look.
IDENTITY_MARGIN = 0.65
POSE_OFF_DEG = 10.0
FILTERS = ("all", "pending", "rejected", "identity too close", "expression off")
