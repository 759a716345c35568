"""The workspace wing's tests (store, batch, accept, export, study, Ray): they use the shared
engine and GENKI-4K faces (tests/conftest.py); each file builds its own real workspace once per
module. A fixture two files of this wing need goes here."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core.workspace.batch import BatchReport, run_batch
from studio.core.workspace.store import Workspace


@pytest.fixture(scope="session")
def batched(tmp_path_factory, engine, genki_test
            ) -> Callable[..., tuple[Path, BatchReport]]:
    """A real workspace as `studio batch` writes it: the first ``faces`` GENKI-4K test photos
    copied into a folder and batched with ``candidates`` per face of ``methods``."""
    def make(name: str, faces: int, candidates: int, methods) -> tuple[Path, BatchReport]:
        root = tmp_path_factory.mktemp(name)
        folder = root / "photos"
        folder.mkdir()
        for item in genki_test[:faces]:
            shutil.copy(item.path, folder / item.path.name)
        path = root / f"{name}.studio"
        with Workspace(path, create=True) as ws:
            report = run_batch(folder, ws, engine, candidates=candidates, methods=methods)
        return path, report
    return make
