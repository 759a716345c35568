"""Latent and attribute walks for demos, with the shipped generator."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.attributes import Attributes
from studio.core.generator import interpolation as walk
from studio.core.generator.latent import z_for_seed

LABELS = Attributes(0.8, 0.3, 0.0, 0.0, 0.0)


def test_identity_walk_starts_and_ends_at_the_two_identities(sampler):
    frames = walk.between_identities(sampler, LABELS, 3, 9, steps=7)
    assert frames.shape == (7, 64, 64, 3)
    a = sampler.sample(LABELS, z=z_for_seed(3))[0]
    b = sampler.sample(LABELS, z=z_for_seed(9))[0]
    assert np.abs(frames[0].astype(int) - a).max() <= 2
    assert np.abs(frames[-1].astype(int) - b).max() <= 2
    steps = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(6)]
    assert max(steps) < np.abs(a.astype(int) - b).mean()  # a gradual morph, no jumps


def test_joy_walk_goes_from_no_smile_to_smile(sampler, analyzer):
    followed = 0
    for seed in range(1, 9):
        frames = walk.along_attribute(sampler, LABELS, seed, "joy", 0.0, 1.0, steps=5)
        joys = []
        for f in (frames[0], frames[-1]):
            big = np.asarray(Image.fromarray(f).resize((128, 128), Image.BICUBIC))
            faces = analyzer.analyze(big).faces
            assert faces, "a walk frame must still be a face"
            joys.append(faces[0].attributes.joy)
        followed += joys[0] < 0.5 <= joys[1]
    # The sampler's smile agreement is about 0.91 (studio evaluate-sampler).
    assert followed >= 7


def test_filmstrip_and_gif(sampler, tmp_path):
    frames = walk.along_attribute(sampler, LABELS, 5, "yaw", -30, 30, steps=6)
    strip = walk.filmstrip(frames, size=96, gap=2)
    assert strip.shape == (96, 6 * 98 - 2, 3)
    gif = walk.save_animation(frames, tmp_path / "walk.gif", size=80)
    with Image.open(gif) as img:
        assert img.n_frames == 10 and img.size == (80, 80) and img.info.get("loop") == 0
    with pytest.raises(Exception, match="gif"):
        walk.save_animation(frames, tmp_path / "walk.mp4")
    with pytest.raises(Exception, match="unknown attribute"):
        walk.along_attribute(sampler, LABELS, 5, "age", 0, 1, 3)
