"""The evaluation wing's tests (the study, realism, the generator's check): they use the
shared engine and analyzer (tests/conftest.py); each file's people and runs stay in it. A
fixture two files of this wing need goes here."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def celeba_people(tmp_path_factory):
    """Makes a folder of ``n`` celeba-id people, two photos each, one sub-folder per person
    (copies in a temporary folder, never in the repository); ``held_out``: from the test
    identities only (``datasets.celeba_split``), never trained on."""
    import shutil

    from studio.core.datasets import celeba_id, celeba_split

    def make(n: int, held_out: bool = False) -> Path:
        items = celeba_split(celeba_id(), "test") if held_out else celeba_id()
        by_id: dict[int, list] = {}
        for item in items:
            by_id.setdefault(item.identity, []).append(item.path)
        folder = tmp_path_factory.mktemp("held_out_people" if held_out else "people")
        for i, paths in enumerate([p[:2] for p in by_id.values() if len(p) >= 2][:n]):
            (folder / f"person{i}").mkdir()
            for path in paths:
                shutil.copy(path, folder / f"person{i}" / path.name)
        return folder

    return make
