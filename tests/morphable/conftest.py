"""The morphable wing's fixtures: the shipped 3D morphable model, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model():
    """The shipped morphable model (read-only: fits and renders never change it)."""
    from studio.core.morphable.model import MorphableModel

    return MorphableModel.load()
