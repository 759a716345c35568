"""The privacy metrics: hand-checked cases, synthetic dlib-like faces, and real CelebA faces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, mannwhitneyu

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.datasets import celeba_id, data_available, data_root
from studio.core.metrics.attacks import (
    _CHUNK,
    classifier_attack,
    deidentified_share,
    gallery_rows,
    identify,
    impostor_distances,
    no_face_count,
    parrot_attack,
    verification_roc,
)

DIM = 128
SAME, OTHER = 0.3, 0.9  # typical dlib distances within and between people


def centers(n: int, rng: np.random.Generator) -> np.ndarray:
    """People: random directions, scaled so that two samples of different people end up
    ~OTHER apart once each carries the ~SAME spread of ``samples``."""
    c = rng.normal(size=(n, DIM))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c * np.sqrt((OTHER**2 - SAME**2) / 2)  # random directions are nearly orthogonal


def samples(people: np.ndarray, rng: np.random.Generator, spread: float = SAME) -> np.ndarray:
    """One photo of each row's person: two photos of one person are ~``spread`` apart."""
    return people + rng.normal(scale=spread / np.sqrt(2 * DIM), size=people.shape)


def interval(n: int, p: float) -> tuple[float, float]:
    """Where a rate of n Bernoulli(p) trials falls 99.99% of the time."""
    lo, hi = binom.interval(0.9999, n, p)
    return lo / n, hi / n


def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1)


def test_synthetic_people_are_as_far_apart_as_dlibs():
    rng = np.random.default_rng(1)
    people = centers(200, rng)
    a, b = samples(people, rng), samples(people, rng)
    assert abs(np.median(dist(a, b)) - SAME) < 0.02
    assert abs(np.median(dist(a, np.roll(b, 1, axis=0))) - OTHER) < 0.02


# ---- de-identified share


def test_deidentified_share_uses_the_threshold_and_excludes_missing_faces():
    d = np.array([0.1, SAME_PERSON_THRESHOLD, 0.9, np.nan, 0.59])
    assert deidentified_share(d) == pytest.approx(2 / 4)  # 0.6 itself is another person
    assert deidentified_share(d, threshold=0.5) == pytest.approx(3 / 4)
    assert no_face_count(d) == 1
    assert np.isnan(deidentified_share(np.array([np.nan, np.nan])))
    descriptors = np.zeros((4, DIM))
    descriptors[[0, 2], 5] = np.nan
    assert no_face_count(descriptors) == 2


def test_identical_outputs_are_not_deidentified_and_all_identified():
    rng = np.random.default_rng(2)
    originals = samples(centers(300, rng), rng)
    ids = np.arange(300)
    d = dist(originals, originals.copy())
    assert np.all(d == 0)
    assert deidentified_share(d) == 0.0
    result = identify(originals.copy(), ids, originals, ids)
    assert result.rates == {1: 1.0, 5: 1.0}
    assert result.chance == {1: 1 / 300, 5: 5 / 300}
    assert result.over_chance[1] == pytest.approx(300)
    assert (result.n_probes, result.n_no_face, result.gallery_size) == (300, 0, 300)
    np.testing.assert_array_equal(result.ranks, 1)


# ---- attack I: identification


def test_outputs_of_new_people_are_identified_at_chance():
    """A perfect de-identifier: each output is someone who is in no gallery."""
    rng = np.random.default_rng(3)
    n_ids, n_probes = 100, 4000
    gallery = samples(centers(n_ids, rng), rng)
    outputs = samples(centers(n_probes, rng), rng)
    probe_ids = rng.integers(0, n_ids, n_probes)
    result = identify(outputs, probe_ids, gallery, np.arange(n_ids), ranks=(1, 5, 10))
    for rank in (1, 5, 10):
        lo, hi = interval(n_probes, rank / n_ids)
        assert lo <= result.rates[rank] <= hi, (rank, result.rates[rank])
        assert 0.5 < result.over_chance[rank] < 1.5


def test_permuted_outputs_are_found_only_at_fixed_points():
    """Each output looks like another gallery person: only people mapped to themselves are
    identified, which is about one person whatever the gallery size (i.e. chance)."""
    rng = np.random.default_rng(4)
    n = 500
    people = centers(n, rng)
    gallery = samples(people, rng)
    perm = rng.permutation(n)
    outputs = samples(people[perm], rng)
    result = identify(outputs, np.arange(n), gallery, np.arange(n))
    fixed = perm == np.arange(n)
    assert result.rates[1] == pytest.approx(fixed.mean())
    assert np.all(result.ranks[~fixed] >= 2)
    assert result.rates[1] < 5 / n


def test_identify_ranks_identities_by_their_closest_image():
    # 2-d descriptors on a line, by hand. Gallery: "a" at 0 and 5, "b" at 2, "c" at 9.
    gallery = np.array([[0.0, 0], [5, 0], [2, 0], [9, 0]])
    gallery_ids = ["a", "a", "b", "c"]
    probes = np.array([[4.5, 0], [4.0, 0], [0.5, 0], [9, 0], [2, 0]])
    probe_ids = ["a", "b", "c", "c", "a"]
    # a: 0.5 (via 5), b 2.5 -> 1 | b: 2, a 1 -> 2 | c: 8.5, a 0.5, b 1.5 -> 3
    # c: 0 -> 1 | a: min(2, 3) = 2, b 0 -> 2
    result = identify(probes, probe_ids, gallery, gallery_ids, ranks=(1, 2, 3))
    np.testing.assert_array_equal(result.ranks, [1, 2, 3, 1, 2])
    assert result.rates == {1: 2 / 5, 2: 4 / 5, 3: 1.0}
    assert result.chance == {1: 1 / 3, 2: 2 / 3, 3: 1.0}
    assert result.gallery_size == 3


def test_identify_ties_go_to_the_attacker():
    gallery = np.array([[1.0, 0], [-1, 0]])
    result = identify(np.zeros((1, 2)), [1], gallery, [0, 1])
    assert result.rates[1] == 1.0


def test_identify_matches_a_plain_loop_across_chunks():
    rng = np.random.default_rng(5)
    n_ids, n_probes = 60, 2 * _CHUNK + 37
    people = centers(n_ids, rng)
    gallery_ids = np.r_[np.arange(n_ids), rng.integers(0, n_ids, 40)]  # some with 2+ images
    gallery = samples(people[gallery_ids], rng)
    probe_ids = rng.integers(0, n_ids, n_probes)
    probes = samples(people[probe_ids], rng, spread=4.0)  # blurred enough to miss often
    result = identify(probes, probe_ids, gallery, gallery_ids)
    expected = []
    for x, pid in zip(probes, probe_ids, strict=True):
        d = np.linalg.norm(gallery - x, axis=1)
        per_id = np.array([d[gallery_ids == k].min() for k in range(n_ids)])
        expected.append(1 + np.sum(per_id < per_id[pid]))
    np.testing.assert_array_equal(result.ranks, expected)
    assert 0.2 < result.rates[1] < 0.8  # the case exercises both hits and misses


def test_identify_refuses_probes_outside_the_gallery():
    with pytest.raises(ValueError, match=r"not in the gallery.*\[7\]"):
        identify(np.zeros((2, DIM)), [0, 7], np.ones((2, DIM)), [0, 1])


def test_probes_without_a_face_are_misses_and_counted():
    rng = np.random.default_rng(6)
    gallery = samples(centers(50, rng), rng)
    probes = gallery.copy()
    probes[:10] = np.nan
    result = identify(probes, np.arange(50), gallery, np.arange(50))
    assert result.n_no_face == 10 and result.n_probes == 50
    assert result.rates == {1: 0.8, 5: 0.8}
    assert np.all(np.isinf(result.ranks[:10]))


# ---- verification ROC

GENUINE = np.array([0.1, 0.2, 0.3, 0.4])
IMPOSTOR = np.array([0.35, 0.5, 0.6, 0.7, 0.8])


def test_roc_on_hand_checked_scores():
    roc = verification_roc(GENUINE, IMPOSTOR)
    points = {round(float(t), 6): (f, t_) for t, f, t_ in
              zip(roc.thresholds, roc.far, roc.tar, strict=True)}
    assert points[0.3] == pytest.approx((0.0, 0.75))  # 3 of 4 genuine, no impostor yet
    assert points[0.35] == pytest.approx((0.2, 0.75))
    assert points[0.4] == pytest.approx((0.2, 1.0))
    assert roc.far[0] == 0 and roc.tar[0] == 0 and roc.far[-1] == 1 and roc.tar[-1] == 1
    assert roc.auc == pytest.approx(19 / 20)  # 19 of the 20 pairs rank genuine first
    assert roc.tar_at(0.0) == 0.75
    assert roc.tar_at(1e-3) == 0.75  # no impostor under 0.35, yet 3 genuine are
    assert roc.tar_at(0.19) == 0.75
    assert roc.tar_at(0.2) == 1.0
    assert roc.eer == pytest.approx(0.2)
    assert (roc.n_genuine, roc.n_impostor, roc.n_no_face) == (4, 5, 0)


def test_roc_perfectly_separated_and_indistinguishable():
    perfect = verification_roc(np.array([0.2, 0.3]), np.array([0.7, 0.8, 0.9]))
    assert perfect.auc == 1.0 and perfect.tar_at(1e-3) == 1.0 and perfect.eer == 0.0
    worst = verification_roc(np.array([0.7, 0.8]), np.array([0.2, 0.3]))
    assert worst.auc == 0.0 and worst.tar_at(0.4) == 0.0
    tied = verification_roc(np.full(3, 0.5), np.full(4, 0.5))
    assert tied.auc == 0.5 and tied.tar_at(0.99) == 0.0
    rng = np.random.default_rng(7)
    same = verification_roc(rng.normal(0.8, 0.1, 4000), rng.normal(0.8, 0.1, 4000))
    assert same.auc == pytest.approx(0.5, abs=0.02)
    assert same.eer == pytest.approx(0.5, abs=0.03)
    assert same.tar_at(1e-3) < 0.01


def test_roc_auc_is_the_mann_whitney_probability():
    rng = np.random.default_rng(8)
    genuine = np.round(rng.normal(0.4, 0.1, 300), 2)  # rounded: plenty of ties
    impostor = np.round(rng.normal(0.8, 0.15, 700), 2)
    roc = verification_roc(genuine, impostor)
    u = mannwhitneyu(impostor, genuine).statistic  # impostor farther, ties count half
    assert roc.auc == pytest.approx(u / (300 * 700))


def test_roc_missing_faces():
    roc = verification_roc(np.array([0.1, np.nan]), np.array([0.5, np.nan]))
    assert (roc.n_genuine, roc.n_impostor, roc.n_no_face) == (2, 1, 1)
    assert roc.tar.max() == 0.5  # the genuine pair without a face is never accepted
    assert roc.tar_at(0.0) == 0.5
    assert roc.auc == pytest.approx(0.5)
    with pytest.raises(ValueError, match="impostor"):
        verification_roc(np.array([0.1]), np.array([np.nan]))


def test_impostor_pairs_all_when_few():
    rng = np.random.default_rng(9)
    people = centers(6, rng)
    a_ids, b_ids = np.array([0, 1, 2, 2, 3]), np.array([2, 3, 4, 5])
    a, b = samples(people[a_ids], rng), samples(people[b_ids], rng)
    a[4] = np.nan  # no face: no pairs
    got = impostor_distances(a, a_ids, b, b_ids)
    expected = [np.linalg.norm(a[i] - b[j]) for i in range(4) for j in range(4)
                if a_ids[i] != b_ids[j]]
    assert len(expected) == 16 - 2  # (2, 2) twice is the same person; a's 3 has no face
    np.testing.assert_allclose(np.sort(got), np.sort(expected))


def test_impostor_pairs_sampled_when_many():
    rng = np.random.default_rng(10)
    people = centers(700, rng)
    ids = np.arange(700)
    a, b = samples(people, rng), samples(people, rng)
    got = impostor_distances(a, ids, b, ids)
    assert got.size == 200_000  # of 700 * 699 = 489,300 different-person pairs
    assert np.unique(got).size == got.size  # distinct pairs
    assert got.min() > SAME_PERSON_THRESHOLD  # no same-person pair (those are ~0.3)
    np.testing.assert_array_equal(got, impostor_distances(a, ids, b, ids))
    other = impostor_distances(a, ids, b, ids, max_pairs=1000, seed=1)
    assert other.size == 1000 and not np.isin(other, got[:1000]).all()


# ---- attack II: trained classifier


def test_classifier_attack_on_tight_clusters_is_perfect():
    rng = np.random.default_rng(11)
    n_ids = 150
    ids = np.r_[np.repeat(np.arange(n_ids), 3), 999]  # person 999 has one face: dropped
    people = centers(n_ids + 1, rng)
    desc = samples(people[np.minimum(ids, n_ids)], rng, spread=0.1)
    desc[0] = np.nan  # person 0 keeps two faces
    desc[3:5] = np.nan  # person 1 keeps one: dropped
    result = classifier_attack(desc, ids)
    assert result.n_identities == n_ids - 1
    assert result.n_test == n_ids - 1
    assert result.n_train == 3 * n_ids - 3 - (n_ids - 1) - 1
    assert result.chance == pytest.approx(1 / (n_ids - 1))
    assert result.by_classifier == {"nearest_centroid": 1.0, "logistic_regression": 1.0,
                                    "rbf_svm": 1.0}
    assert result.accuracy == 1.0
    assert result.winner == "nearest_centroid"  # on a tie, the simplest attacker is named


def test_classifier_attack_on_random_outputs_is_at_chance():
    rng = np.random.default_rng(12)
    n_ids = 200
    ids = np.repeat(np.arange(n_ids), 3)
    desc = samples(centers(len(ids), rng), rng)  # every output a new person
    result = classifier_attack(desc, ids, seed=3)
    _, hi = interval(result.n_test, result.chance)
    assert set(result.by_classifier) == {"nearest_centroid", "logistic_regression", "rbf_svm"}
    assert all(acc <= hi for acc in result.by_classifier.values()), result.by_classifier
    assert result.accuracy == max(result.by_classifier.values())
    assert result.by_classifier[result.winner] == result.accuracy


def test_only_the_nonlinear_attacker_sees_through_a_sign_flip():
    """A method that sends each face to its person's point or its mirror image, at random:
    every person's outputs average to nothing and no hyperplane separates +c from -c, yet
    an RBF kernel finds both clusters."""
    rng = np.random.default_rng(14)
    n_ids = 120
    ids = np.repeat(np.arange(n_ids), 4)
    sign = np.tile([1.0, -1.0, 1.0, -1.0], n_ids)[:, None]  # whichever is held out, the
    desc = sign * samples(centers(n_ids, rng)[ids], rng, spread=0.2)  # rest show both signs
    result = classifier_attack(desc, ids, seed=1)
    by = result.by_classifier
    assert by["rbf_svm"] > 0.9, by
    assert by["nearest_centroid"] < 0.2 and by["logistic_regression"] < 0.5, by
    assert result.winner == "rbf_svm" and result.accuracy == by["rbf_svm"]


def test_classifier_attack_is_seeded_and_needs_two_identities():
    rng = np.random.default_rng(13)
    ids = np.repeat(np.arange(40), 3)
    desc = samples(centers(40, rng)[ids], rng, spread=0.7)
    first, again = classifier_attack(desc, ids, seed=5), classifier_attack(desc, ids, seed=5)
    assert first == again
    with pytest.raises(ValueError, match="2 identities"):
        classifier_attack(desc[:3], ids[:3])


# ---- the parrot attack: a gallery anonymised by the same method


def test_gallery_is_each_identitys_first_row():
    assert gallery_rows(["b", "a", "b", "c", "a"]).tolist() == [0, 1, 3]
    assert gallery_rows(np.array([5, 5, 5])).tolist() == [0]
    assert gallery_rows([]).tolist() == []


def test_parrot_sees_through_a_shift_that_fools_matching_against_originals():
    """A method that moves every face by one large offset (what a blur or a k-Same average
    does to descriptors): outputs are far from every original, but the attacker who shifts
    its gallery the same way finds them all."""
    rng = np.random.default_rng(20)
    n_ids, n_probes = 200, 1000
    people = centers(n_ids, rng)
    offset = 3.0 * rng.normal(size=DIM) / np.sqrt(DIM)
    gallery_ids = np.arange(n_ids)
    originals = samples(people, rng)
    probe_ids = rng.integers(0, n_ids, n_probes)
    outputs = samples(people[probe_ids], rng) + offset
    anonymised = samples(people, rng) + offset  # the gallery's photos, anonymised again
    against_originals = identify(outputs, probe_ids, originals, gallery_ids)
    parrot = parrot_attack(outputs, probe_ids, anonymised, gallery_ids)
    assert parrot.rates[1] > 0.95 and parrot.rates[5] == 1.0, parrot.rates
    assert against_originals.rates[1] < 0.5 * parrot.rates[1], against_originals.rates
    assert parrot.chance == {1: 1 / n_ids, 5: 5 / n_ids}
    assert (parrot.n_probes, parrot.gallery_size, parrot.n_left_out) == (n_probes, n_ids, 0)
    assert parrot.over_chance[1] > 190


def test_parrot_of_a_random_identity_method_is_at_chance():
    rng = np.random.default_rng(21)
    n_ids, n_probes = 100, 4000
    probe_ids = rng.integers(0, n_ids, n_probes)
    outputs = samples(centers(n_probes, rng), rng)  # each output a new person ...
    anonymised = samples(centers(n_ids, rng), rng)  # ... and so is each fresh-seed gallery face
    result = parrot_attack(outputs, probe_ids, anonymised, np.arange(n_ids))
    for rank in (1, 5):
        lo, hi = interval(n_probes, rank / n_ids)
        assert lo <= result.rates[rank] <= hi, (rank, result.rates)


def test_parrot_ranks_like_identify_and_leaves_out_identities_without_a_gallery_face():
    rng = np.random.default_rng(22)
    n_ids, n_probes = 40, 300
    people = centers(n_ids, rng)
    probe_ids = rng.integers(0, n_ids, n_probes)
    outputs = samples(people[probe_ids], rng, spread=4.0)  # noisy: hits and misses
    outputs[:7] = np.nan  # no face on these outputs: misses
    anonymised = samples(people, rng)
    anonymised[[3, 11]] = np.nan  # no face on two anonymised gallery photos
    result = parrot_attack(outputs, probe_ids, anonymised, np.arange(n_ids), ranks=(1, 3))
    out = np.isin(probe_ids, [3, 11])
    assert result.n_left_out == out.sum() > 0 and result.n_gallery_no_face == 2
    assert np.isnan(result.ranks[out]).all()
    keep = np.flatnonzero(~out)
    reference = identify(outputs[keep], probe_ids[keep], anonymised[np.r_[0:3, 4:11, 12:40]],
                         np.r_[0:3, 4:11, 12:40], ranks=(1, 3))
    np.testing.assert_array_equal(result.ranks[keep], reference.ranks)
    assert result.rates == reference.rates and result.chance == {1: 1 / 38, 3: 3 / 38}
    assert (result.n_probes, result.gallery_size) == (n_probes - out.sum(), 38)
    assert result.n_no_face == np.isnan(outputs[keep]).any(axis=1).sum() > 0
    assert 0.2 < result.rates[1] < 0.9
    assert result.rate(1) == result.rates[1]
    some = np.arange(n_probes) % 2 == 0
    hits = result.ranks[some & ~out] <= 1
    assert result.rate(1, among=some) == pytest.approx(hits.mean())


def test_parrot_refuses_unknown_probes_and_an_empty_gallery():
    with pytest.raises(ValueError, match=r"not in the gallery.*\[7\]"):
        parrot_attack(np.zeros((2, DIM)), [0, 7], np.ones((2, DIM)), [0, 1])
    with pytest.raises(ValueError, match="no anonymised gallery image has a face"):
        parrot_attack(np.zeros((1, DIM)), [0], np.full((2, DIM), np.nan), [0, 1])
    with pytest.raises(ValueError, match="one identity"):
        parrot_attack(np.zeros((2, DIM)), [0], np.ones((2, DIM)), [0, 1])


# ---- real faces


@pytest.fixture(scope="module")
def celeba_pairs(request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first two photos of 40 CelebA people (both with a face found), and their ids."""
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face

    analyzer = request.getfixturevalue("analyzer")
    by_id: dict[int, list] = {}
    for it in celeba_id():
        by_id.setdefault(it.identity, []).append(it.path)
    chosen = [paths[:2] for paths in by_id.values() if len(paths) >= 2][:48]
    found = analyzer.analyze_many([load_image(p).rgb for pair in chosen for p in pair],
                                  gender=False)
    faces = [largest_face(a.faces) for a in found]
    pairs = [(f1.descriptor, f2.descriptor) for f1, f2 in zip(faces[::2], faces[1::2],
                                                              strict=True) if f1 and f2][:40]
    assert len(pairs) == 40
    first, second = (np.array([p[k] for p in pairs], np.float64) for k in (0, 1))
    return first, second, np.arange(40)


@pytest.mark.data
def test_real_faces_are_reidentified(celeba_pairs):
    first, second, ids = celeba_pairs
    same = identify(first.copy(), ids, first, ids)
    assert same.rates[1] == 1.0
    assert deidentified_share(dist(first, first.copy())) == 0.0
    other_photo = identify(second, ids, first, ids)
    assert other_photo.rates[1] > 0.6, other_photo.rates
    assert other_photo.over_chance[1] > 20
    genuine = dist(first, second)
    impostor = impostor_distances(second, ids, first, ids)
    assert impostor.size == 40 * 39
    assert np.median(genuine) < SAME_PERSON_THRESHOLD < np.median(impostor)
    roc = verification_roc(genuine, impostor)
    assert roc.auc > 0.9, roc
    assert classifier_attack(np.r_[first, second], np.r_[ids, ids]).accuracy > 0.6
