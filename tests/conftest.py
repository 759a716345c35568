"""Shared fixtures: the real analyzer (built once) and real faces from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.core.datasets import data_available, data_root, genki
from studio.core.images import load_image

needs_data = pytest.mark.skipif(
    not data_available(), reason=f"research face data not found at {data_root()}"
)


@pytest.fixture(scope="session")
def analyzer():
    from studio.core.analysis import FaceAnalyzer

    a = FaceAnalyzer()
    yield a
    a.close()


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
