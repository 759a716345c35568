"""The shipped generator: loads without pickle, is deterministic, draws real-looking faces."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from studio.core.analysis.attributes import Attributes
from studio.core.errors import ModelFileError
from studio.core.generator.choices import CHOICES
from studio.core.generator.latent import slerp
from studio.core.generator.sampler import Sampler


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: c.key)
def test_shipped_weights_are_safetensors_fp16_and_small(choice):
    raw = choice.path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {"F16"}
    assert "config" in header["__metadata__"]
    assert len(raw) < 20 * 1024 * 1024


def test_missing_weights_message(tmp_path):
    with pytest.raises(ModelFileError, match="missing"):
        Sampler(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelFileError, match="cannot be read"):
        Sampler(bad)


def test_fixed_seed_is_deterministic(sampler):
    a = Attributes(0.8, 0.3, 10.0, 0.0, 0.0)
    one, two = sampler.sample(a, seed=3), sampler.sample(a, seed=3)
    assert one.shape == (1, 64, 64, 3) and one.dtype == np.uint8
    assert np.array_equal(one, two)
    assert not np.array_equal(one, sampler.sample(a, seed=4))


def test_interpolation_ends_and_modes(sampler):
    z0, z1 = sampler.random_z(2, seed=1)
    for mode in ("linear", "slerp"):
        path = sampler.interpolate(z0, z1, 5, mode=mode)
        assert path.shape == (5, 64)
        assert np.allclose(path[0], z0, atol=1e-5) and np.allclose(path[-1], z1, atol=1e-5)
    mid = slerp(z0, z1, 0.5)
    lin = (z0 + z1) / 2
    assert np.linalg.norm(mid) > np.linalg.norm(lin)  # slerp keeps the norm up
    with pytest.raises(ValueError):
        sampler.interpolate(z0, z1, 3, mode="cubic")


@pytest.mark.data
def test_samples_are_detectable_faces(sampler, analyzer):
    attrs = [Attributes(j, m, y, 0.0, 0.0) for j in (0.1, 0.9) for m in (0.1, 0.9)
             for y in (-15.0, 0.0, 15.0, 5.0)]
    faces = sampler.sample(attrs, seed=5)
    found = sum(bool(analyzer.analyze(f).faces) for f in faces)
    assert found >= 14  # of 16


@pytest.mark.data
def test_joy_slider_changes_the_smile(sampler, analyzer):
    z = sampler.random_z(12, seed=9)
    measured = {}
    for joy in (0.05, 0.95):
        imgs = sampler.sample(Attributes(joy, 0.5, 0.0, 0.0, 0.0), z=z)
        vals = [analyzer.analyze(i).faces for i in imgs]
        measured[joy] = np.mean([f[0].attributes.joy for f in vals if f])
    assert measured[0.95] - measured[0.05] > 0.4


def test_frozen_one_sample_path_draws_the_same_faces():
    g = Sampler()
    labels = [Attributes(0.9, 0.2, 15.0, -5.0, 3.0), Attributes(0.1, 0.8, -20.0, 8.0, -4.0)]
    eager = [g.sample(a, seed=s) for s, a in enumerate(labels)]
    batch = g.sample(labels, seed=7)
    g.freeze_single()
    assert g._single is not None
    for s, a in enumerate(labels):
        assert np.array_equal(g.sample(a, seed=s), eager[s])
    assert np.array_equal(g.sample(labels, seed=7), batch)  # batches stay eager
