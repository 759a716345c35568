"""The shipped generators (issue 16): the default and the thesis's BEGAN-CS as a second
choice, by name on the command line (the window's Generator menu: tests/ui/)."""

from __future__ import annotations

import numpy as np

from studio.core.generator.choices import BY_KEY, CHOICES, DEFAULT, resolve_weights, title_of
from studio.core.generator.sampler import DEFAULT_WEIGHTS, Sampler


def test_every_choice_ships_with_its_card_and_manifest():
    from studio.core.datasets import manifest_path

    assert DEFAULT is CHOICES[0] and DEFAULT.path == DEFAULT_WEIGHTS
    assert "thesis" in BY_KEY and BY_KEY["thesis"].title == "BEGAN-CS (thesis)"
    for c in CHOICES:
        assert c.path.is_file(), c
        assert (c.path.parent / c.card).is_file(), c
        assert manifest_path(c.path).is_file(), c
        assert c.title in (c.path.parent / c.card).read_text() or c.key == DEFAULT.key


def test_weights_by_name_or_path(tmp_path):
    assert resolve_weights(None) == DEFAULT.path
    assert resolve_weights("thesis") == BY_KEY["thesis"].path
    assert resolve_weights(str(tmp_path / "mine.safetensors")) == tmp_path / "mine.safetensors"
    assert title_of(BY_KEY["thesis"].path) == "BEGAN-CS (thesis)"
    assert title_of(tmp_path / "mine.safetensors") == "mine"


def test_the_two_generators_draw_different_faces_for_the_same_request():
    labels = np.array([0.9, 0.2, 0.5, 0.5, 0.5], np.float32)
    default, thesis = Sampler(device="cpu"), Sampler("thesis", device="cpu")
    assert thesis.path.name == "began_cs_64.safetensors"
    a, b = default.sample(labels, seed=3), thesis.sample(labels, seed=3)
    assert a.shape == b.shape == (1, 64, 64, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_cli_generate_takes_a_generator_by_name(tmp_path):
    from PIL import Image

    from studio.cli import main

    assert main(["generate", "--weights", "thesis", "-n", "2", "--seed", "1", "--out-dir",
                 str(tmp_path / "t"), "--quiet"]) == 0
    assert main(["generate", "-n", "2", "--seed", "1", "--out-dir", str(tmp_path / "d"),
                 "--quiet"]) == 0
    t = np.asarray(Image.open(tmp_path / "t" / "000000.png"))
    d = np.asarray(Image.open(tmp_path / "d" / "000000.png"))
    assert t.shape == d.shape == (64, 64, 3) and not np.array_equal(t, d)
