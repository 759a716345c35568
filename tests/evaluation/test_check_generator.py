"""`studio evaluate-generator`'s issue-16 rows, on the shipped generator and real held-out
faces: held-out means out of the generator's training manifest; the realism rows pass
reals against reals and fail heavily blurred reals; smile agreement is given per joy bin."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from studio.core.assets import sha256_of
from studio.core.datasets import (
    TrainingManifest,
    genki,
    manifest_path,
    utk_split,
    utkface,
)
from studio.core.errors import StudioError
from studio.core.evaluation.check_generator_realism import (
    C2ST_BAR,
    KID_RATIO_BAR,
    kid_reference,
    measure_held_out,
    realism_metrics,
    smile_metrics,
)
from studio.core.evaluation.held_out import held_out
from studio.core.evaluation.realism import RealismFeatures
from studio.core.evaluation.sources import spread
from studio.core.evaluation.summary import JOY_BINS
from studio.core.generator.sampler import DEFAULT_WEIGHTS
from studio.core.generator.training_data import GENERATOR

pytestmark = pytest.mark.data
FACES = 64


@pytest.fixture(scope="module")
def generator():
    from studio.core.generator.sampler import Sampler

    return Sampler()


@pytest.fixture(scope="module")
def held():
    return held_out(DEFAULT_WEIGHTS, GENERATOR)


@pytest.fixture(scope="module")
def rows(analyzer, generator, held):
    """FACES held-out faces, each with the shipped generator's face from its own labels."""
    measured, skipped = measure_held_out(analyzer, generator, spread(held.unseen(), FACES))
    assert len(measured) + len(skipped) == FACES and len(measured) >= 0.9 * FACES
    return measured


def by_name(metrics) -> dict:
    return {m.name: m for m in metrics}


def test_held_out_faces_leave_out_what_the_generator_trained_on(held, tmp_path):
    shipped = TrainingManifest.load(manifest_path(DEFAULT_WEIGHTS))
    test = [it.path for it in genki("test")]
    seen = {p for p in test if shipped.contains_image(sha256_of(p))}
    # GENKI-4K's test split holds files byte-identical to training files: the shipped
    # generator saw them, so they are set aside; the UTKFace hold-out is clean.
    assert len(seen) >= 1 and held.manifest
    assert held.excluded() == held.excluded(("genki4k-test",)) == len(seen)
    unseen = held.unseen(("genki4k-test",))
    assert len(unseen) == len(test) - len(seen) and not seen & {s.path for s in unseen}
    assert "set aside" in held.note()

    # Weights with their own manifest: exactly its files are set aside, in both sets.
    hold = [it.path for it in utk_split(utkface(), "test")]
    trained = [("genki4k", test[5], None), ("genki4k", test[700], None),
               ("utkface", hold[3], None), ("utkface", hold[900], None)]
    weights = tmp_path / "other.safetensors"
    TrainingManifest.of_files("generator", trained).save(manifest_path(weights))
    mine = held_out(weights, GENERATOR)
    hashes = {sha256_of(p) for _, p, _ in trained}
    same = {p for p in test + hold if sha256_of(p) in hashes}  # the files and any copies
    assert len(same) >= 4 and mine.excluded() == len(same)
    assert mine.excluded(("utkface-holdout",)) == len(same & set(hold)) >= 2
    left = {s.path for s in mine.unseen()}
    assert len(left) == len(test) + len(hold) - len(same) and not left & same

    # Weights without a manifest: nothing can be checked, and the table says so.
    bare = held_out(tmp_path / "bare.safetensors", GENERATOR)
    assert not bare.manifest and bare.excluded() == 0
    assert "by split only" in bare.note()


@pytest.fixture(scope="module")
def blurred(rows) -> RealismFeatures:
    """The held-out faces under the evaluation's strong blur, in the same framing."""
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import FaceLandmarker, largest_face
    from studio.core.evaluation.realism import method_crop, realism_features

    crops = []
    with FaceLandmarker() as landmarker:
        for r in rows:
            image = load_image(r.source)
            face = largest_face(landmarker.detect(image.rgb))
            crops.append(method_crop(None, "blur-strong", image, face, 0))
    return realism_features(np.stack(crops))


def test_realism_rows_pass_reals_and_fail_blurred_reals(rows, blurred):
    reals = RealismFeatures.from_rows([r.original.realism for r in rows])
    sources = np.arange(len(reals))
    same = by_name(realism_metrics(reals, reals, sources))
    c2st = same["realism: C2ST on descriptors vs held-out reals"]
    assert c2st.value <= 0.65 and c2st.passed and c2st.bar == f"<= {C2ST_BAR}"
    kid_row = same["realism: KID / real-vs-real KID"]
    assert math.isfinite(kid_row.value) and kid_row.value <= KID_RATIO_BAR and kid_row.passed
    hog = same["realism: dlib HOG face-found rate"]
    assert hog.passed and hog.bar == f">= {hog.value:.3f}" and hog.value > 0.75

    blur = by_name(realism_metrics(blurred, reals, sources))
    assert blur["realism: C2ST on descriptors vs held-out reals"].value >= 0.8
    assert blur["realism: KID / real-vs-real KID"].value > KID_RATIO_BAR
    assert blur["realism: dlib HOG face-found rate"].value < hog.value - 0.3
    assert not any(m.passed for m in blur.values())


def test_kid_reference_is_the_chance_size_of_real_against_real(rows, blurred):
    from studio.core.evaluation.realism import kid

    reals = RealismFeatures.from_rows([r.original.realism for r in rows]).descriptor
    ref = kid_reference(reals)
    splits = []
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(reals))
        splits.append(kid(reals[order[:len(reals) // 2]], reals[order[len(reals) // 2:]], seed))
    assert ref == pytest.approx(np.sqrt(np.mean(np.square(splits))))
    assert ref > 0 and abs(np.mean(splits)) < ref  # noise of either sign around 0
    assert kid(blurred.descriptor, reals) > KID_RATIO_BAR * ref


def test_median_interval_covers_chance_and_not_a_real_shift(rows):
    """Two quarters of held-out reals, each against the same other half, differ by chance:
    the interval holds 0. Copies of reference faces against reals do not."""
    from studio.core.evaluation.check_generator import median_difference_ci, nearest_distances

    reals = RealismFeatures.from_rows([r.original.realism for r in rows]).descriptor
    half = len(reals) // 2
    ref, a, b = reals[:half], reals[half:half + half // 2], reals[half + half // 2:]
    low, high = median_difference_ci(nearest_distances(a, ref), nearest_distances(b, ref))
    assert low <= 0 <= high and high - low < 0.2
    # copies of training faces (a memorising generator): nearer by far, past chance
    copies = nearest_distances(ref[: len(a)] + 1e-3, ref)
    low, high = median_difference_ci(copies, nearest_distances(a, ref))
    assert high < 0
    assert all(math.isnan(v) for v in median_difference_ci(copies[:1], copies))


def test_smile_agreement_is_given_per_joy_bin(analyzer, rows):
    from dataclasses import replace

    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face
    from studio.core.evaluation.observations import Observation
    from studio.core.evaluation.summary import joy_bins

    table = by_name(smile_metrics(rows))
    smile = table["smile agreement, every joy bin"]
    bins = joy_bins(rows)
    assert [b.low for b in bins] == list(JOY_BINS[:-1]) and sum(b.n for b in bins) == len(rows)
    filled = [b for b in bins if b.n]
    assert smile.value == pytest.approx(sum(b.smile_agreement * b.n for b in filled) / len(rows))
    for b in filled:
        assert f"{b.low:.1f}-{b.high:.1f}: {b.smile_agreement:.1%} of {b.n}" in smile.detail
    assert smile.bar == ">= 0.90" and smile.passed == (smile.value >= 0.9)
    seven = table["7-class agreement (independent judge)"]
    assert 0 < seven.value <= 1 and seven.bar == "reported" and seven.passed

    # Each face's mirror image keeps its smile; another person's face keeps it by chance.
    mirrored = []
    for r in rows:
        flipped = load_image(r.source).rgb[:, ::-1]
        mirrored.append(replace(r, output=Observation.of(
            largest_face(analyzer.analyze(np.ascontiguousarray(flipped)).faces))))
    mirror = by_name(smile_metrics(mirrored))["smile agreement, every joy bin"]
    assert mirror.value >= 0.9 and mirror.passed
    joy = np.array([r.original.joy for r in rows])
    order = np.argsort(joy)
    others = [replace(rows[i], output=rows[j].original)
              for i, j in zip(order, order[::-1], strict=True)]  # the least smiling, the most
    swapped = by_name(smile_metrics(others))["smile agreement, every joy bin"]
    assert swapped.value < 0.5 and not swapped.passed


def test_evaluate_generator_has_the_issue_rows_with_their_bars(analyzer, generator, held,
                                                               tmp_path):
    from studio.core.evaluation.check_generator import run_check
    from studio.core.generator.training_data import read_cache_by_path

    with pytest.raises(StudioError, match="at least 20"):
        run_check(generator, analyzer, {}, realism_faces=5)
    paths = [s.path for s in spread(held.unseen(), 40)]
    records = read_cache_by_path(tmp_path / "labels.jsonl", paths)
    metrics = by_name(run_check(generator, analyzer, records, n=60, diversity_sets=1,
                                privacy_faces=12, training_reference=40, realism_faces=24))
    bars = {"realism: C2ST on descriptors vs held-out reals": "<= 0.75",
            "realism: KID / real-vs-real KID": "<= 10",
            "smile agreement, every joy bin": ">= 0.90",
            "7-class agreement (independent judge)": "reported",
            "joy correlation": ">= 0.85", "yaw MAE (deg), |yaw| <= 30": "<= 5",
            "pitch correlation": ">= 0.80", "gender agreement, P <=0.1 or >=0.9": ">= 0.95",
            "privacy: surrogate >= 0.6 from its original": ">= 0.97"}
    for name, bar in bars.items():
        m = metrics[name]
        assert m.bar == bar and math.isfinite(m.value), name
        op, _, limit = bar.partition(" ")  # the bar is what decides the row
        want = True if op == "reported" else (m.value <= float(limit) if op == "<=" else
                                               m.value >= float(limit))
        assert m.passed == want, m
    own = metrics["privacy: surrogate >= 0.6 from its original"]
    redrawn = float(own.detail.split("hands them out: ")[1].split(";")[0])
    assert redrawn >= own.value  # the studio's redraws only ever move a face further off
    hog = metrics["realism: dlib HOG face-found rate"]
    assert hog.bar.startswith(">= ") and 0 <= hog.value <= 1
    near = metrics["privacy: median nearest-training distance"]
    assert near.bar == f">= {float(near.detail.split(': ')[1].split(';')[0]):.3f}"
    by_set = re.findall(r"(GENKI-4K test|UTKFace hold-out) labels ([\d.]+) vs its reals "
                        r"([\d.]+)", near.detail)
    assert [name for name, *_ in by_set] == ["GENKI-4K test", "UTKFace hold-out"]
    genki_reals = float(by_set[0][2])
    assert near.bar == f">= {genki_reals:.3f}"  # the bar's reals: GENKI-4K test
    diff, low, high = map(float, re.search(
        r"samples minus reals ([-+][\d.]+) \(95% bootstrap interval ([-+][\d.]+) to "
        r"([-+][\d.]+)\)", near.detail).groups())
    assert diff == pytest.approx(near.value - genki_reals, abs=2e-3)
    assert low < high and low - 0.02 <= diff <= high + 0.02
    under = re.search(r"under 0.6 from a training face: samples ([\d.]+), reals ([\d.]+)",
                      near.detail)
    assert under and all(0 <= float(v) <= 1 for v in under.groups())
    assert f"{held.excluded()} in the generator's training manifest set aside" in \
        metrics["realism: C2ST on descriptors vs held-out reals"].detail


def test_too_few_realism_faces_is_refused_before_any_work(capsys):
    from studio.cli import main

    assert main(["evaluate-generator", "--realism-faces", "5", "--labels", "/nonexistent"]) == 2
    assert "--realism-faces must be at least 20" in capsys.readouterr().err
