"""`studio evaluate` measures the in-context surrogate under each privacy preset as a method
of its own (issue 28): ``--methods context,context-strict`` observes both side by side, and
the cache keys on the preset, so a strict result is never served from a default entry. Real
held-out faces: celeba-id's test identities."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.evaluation.methods import families, methods_for
from studio.core.evaluation.observations import ObservationCache, cache_key, models_fingerprint
from studio.core.evaluation.sources import discover
from studio.core.evaluation.study import evaluate

pytestmark = pytest.mark.data


def test_each_preset_is_a_family_with_a_cache_key_of_its_own():
    assert "context-strict" in families()
    chosen = methods_for(["context", "context-strict"])
    assert [m.key for m in chosen] == ["original", "context", "context-strict"]
    assert [m.privacy for m in chosen[1:]] == ["default", "strict"]
    fp = models_fingerprint()
    assert cache_key(fp, "ab", "context") != cache_key(fp, "ab", "context-strict")
    assert cache_key(fp, "ab", "context@g") != cache_key(fp, "ab", "context-strict@g")


def test_strict_and_default_are_measured_apart_and_cached_apart(engine, celeba_people,
                                                                 tmp_path):
    dataset = discover(celeba_people(1, held_out=True))
    assert len(dataset.sources) == 2
    cache = ObservationCache(tmp_path / "obs.sqlite")
    engine.load_3d()
    methods = methods_for(["context", "context-strict"])
    run = evaluate([dataset], methods, engine, workers=1, cache=cache)
    out = {(m.source, m.method): m.output for m in run.measurements}
    for source in {m.source for m in run.measurements}:
        default, strict = out[(source, "context")], out[(source, "context-strict")]
        assert default.found and strict.found
        assert not np.allclose(default.descriptor2, strict.descriptor2, atol=1e-3)

    def no_models():
        pytest.fail("a run with every face cached loaded the models")

    # Asked for strict alone, from the cache: the strict observations, not the default's.
    again = evaluate([dataset], methods_for(["context-strict"]), no_models, workers=1,
                     cache=cache)
    assert again.computed == 0
    for m in again.measurements:
        if m.method == "context-strict":
            assert np.array_equal(m.output.descriptor2, out[(m.source, m.method)].descriptor2)
