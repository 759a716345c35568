"""A curation workspace: one SQLite file holding originals, faces, candidates and decisions.

WAL journaling and one transaction per original mean a crash or a kill loses at most the
photo being processed; nothing outside the file is written, and the originals are only
read (their absolute paths and sha256 are recorded, never their pixels). Opening checks
the file (``PRAGMA quick_check``, a few ms per 10 MB), so that a damaged workspace is
refused at once with the way to recover it, not half-way through a batch or an export.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from studio.core.analysis.attributes import Attributes
from studio.core.workspace import history
from studio.core.workspace.history import Step
from studio.core.workspace.integrity import WorkspaceError, check_header, damaged

if TYPE_CHECKING:
    from studio.core.workspace.paths import RelinkReport

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
    descriptor BLOB,               -- (128,) float32, dlib's
    descriptor2 BLOB,              -- (192,) float32, the second recognizer's (schema 3)
    UNIQUE (original_id, face_index)
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    face_id INTEGER NOT NULL REFERENCES faces(id),
    method TEXT NOT NULL,          -- a candidate method's key (surrogates.registry)
    seed INTEGER NOT NULL,
    labels TEXT NOT NULL,          -- the attributes it was made with
    metrics TEXT NOT NULL,         -- expression and identity measures
    image BLOB NOT NULL,           -- PNG, no metadata
    decision TEXT NOT NULL DEFAULT 'pending',
    note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    UNIQUE (face_id, method, seed)
);
CREATE TABLE IF NOT EXISTS bulk_ops (  -- decisions made as one step (history.bulk)
    id INTEGER PRIMARY KEY,
    what TEXT NOT NULL,            -- e.g. "accept: distance >= 0.6"
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    old TEXT NOT NULL, new TEXT NOT NULL, at REAL NOT NULL,
    bulk INTEGER REFERENCES bulk_ops(id)  -- NULL: a decision of its own
);
CREATE TABLE IF NOT EXISTS original_paths (  -- every place an original was seen (duplicates)
    original_id INTEGER NOT NULL REFERENCES originals(id),
    path TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (original_id, path)
);
"""
#: ``PRAGMA user_version``: 0 before ``original_paths``, 1 before ``bulk_ops`` and
#: ``history.bulk``, 2 before ``faces.descriptor2``; older files are migrated on open (their
#: faces keep no second descriptor: the export's gate reads it from the original photo).
SCHEMA_VERSION = 3


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
    #: The second recognizer's descriptor of the original, taken at batch time; None in a
    #: workspace made before schema 3.
    descriptor2: np.ndarray | None = None

    @property
    def key(self) -> str:
        """Identifies the face in exports' private mappings without naming the file."""
        return f"{self.original_sha256[:16]}:{self.face_index}"


#: A candidate row that makes sense: a known decision and JSON labels and metrics. Rows
#: salvaged from a damaged file that fail it are left out (``Workspace.set_aside``).
SOUND_CANDIDATE = (f"decision IN ({', '.join(repr(d) for d in history.DECISIONS)}) "
                   "AND json_valid(labels) AND json_valid(metrics)")


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
    """Open a ``.studio`` workspace file; ``create=True`` (``studio batch``) makes a new one.

    Any other file is refused, never written to: a missing path, a folder, a file that is not
    SQLite, another program's SQLite database, or a damaged workspace (with the recovery)."""

    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise WorkspaceError(f"{self.path} is a folder, not a workspace file.")
        exists = self.path.exists()
        if not exists and not create:
            raise WorkspaceError(f"there is no workspace {self.path}; `studio batch FOLDER "
                                 f"--workspace {self.path}` makes one.")
        if not exists and not self.path.parent.is_dir():
            raise WorkspaceError(f"cannot create {self.path}: the folder {self.path.parent} "
                                 "does not exist.")
        try:
            if not exists:  # owner only: it holds identity descriptors and paths
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        except FileExistsError:
            raise WorkspaceError(f"{self.path} was made meanwhile by another program; "
                                 "run again to use it") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot create {self.path} ({exc.strerror or exc}).") from exc
        except sqlite3.Error as exc:
            raise WorkspaceError(f"cannot open {self.path} ({exc}).") from exc
        # A workspace salvaged with `sqlite3 .recover` can hold rows from damaged pages whose
        # text is not UTF-8: read them (as U+FFFD) instead of failing on the whole table;
        # ``candidates`` then sets aside the rows that do not make sense.
        self.db.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        try:
            self._open(create)
        except BaseException:
            self.db.close()
            if not exists:  # the empty file made above
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            raise

    def _open(self, create: bool) -> None:
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
                check_header(self.path)  # not SQLite at all, or its first page damaged
            raise damaged(self.path, str(exc)) from exc
        if problems != ["ok"]:
            raise damaged(self.path, "; ".join(problems))
        try:
            tables = {r[0] for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, str(exc)) from exc
        if "originals" not in tables and (tables or not create):
            raise WorkspaceError(f"{self.path} is not a studio workspace (no originals table"
                                 f"{'' if tables else '; the file is empty'}).")
        if version > SCHEMA_VERSION:
            raise WorkspaceError(f"{self.path} was made by a newer studio (schema {version}, "
                                 f"this one reads {SCHEMA_VERSION}); update the studio.")
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if version < SCHEMA_VERSION:
                self.db.executescript(SCHEMA)
                with self.db:
                    if version < 1:
                        from studio.core.workspace.paths import record_paths

                        record_paths(self)
                    if version < 2:
                        history.migrate(self.db)
                    columns = {r[1] for r in self.db.execute("PRAGMA table_info(faces)")}
                    if "descriptor2" not in columns:  # schema 3: the second descriptor
                        self.db.execute("ALTER TABLE faces ADD COLUMN descriptor2 BLOB")
                    self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"cannot write to {self.path} ({exc}).") from exc

    def close(self) -> None:
        self.db.close()

    def discard_if_empty(self) -> bool:
        """Close, and delete the file if it holds no original: what a ``studio batch`` that
        created it and then failed must not leave behind. True when deleted."""
        empty = self.db.execute("SELECT COUNT(*) FROM originals").fetchone()[0] == 0
        self.close()
        if empty:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return empty

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: one original with its faces and candidates. SQLite's own
        failures (a full disk, a lock held too long, damage) become a WorkspaceError."""
        try:
            with self.db:
                yield self.db
        except sqlite3.IntegrityError:
            raise  # a bug in the studio, not in the file
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
                raise WorkspaceError(f"cannot write to {self.path} ({exc}).") from exc
            raise damaged(self.path, str(exc)) from exc

    def deciding(self) -> AbstractContextManager[None]:
        """One writer of decisions at a time (``history.deciding``)."""
        return history.deciding(self)

    # -- originals and faces ---------------------------------------------------------
    def original_status(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT status FROM originals WHERE sha256=?", (sha256,)).fetchone()
        return None if row is None else row[0]

    def add_original(self, db: sqlite3.Connection, path: str, sha256: str, status: str,
                     message: str = "", size: tuple[int, int] | None = None) -> int:
        """Record an original (by its bytes) and the place it was found; an original met
        again elsewhere keeps its first path and gains the new one in ``original_paths``."""
        w, h = size or (None, None)
        cur = db.execute(
            "INSERT INTO originals (path, sha256, status, message, width, height, added) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET "
            "status=excluded.status, message=excluded.message RETURNING id",
            (path, sha256, status, message, w, h, time.time()))
        oid = int(cur.fetchone()[0])
        self.add_path(db, oid, path)
        return oid

    def add_path(self, db: sqlite3.Connection, original_id: int, path: str,
                 primary: bool = False) -> None:
        """Another place the original was seen; ``primary``: the one windows read from."""
        if primary:
            db.execute("UPDATE originals SET path=? WHERE id=?", (path, original_id))
        db.execute("INSERT OR IGNORE INTO original_paths (original_id, path, seen) "
                   "VALUES (?, ?, ?)", (original_id, path, time.time()))

    def known_originals(self) -> dict[str, tuple[int, str, str]]:
        """sha256 -> (id, status, message) of every recorded original."""
        return {r[0]: (r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT sha256, id, status, message FROM originals")}

    def paths_of(self, original_id: int) -> list[str]:
        """Every place the original was seen, its first path first."""
        first = self.db.execute("SELECT path FROM originals WHERE id=?",
                                (original_id,)).fetchone()
        others = [r[0] for r in self.db.execute(
            "SELECT path FROM original_paths WHERE original_id=? ORDER BY seen, path",
            (original_id,))]
        return ([first[0]] if first else []) + [p for p in others if not first or p != first[0]]

    def locate(self, original_id: int) -> Path | None:
        """The first recorded place where the original's file still is, or None: then the
        folder has moved, and ``relink`` (``studio relink``) points the workspace at it."""
        return next((Path(p) for p in self.paths_of(original_id) if os.path.isfile(p)), None)

    def relink(self, old_prefix: str | Path, new_prefix: str | Path) -> RelinkReport:
        """Point every path under ``old_prefix`` at ``new_prefix``, file by file, and only
        where the file there has the recorded sha256; see ``paths.RelinkReport``."""
        from studio.core.workspace.paths import relink

        return relink(self, old_prefix, new_prefix)

    def add_face(self, db: sqlite3.Connection, original_id: int, face_index: int, face) -> int:
        cur = db.execute(
            "INSERT INTO faces (original_id, face_index, box, attributes, landmarks, "
            "blendshapes, descriptor, descriptor2) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(original_id, face_index) DO UPDATE SET attributes=excluded.attributes"
            ", descriptor2=COALESCE(excluded.descriptor2, descriptor2) RETURNING id",
            (original_id, face_index, json.dumps(list(face.box)),
             json.dumps(face.attributes.to_dict()), _blob(face.landmarks),
             _blob(face.blendshapes), _blob(face.descriptor), _blob(face.descriptor2)))
        return int(cur.fetchone()[0])

    def faces(self, face_id: int | None = None) -> list[FaceRecord]:
        sql = ("SELECT f.id, f.original_id, o.path, o.sha256, f.face_index, f.attributes, "
               "f.landmarks, f.blendshapes, f.descriptor, f.descriptor2 FROM faces f "
               "JOIN originals o ON o.id = f.original_id")
        args: tuple = ()
        if face_id is not None:
            sql, args = sql + " WHERE f.id = ?", (face_id,)
        rows = self.db.execute(sql + " ORDER BY o.id, f.face_index", args).fetchall()
        return [FaceRecord(r[0], r[1], r[2], r[3], r[4], Attributes(**json.loads(r[5])),
                           _array(r[6], (-1, 3)), _array(r[7], (-1,)), _array(r[8], (-1,)),
                           _array(r[9], (-1,)))
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
               f"FROM candidates WHERE {SOUND_CANDIDATE}")
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

    def set_aside(self) -> int:
        """Candidate rows ``candidates`` leaves out because they do not make sense (only
        ever in a workspace salvaged from a damaged file)."""
        return int(self.db.execute(
            f"SELECT COUNT(*) FROM candidates WHERE NOT ({SOUND_CANDIDATE})").fetchone()[0])

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
        history.decide(self, candidate_id, decision, note)

    def decide_many(self, candidate_ids: list[int], decision: str, what: str) -> int | None:
        """One step for many candidates (``history.decide_many``): one undo reverts it."""
        return history.decide_many(self, candidate_ids, decision, what)

    def last_step(self) -> Step | None:
        return history.last_step(self)

    def undo_step(self) -> Step | None:
        """Revert the last step: one decision, or a whole group decided as one."""
        return history.undo_step(self)

    def undo(self) -> int | None:
        """Revert the last step; returns its (first) candidate id, or None when there is none."""
        step = self.undo_step()
        return None if step is None else step.candidate_ids[0]

    def summary(self) -> dict[str, int]:
        q = self.db.execute
        out = {f"originals_{s}": n for s, n in
               q("SELECT status, COUNT(*) FROM originals GROUP BY status")}
        out["faces"] = q("SELECT COUNT(*) FROM faces").fetchone()[0]
        out.update({f"candidates_{d}": n for d, n in
                    q(f"SELECT decision, COUNT(*) FROM candidates WHERE {SOUND_CANDIDATE} "
                      "GROUP BY decision")})
        if aside := self.set_aside():
            out["candidates_set_aside"] = aside
        return out


def face_analysis(face: FaceRecord):
    """The stored face as the analysis object the comparison code takes."""
    from studio.core.analysis.analyzer import FaceAnalysis

    pts = face.landmarks
    box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()),
           float(pts[:, 1].max()))
    return FaceAnalysis(box, pts, face.blendshapes, np.eye(4), face.attributes,
                        face.descriptor, face.descriptor2)
