"""The generator wing's fixtures: the shipped generator, loaded once on the CPU, and a
small training set of real GENKI-4K faces."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sampler():
    """The default shipped generator on the CPU (tests only draw from it)."""
    from studio.core.generator.sampler import Sampler

    return Sampler(device="cpu")


@pytest.fixture
def genki_faces():
    """``genki_faces(n)``: the first ``n`` GENKI-4K photos (64x64) as a ``TrainingSet``
    with random labels; skips without ../shared/data."""
    from studio.core.analysis.images import load_image
    from studio.core.datasets import data_available, data_root
    from studio.core.generator.training_data import TrainingSet

    def genki_faces(n: int) -> TrainingSet:
        if not data_available():
            pytest.skip(f"research face data not found at {data_root()}")
        paths = sorted((data_root() / "genki4k" / "files").glob("file*.jpg"))[:n]
        images = np.stack([load_image(p).rgb for p in paths])
        assert images.shape[1:] == (64, 64, 3)
        labels = np.random.default_rng(0).random((n, 5)).astype(np.float32)
        return TrainingSet(images, labels, np.zeros(n, np.int8), {})

    return genki_faces
