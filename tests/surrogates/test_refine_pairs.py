"""The refiner's training pairs (issue 27): own-fit composites beside their photos, and
new draws made as at use for the critic; shards written whole and resumed."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.surrogates.refine_pairs import shard_path, training_photos, write_shards

pytestmark = pytest.mark.data


def test_own_fits_and_new_draws_of_the_same_photos(tmp_path) -> None:
    photos = training_photos()[:2]
    own, new = tmp_path / "pairs", tmp_path / "draws"
    assert write_shards(own, photos) == 2
    assert write_shards(new, photos, own_fit=False) == 2
    assert write_shards(own, photos) == 0  # a shard already there is kept, not redone
    with np.load(shard_path(own, 0)) as a, np.load(shard_path(new, 0)) as b:
        assert a["composite"].shape == (2, 128, 128, 3) and a["mask"].max() == 255
        assert np.array_equal(a["real"], b["real"])  # the same photos, cut alike
        assert list(a["sha256"]) == list(b["sha256"])
        inside = a["mask"] > 127
        own_gap = np.abs(a["composite"].astype(int) - a["real"])[inside].mean()
        new_gap = np.abs(b["composite"].astype(int) - b["real"])[inside].mean()
        # the own fit renders the photo's own face; a new draw is another person
        assert own_gap < new_gap
    assert not list(own.glob("*.tmp.npz"))
