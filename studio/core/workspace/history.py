"""Decisions and their history: one decision, a group decided as one step, and undo.

Every decision is a row of ``history`` (the old and the new decision). The rows of a group
(``studio accept --rule``, the curation window's "Accept all that pass this filter") share a
``bulk`` id that points at ``bulk_ops``, which says what the group was. Undo is a stack: it
takes the newest row, and when that row belongs to a group it reverts the whole group in
one transaction, so a thousand candidates accepted by one rule come back by one undo.
Workspaces made before groups existed (schema 1) gain the column on open (``migrate``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from studio.core.workspace.connection import Connected
from studio.core.workspace.integrity import WorkspaceError

DECISIONS = ("pending", "accepted", "rejected")


@dataclass(frozen=True)
class Step:
    """One step of the history: a single decision (``bulk`` None) or a group of them."""

    candidate_ids: tuple[int, ...]
    bulk: int | None
    what: str  # what the group was (e.g. "accept: distance >= 0.6"); '' for one decision
    at: float


def migrate(db: sqlite3.Connection) -> None:
    """Schema 2: ``history.bulk`` (NULL for every earlier decision) and its index. Runs in
    the caller's transaction, after ``bulk_ops`` was created by the schema script."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(history)")}
    if "bulk" not in columns:
        db.execute("ALTER TABLE history ADD COLUMN bulk INTEGER REFERENCES bulk_ops(id)")
    db.execute("CREATE INDEX IF NOT EXISTS history_bulk ON history(bulk)")


@contextmanager
def deciding(ws: Connected) -> Iterator[None]:
    """One writer of decisions at a time: a write transaction (``BEGIN IMMEDIATE``) taken
    before anything is read, so that what a bulk accept or an undo reads is what it
    changes, and two commands never decide on the same pending candidates. Another command
    holding it is waited for (the connection's 30 s); the decisions made inside commit at
    the end, or not at all."""
    try:
        ws.db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise WorkspaceError(f"{ws.path} is being changed by another studio command ({exc}); "
                             "try again when it has finished. Nothing was changed.") from exc
    try:
        yield
    except BaseException:
        if ws.db.in_transaction:
            ws.db.rollback()
        raise
    if ws.db.in_transaction:
        ws.db.commit()


def _check(decision: str) -> None:
    if decision not in DECISIONS:
        raise WorkspaceError(f"decision must be one of {DECISIONS}, not {decision!r}")


def decide(ws: Connected, candidate_id: int, decision: str, note: str | None = None) -> None:
    _check(decision)
    with ws.transaction() as db:
        row = db.execute("SELECT decision FROM candidates WHERE id=?",
                         (candidate_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no candidate {candidate_id}")
        db.execute("INSERT INTO history (candidate_id, old, new, at) VALUES (?, ?, ?, ?)",
                   (candidate_id, row[0], decision, time.time()))
        db.execute("UPDATE candidates SET decision=? WHERE id=?", (decision, candidate_id))
        if note is not None:
            db.execute("UPDATE candidates SET note=? WHERE id=?", (note, candidate_id))


def decide_many(ws: Connected, candidate_ids: Sequence[int], decision: str,
                what: str) -> int | None:
    """Decide every candidate in one transaction, recorded as one group that ``undo_step``
    reverts whole. Returns the group's id, or None when there was nothing to decide."""
    _check(decision)
    ids = list(dict.fromkeys(candidate_ids))  # each once, in order
    if not ids:
        return None
    now = time.time()
    with ws.transaction() as db:
        olds = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[start:start + 500]
            olds.update(db.execute(
                f"SELECT id, decision FROM candidates WHERE id IN ({','.join('?' * len(chunk))})",
                chunk).fetchall())
        unknown = [i for i in ids if i not in olds]
        if unknown:
            raise WorkspaceError(f"no candidate {unknown[0]}")
        bulk = int(db.execute("INSERT INTO bulk_ops (what, at) VALUES (?, ?) RETURNING id",
                              (what, now)).fetchone()[0])
        db.executemany("INSERT INTO history (candidate_id, old, new, at, bulk) "
                       "VALUES (?, ?, ?, ?, ?)", [(i, olds[i], decision, now, bulk) for i in ids])
        db.executemany("UPDATE candidates SET decision=? WHERE id=?", [(decision, i) for i in ids])
    return bulk


def _last(db: sqlite3.Connection) -> tuple[Step, list[tuple[int, int, str]]] | None:
    """The newest step and its rows (history id, candidate id, old decision)."""
    row = db.execute("SELECT id, candidate_id, old, at, bulk FROM history "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    if row[4] is None:
        return Step((int(row[1]),), None, "", row[3]), [(row[0], row[1], row[2])]
    rows = db.execute("SELECT id, candidate_id, old FROM history WHERE bulk=? ORDER BY id DESC",
                      (row[4],)).fetchall()
    what = db.execute("SELECT what FROM bulk_ops WHERE id=?", (row[4],)).fetchone()
    return (Step(tuple(int(r[1]) for r in reversed(rows)), int(row[4]),
                 what[0] if what else "", row[3]), rows)


def last_step(ws: Connected) -> Step | None:
    """What ``undo_step`` would revert, without reverting it."""
    found = _last(ws.db)
    return None if found is None else found[0]


def undo_step(ws: Connected) -> Step | None:
    """Revert the last step (one decision, or a whole group); None when there is none."""
    with ws.transaction() as db:
        found = _last(db)
        if found is None:
            return None
        step, rows = found
        db.executemany("UPDATE candidates SET decision=? WHERE id=?",
                       [(old, cid) for _hid, cid, old in rows])
        db.executemany("DELETE FROM history WHERE id=?", [(hid,) for hid, _cid, _old in rows])
        if step.bulk is not None:
            db.execute("DELETE FROM bulk_ops WHERE id=?", (step.bulk,))
        return step
