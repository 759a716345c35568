"""Is this file a sound studio workspace? The checks made when one is opened, and the
message that says how to recover a damaged one.

The errors live here (not in ``store``) so that both ``store`` and ``paths`` raise them.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from studio.core.errors import StudioError

SQLITE_HEADER = b"SQLite format 3\0"


class WorkspaceError(StudioError):
    pass


def recovery_hint(path: Path) -> str:
    """How to save what SQLite can still read into a new file (the damaged one is kept).
    Some builds of the sqlite3 shell lack ``.recover``; ``.dump`` then does, once its
    closing ROLLBACK (written because of the damage) is made a COMMIT."""
    fixed = path.with_name(f"{path.stem}-recovered{path.suffix or '.studio'}")
    src, dst = shlex.quote(str(path)), shlex.quote(str(fixed))
    return (f"Recover what can still be read into a new file with the sqlite3 shell:\n"
            f"  sqlite3 {src} .recover | sqlite3 {dst}\n"
            f"or, if that shell has no .recover (\"no such table: sqlite_dbpage\"):\n"
            f"  sqlite3 {src} .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' "
            f"| sqlite3 {dst}\n"
            f"then open {fixed.name} instead.")


def damaged(path: Path, detail: str) -> WorkspaceError:
    detail = "; ".join(line.strip() for line in detail.splitlines()
                       if line.strip() and not line.startswith("***"))
    if len(detail) > 160:
        detail = detail[:160] + "…"
    return WorkspaceError(f"{path} is damaged (SQLite: {detail}); nothing was changed. "
                          + recovery_hint(path))


def check_header(path: Path) -> None:
    """Tells a file that is not SQLite at all from a damaged workspace. Only for a file
    SQLite has refused: opening and closing a database file beside a live connection of
    this process would drop that connection's POSIX locks, which corrupts a database."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path} ({exc.strerror or exc}).") from exc
    if head and head != SQLITE_HEADER:
        raise WorkspaceError(f"{path} is not a studio workspace (not an SQLite file).")
