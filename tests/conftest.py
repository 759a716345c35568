"""Shared fixtures: the real analyzer (built once) and real faces from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.core.analysis.images import load_image
from studio.core.datasets import data_available, data_root, genki


def pytest_collection_modifyitems(config, items) -> None:
    """The one skip hook of the ``data`` marker: without ../shared/data (a user's machine)
    those tests skip with the reason, and CI still runs the rest."""
    if data_available():
        return
    skip = pytest.mark.skip(reason=f"research face data not found at {data_root()}")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def analyzer():
    from studio.core.analysis.analyzer import FaceAnalyzer

    a = FaceAnalyzer()
    yield a
    a.close()


@pytest.fixture(scope="session")
def engine():
    """Every model of the studio, loaded once for all the tests that need the lot."""
    import sys

    from studio.core.surrogates.engine import SurrogateEngine

    e = SurrogateEngine()
    yield e
    if "PySide6.QtCore" in sys.modules:  # no window job may outlive the models
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30000)
    e.close()


@pytest.fixture(scope="session")
def utk_face_path() -> Path:
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    # A frontal adult face, 200x200 and aligned.
    return sorted((data_root() / "utkface" / "images").glob("35_0_0_*.jpg"))[0]


@pytest.fixture(scope="session")
def utk_face(utk_face_path) -> np.ndarray:
    return load_image(utk_face_path).rgb


@pytest.fixture(scope="session")
def genki_test():
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    return genki("test")


@pytest.fixture(scope="session")
def group_photo(utk_face) -> np.ndarray:
    """Two real people side by side on a plain background: a man left, a woman right."""
    from studio.core.datasets import utkface

    woman = next(it for it in utkface() if not it.male and it.age == 30)
    canvas = np.full((260, 520, 3), 200, np.uint8)
    canvas[30:230, 20:220] = utk_face
    canvas[30:230, 300:500] = load_image(woman.path).rgb
    return canvas
