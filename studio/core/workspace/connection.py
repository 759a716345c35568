"""What the workspace's helpers (``history``, ``paths``) need of a workspace: its file,
its open SQLite connection and a transaction; and, for ``paths``, where an original's
file is. A protocol, so that they neither import ``store`` nor know the ``Workspace``."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol


class Connected(Protocol):
    """An open workspace: its file, its connection, and one transaction at a time."""

    path: Path
    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class WithOriginals(Connected, Protocol):
    """An open workspace that knows where its originals' files are."""

    def paths_of(self, original_id: int) -> list[str]: ...

    def locate(self, original_id: int) -> Path | None: ...
