"""Where a workspace's originals are: absolute paths, every place an original was seen, and
relinking a folder that has moved.

The workspace keeps only paths and sha256 of the originals, so a moved folder would leave
the curation window unable to show or regenerate them. ``relink`` points the paths under an
old folder at a new one, and trusts a file there only when its bytes hash to the recorded
sha256: a different photo under the same name is never taken for the original.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from studio.core.assets import sha256_of
from studio.core.workspace.connection import WithOriginals
from studio.core.workspace.integrity import WorkspaceError


@dataclass
class RelinkReport:
    """What ``relink`` did: ``relinked`` originals now point under the new folder."""

    old: str
    new: str
    relinked: int = 0
    #: recorded paths under the old folder with no file at the new place (left as they were)
    missing: list[str] = field(default_factory=list)
    #: a file is at the new place but its bytes differ from the original's (left as it was)
    different: list[str] = field(default_factory=list)


def _same_file(path: str, sha256: str) -> bool:
    try:
        return os.path.isfile(path) and sha256_of(Path(path)) == sha256
    except OSError:
        return False


def absolute_original(path: str, workspace_path: Path, sha256: str) -> str:
    """An original's path made absolute: a relative one (as older workspaces stored it, as
    typed) is looked for from the current folder, then from the workspace's folder, and
    taken only if the file there has the recorded bytes; otherwise it stays as typed."""
    if os.path.isabs(path):
        return path
    for base in (os.getcwd(), str(workspace_path.absolute().parent)):
        candidate = os.path.abspath(os.path.join(base, path))
        if _same_file(candidate, sha256):
            return candidate
    return path


def record_paths(ws: WithOriginals) -> None:
    """Migration to schema 1: make paths absolute where possible, and list each original's
    path in ``original_paths``. Runs inside the caller's transaction."""
    rows = ws.db.execute("SELECT id, path, sha256 FROM originals").fetchall()
    now = time.time()
    for oid, path, sha in rows:
        fixed = absolute_original(path, ws.path, sha)
        if fixed != path:
            ws.db.execute("UPDATE originals SET path=? WHERE id=?", (fixed, oid))
        ws.db.execute("INSERT OR IGNORE INTO original_paths (original_id, path, seen) "
                      "VALUES (?, ?, ?)", (oid, fixed, now))


def _under(path: str, prefixes: list[PurePath]) -> PurePath | None:
    p = PurePath(path)
    for prefix in prefixes:
        if p.is_relative_to(prefix):
            return p.relative_to(prefix)
    return None


def relink(ws: WithOriginals, old_prefix: str | Path, new_prefix: str | Path) -> RelinkReport:
    """See ``Workspace.relink``. All verified paths change in one transaction."""
    new_root = Path(os.path.abspath(new_prefix))
    if not new_root.is_dir():
        raise WorkspaceError(f"{new_prefix} is not a folder.")
    old = str(old_prefix)
    prefixes = list(dict.fromkeys([PurePath(old), PurePath(os.path.abspath(old))]))
    rows = ws.db.execute("SELECT p.original_id, p.path, o.sha256 FROM original_paths p "
                         "JOIN originals o ON o.id = p.original_id ORDER BY p.path").fetchall()
    report = RelinkReport(old, str(new_root))
    moves: list[tuple[int, str, str]] = []
    matched = 0
    for oid, path, sha in rows:
        rel = _under(path, prefixes)
        if rel is None:
            continue
        matched += 1
        target = str(new_root / rel)
        if not os.path.isfile(target):
            report.missing.append(path)
        elif not _same_file(target, sha):
            report.different.append(path)
        elif target != path:
            moves.append((oid, path, target))
    if not matched:
        folders = sorted({str(PurePath(r[1]).parent) for r in rows})
        shown = ", ".join(folders[:5]) + (" …" if len(folders) > 5 else "")
        raise WorkspaceError(f"no original of {ws.path.name} was recorded under {old}; "
                             f"its folders are: {shown or 'none'}.")
    now = time.time()
    with ws.transaction() as db:
        for oid, path, target in moves:
            db.execute("INSERT OR IGNORE INTO original_paths (original_id, path, seen) "
                       "VALUES (?, ?, ?)", (oid, target, now))
            db.execute("DELETE FROM original_paths WHERE original_id=? AND path=?", (oid, path))
            db.execute("UPDATE originals SET path=? WHERE id=? AND path=?", (target, oid, path))
    report.relinked = len({oid for oid, _, _ in moves})
    return report


def missing_originals(ws: WithOriginals) -> list[tuple[int, str]]:
    """(id, first path) of every original whose file is at none of its recorded places:
    what a window can offer to relink."""
    ids = [r[0] for r in ws.db.execute("SELECT id FROM originals ORDER BY id")]
    out = []
    for oid in ids:
        if ws.locate(oid) is None:
            out.append((oid, ws.paths_of(oid)[0]))
    return out
