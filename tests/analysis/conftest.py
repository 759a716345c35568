"""The analysis wing's tests: they use the shared analyzer and real faces (tests/conftest.py);
a fixture one file needs (the search analyzer, the dlib network, the 7-class judge) stays in
that file. A fixture two files of this wing need goes here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core.assets import third_party_dir

#: A port agrees with its reference runtime to ~1e-6 (float32 rounding); 1e-4 still
#: catches any slip (issue 28's bar for the second recognizer, kept for the judge too).
PORT_TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def port_tolerance() -> float:
    return PORT_TOLERANCE


@pytest.fixture(scope="session")
def fetched() -> Callable[[str], Path]:
    """The path of a third-party model file, or the test skipped where it is not fetched."""
    def path_of(name: str) -> Path:
        path = third_party_dir() / name
        if not path.is_file():
            pytest.skip(f"{path} not fetched (make models)")
        return path
    return path_of


@pytest.fixture(scope="session")
def reference_outputs() -> Callable[[str], dict]:
    """A ported network's stored reference outputs (tests/data/<name>_reference.json),
    written in a throwaway environment with the original runtime."""
    def load(name: str) -> dict:
        path = Path(__file__).parents[1] / "data" / f"{name}_reference.json"
        return json.loads(path.read_text(encoding="utf-8"))
    return load
