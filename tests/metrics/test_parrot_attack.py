"""The parrot attack on real CelebA faces: the attacker anonymises its gallery with the method.

A mild blur keeps identity, so matching blurred faces against blurred gallery faces finds
people far above chance; a method that swaps every face for a stranger's is found no better
than guessing; and the GAN surrogate, which keeps the original's attributes, is found more
often by the parrot than by matching against originals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import binom

from studio.core.datasets import celeba_id, data_available, data_root
from studio.core.metrics.attacks import gallery_rows, identify, parrot_attack

N_PEOPLE = 30
pytestmark = pytest.mark.data


@dataclass
class People:
    images: list  # LoadedImage, two photos per person
    faces: list  # FaceAnalysis of each
    ids: np.ndarray
    originals: np.ndarray  # descriptors
    strangers: np.ndarray  # descriptors of one photo each of people outside the gallery

    @property
    def gallery(self) -> np.ndarray:
        return gallery_rows(self.ids)


@pytest.fixture(scope="module")
def people(analyzer) -> People:
    """The first two photos of 30 CelebA people, both with a face found."""
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face

    by_id: dict[int, list] = {}
    for it in celeba_id():
        by_id.setdefault(it.identity, []).append(it.path)
    chosen = [paths[:2] for paths in by_id.values() if len(paths) >= 2][:40]
    images = [load_image(p) for pair in chosen for p in pair]
    others = [paths[0] for paths in by_id.values() if len(paths) == 1][:120]
    found = analyzer.analyze_many([load_image(p).rgb for p in others], gender=False)
    strangers = np.stack([f.descriptor for a in found if (f := largest_face(a.faces))])
    # With P(male): the GAN surrogate is conditioned on every attribute.
    faces = [largest_face(a.faces) for a in analyzer.analyze_many([i.rgb for i in images])]
    keep = [k for k in range(len(chosen)) if faces[2 * k] and faces[2 * k + 1]][:N_PEOPLE]
    assert len(keep) == N_PEOPLE
    rows = [2 * k + j for k in keep for j in (0, 1)]
    ids = np.repeat(np.arange(N_PEOPLE), 2)
    assert len(strangers) >= 3 * N_PEOPLE
    return People([images[r] for r in rows], [faces[r] for r in rows], ids,
                  np.stack([faces[r].descriptor for r in rows]).astype(np.float64),
                  strangers.astype(np.float64))


def descriptors(analyzer, rgbs: list[np.ndarray]) -> np.ndarray:
    """Each output's descriptor as the evaluation reads it; NaN where no face is found."""
    from studio.core.analysis.landmarks import largest_face

    faces = [largest_face(a.faces) for a in analyzer.analyze_many(rgbs, gender=False)]
    return np.stack([f.descriptor if f is not None and f.descriptor is not None
                     else np.full(128, np.nan) for f in faces]).astype(np.float64)


def upper(n: int, p: float) -> float:
    """A rate of n Bernoulli(p) trials stays under this 99.99% of the time."""
    return binom.interval(0.9999, n, p)[1] / n


def test_a_mild_blur_is_found_by_the_parrot(people, analyzer):
    from studio.core.surrogates.baselines import blur

    outputs = descriptors(analyzer, [blur(i.rgb, f.landmarks, 0.02)
                                     for i, f in zip(people.images, people.faces, strict=True)])
    g = people.gallery
    assert g.tolist() == list(range(0, 2 * N_PEOPLE, 2))  # each person's first photo
    # A blur is deterministic: the gallery photo anonymised again is its own output.
    result = parrot_attack(outputs, people.ids, outputs[g], people.ids[g])
    other = np.ones(len(people.ids), bool)
    other[g] = False
    assert result.chance == {1: 1 / N_PEOPLE, 5: 5 / N_PEOPLE}
    assert (result.n_probes, result.gallery_size) == (2 * N_PEOPLE, N_PEOPLE)
    assert result.rate(1, among=~other) == 1.0  # the same photo, blurred the same way
    assert result.rate(1, among=other) > 0.5, result.rates  # another photo of the person
    assert result.rates[5] > 0.8 and result.over_chance[1] > 20, result.rates
    against_originals = identify(outputs, people.ids, people.originals[g], people.ids[g])
    assert result.rates[1] >= against_originals.rates[1]


def test_a_stranger_for_every_face_is_found_at_chance(people):
    """A method that replaces each face with a real stranger's, drawn afresh each time, as
    the attacker's anonymised gallery is: nothing of the person is left to find."""
    n = len(people.ids)
    draw = np.random.default_rng(0).permutation(len(people.strangers))
    outputs = people.strangers[draw[:n]]
    g = people.gallery
    anonymised = people.strangers[draw[n:n + len(g)]]
    result = parrot_attack(outputs, people.ids, anonymised, people.ids[g])
    assert (result.n_probes, result.gallery_size, result.n_no_face) == (n, N_PEOPLE, 0)
    for rank in (1, 5):
        assert result.rates[rank] <= upper(n, result.chance[rank]), result.rates
    assert result.over_chance[5] < 2.5, result.rates


def test_the_parrot_finds_what_gan_surrogates_keep(people, analyzer, engine):
    """Two surrogates of one photo share its gender, expression and pose, whatever their
    seeds: the parrot finds people through them more often than attack I does."""
    from studio.core.surrogates.making import surrogate_images

    def gan(rows, seeds) -> np.ndarray:
        return descriptors(analyzer, [surrogate_images(engine, "gan", people.images[r],
                                                       people.faces[r], [s])[0]
                                      for r, s in zip(rows, seeds, strict=True)])

    n = len(people.ids)
    outputs = gan(range(n), 1000 + np.arange(n))
    g = people.gallery
    anonymised = gan(g, 5000 + np.arange(len(g)))  # the attacker's fresh seeds
    result = parrot_attack(outputs, people.ids, anonymised, people.ids[g])
    assert result.n_no_face < n / 4 and result.n_gallery_no_face < len(g) / 4
    assert result.n_probes + result.n_left_out == n
    against_originals = identify(outputs, people.ids, people.originals[g], people.ids[g])
    # Seen for the default generator, its surrogates redrawn >= 0.7 from the original:
    # rank 1 0.067 against 0.017, rank 5 0.45 against 0.20 (chance 0.033 and 0.167). With
    # 60 probes rank 1 is a handful of hits, so the margin over chance is held at rank 5.
    assert result.rates[1] > against_originals.rates[1], (result.rates,
                                                           against_originals.rates)
    assert result.rates[5] > max(against_originals.rates[5], 2 * result.chance[5])
