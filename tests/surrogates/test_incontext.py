"""The in-context surrogate on real held-out faces: where it draws, what it keeps, who it
shows, and the light it takes from the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.surrogates import compositing
from studio.core.surrogates.incontext import ContextRequest
from studio.core.surrogates.verified import read_back, replace_verified

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def held_out(analyzer):
    """Four held-out UTKFace adults (not in the morphable model's or its extras' build),
    with their analyses."""
    from studio.core.datasets import data_available, data_root, utk_split, utkface

    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    items = [it for it in utk_split(utkface(), "test") if 20 <= it.age <= 60][:40:10]
    out = []
    for it in items:
        rgb = load_image(it.path).rgb
        out.append((it, rgb, largest_face(analyzer.analyze(rgb).faces)))
    return out


def grown_hull(shape: tuple[int, ...], landmarks: np.ndarray, grow: float) -> np.ndarray:
    xy = np.asarray(landmarks, np.float32)[:, :2]
    c = xy.mean(0)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull((xy - c) * grow + c)).astype(np.int32), 1)
    return mask > 0


def test_the_face_is_replaced_where_it_was_and_nothing_else_is_touched(maker, held_out):
    for _, rgb, face in held_out:
        before = rgb.copy()
        result = maker.make(rgb, [face], ContextRequest(seed=3))
        assert np.array_equal(rgb, before), "the photo itself was modified"
        assert result.image.shape == rgb.shape and result.replaced == 1
        changed = np.any(result.image != rgb, axis=2)
        # Everything that changed lies inside the face (its landmark hull, grown a little),
        # and the declared mask covers every changed pixel.
        assert not (changed & ~grown_hull(rgb.shape, face.landmarks, 1.1)).any()
        assert not (changed & ~result.changed).any()
        assert changed.sum() > 0.5 * grown_hull(rgb.shape, face.landmarks, 1.0).sum()
        outside = ~grown_hull(rgb.shape, face.landmarks, 1.15)
        assert np.array_equal(result.image[outside], rgb[outside])


def test_pose_and_expression_survive_and_the_person_does_not(maker, analyzer, held_out):
    for _, rgb, face in held_out:
        verified = replace_verified(maker, analyzer, rgb, [face], ContextRequest(seed=11))
        assert verified.result.replaced == 1
        (check,) = verified.checks
        assert check.distance >= 0.6, "the new face reads as the same person"
        assert (check.joy >= 0.5) == face.attributes.smiling
        new = largest_face(analyzer.analyze(verified.result.image).faces)
        eyes = np.linalg.norm(face.landmarks[33, :2] - face.landmarks[263, :2])
        error = np.linalg.norm(new.landmarks[:468, :2] - face.landmarks[:468, :2], axis=1)
        assert error.mean() / eyes < 0.06, f"landmarks moved by {error.mean() / eyes:.3f}"
        for angle in ("yaw", "pitch", "roll"):
            assert abs(getattr(new.attributes, angle) - getattr(face.attributes, angle)) < 6


def test_every_face_of_a_group_photo_is_replaced(maker, analyzer, held_out):
    canvas = np.full((480, 480, 3), 170, np.uint8)
    faces_at = []
    for k, (_, rgb, _) in enumerate(held_out):
        y, x = 30 + 220 * (k // 2), 30 + 220 * (k % 2)
        canvas[y:y + 200, x:x + 200] = rgb
        faces_at.append((x + 100, y + 100))
    faces = analyzer.analyze(canvas).faces
    assert len(faces) == 4
    verified = replace_verified(maker, analyzer, canvas, faces, ContextRequest(seed=5))
    assert verified.result.replaced == 4
    for check in read_back(analyzer, verified.result.image, faces):
        assert check.distance is not None and check.distance >= 0.6


def test_a_face_too_small_to_fit_is_blurred_and_said(maker, analyzer, held_out):
    _, rgb, _ = held_out[0]
    small = np.full((160, 160, 3), 128, np.uint8)
    small[60:88, 60:88] = cv2.resize(rgb, (28, 28), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (640, 640), interpolation=cv2.INTER_NEAREST)
    faces = analyzer.analyze(big).faces
    assert faces, "the test face should be found at 4x"
    tiny = [f.__class__(tuple(v / 4 for v in f.box), f.landmarks / 4, f.blendshapes,
                        f.transform, f.attributes, f.descriptor) for f in faces]
    result = maker.make(small, tiny, ContextRequest(seed=2))
    assert result.replaced == 0
    assert "too small" in result.faces[0].reason
    assert np.any(result.image != small)


def test_a_grey_photo_gets_a_grey_face(maker, analyzer, held_out):
    _, rgb, _ = held_out[1]
    grey = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    face = largest_face(analyzer.analyze(grey).faces)
    result = maker.make(grey, [face], ContextRequest(seed=4))
    assert result.replaced == 1
    assert np.array_equal(result.image[..., 0], result.image[..., 1])
    assert np.array_equal(result.image[..., 1], result.image[..., 2])
    assert any("grayscale" in n for n in result.notes)


def test_requested_gender_moves_the_classifier(maker, analyzer, held_out):
    """The gender axis: the same face and seed drawn at P(male) 0.05 and 0.95 reads as
    less and more male to the studio's gender classifier, for every test face."""
    from dataclasses import replace

    for _, rgb, face in held_out:
        read = []
        for p in (0.05, 0.95):
            targets = replace(face.attributes, p_male=p)
            out = maker.make(rgb, [face], ContextRequest(seed=9, targets=targets)).image
            read.append(largest_face(analyzer.analyze(out).faces).attributes.p_male)
        assert read[1] > read[0] + 0.1, read


def test_the_new_texture_sits_on_the_smile_axis_where_its_joy_does(maker, held_out):
    """Issue 27's smile axis: a new identity's texture is set to where the training faces
    of the joy it is drawn with sit (its random amount of smile read as another expression
    to the independent judge), and left as drawn where no joy is given."""
    from studio.core.surrogates.incontext import Redraw

    smile = maker.extras.smile
    assert smile is not None and smile.positions[0] < smile.positions[1]
    for _, rgb, face in held_out:
        fit = maker.prepare(rgb, face).fit
        along = [float(maker.new_identity(fit, 9, 0.5, Redraw(joy=joy))[1] @ smile.direction)
                 for joy in (0.0, 0.5, 1.0)]
        assert along == pytest.approx([smile.positions[0], np.mean(smile.positions),
                                       smile.positions[1]])
        shape, texture = maker.new_identity(fit, 9, 0.5, Redraw())
        gender_only = maker.extras.gender.apply(*maker.model.sample_identity(
            9, spread=1.0, away_from=fit, margin=1.0), 0.5)
        assert np.allclose(texture, gender_only[1]) and np.allclose(shape, gender_only[0])


def test_a_large_pose_edit_is_limited_and_said(maker, held_out):
    from dataclasses import replace

    _, rgb, face = held_out[2]
    targets = replace(face.attributes, yaw=face.attributes.yaw + 40)
    result = maker.make(rgb, [face], ContextRequest(seed=1, targets=targets))
    assert any("limited" in n for n in result.notes)


def test_blurring_the_context_changes_the_background_keeping_it_does_not(maker, held_out):
    _, rgb, face = held_out[3]
    keep = maker.make(rgb, [face], ContextRequest(seed=8)).image
    blurred = maker.make(rgb, [face], ContextRequest(seed=8, context="blur")).image
    corner = (slice(0, 12), slice(0, 12))
    assert np.array_equal(keep[corner], rgb[corner])
    assert np.abs(blurred.astype(int) - rgb.astype(int))[corner].mean() > 0 or \
        np.abs(cv2.Laplacian(blurred, cv2.CV_32F)).mean() < np.abs(
            cv2.Laplacian(rgb, cv2.CV_32F)).mean()


def test_face_masks_on_the_drawn_box_equal_the_whole_frame_s(maker, held_out):
    """The clone mask and feather are eroded and blurred on the drawn face's box only: the
    masks of the whole frame (the feather to a float's last bit), for a face inside a
    large photo and one at its edges (a 12-megapixel photo's slider repaint spent 0.9 s on
    the empty rest)."""
    _, rgb, face = held_out[0]
    coverage = maker.make(rgb, [face], ContextRequest(seed=3, refine=False)).rendered
    width = compositing.face_width(face.landmarks)
    big = np.zeros((900, 1200), np.float32)
    big[300:300 + rgb.shape[0], 500:500 + rgb.shape[1]] = coverage
    for cov in (coverage.astype(np.float32), big, big[300:, 500:]):
        erode = max(1, round(0.03 * width))
        hard = cv2.erode((cov > 0.5).astype(np.uint8) * 255, cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1)))
        soft = cv2.GaussianBlur(cv2.erode(hard, np.ones((3, 3), np.uint8)).astype(np.float32)
                                / 255, (0, 0), max(1.0, 0.025 * width)) * (hard > 0)
        got_hard, got_soft = compositing.face_masks(cov, width)
        assert hard.any() and np.array_equal(got_hard, hard)
        # The blur's sums over a narrower array may round differently in the last bit.
        assert got_soft.dtype == np.float32 and np.abs(got_soft - soft).max() < 1e-6


def test_grayscale_detection_and_grain_on_real_pixels(held_out):
    _, rgb, face = held_out[0]
    assert not compositing.is_grayscale(rgb)
    mask = grown_hull(rgb.shape, face.landmarks, 0.8)
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 6, rgb.shape), 0, 255)
    assert compositing.photo_grain(noisy.astype(np.uint8), mask) > \
        compositing.photo_grain(rgb, mask) + 2


def test_the_acceptance_check_measures_real_faces(maker, analyzer):
    """``studio evaluate-incontext`` on a handful of held-out faces and training faces:
    every metric is measured (finite), and the distances it reports are real ones."""
    from studio.core.evaluation.check_incontext import refiner_training_sample, run_check

    metrics = {m.name: m for m in run_check(analyzer, maker, n_genki=3, n_utk=3,
                                            training_limit=12)}
    assert len(metrics) == 12
    for m in metrics.values():
        assert np.isfinite(m.value), m
    seven = metrics["7-class agreement (FER judge)"]  # issue 27: the independent judge
    assert 0 <= seven.value <= 1 and "mirrored original (the judge with itself)" in seven.detail
    assert metrics["de-identified: >= 0.6 from the original"].value >= 0.5
    shown = metrics["no real person shown: >= 0.6 from every training face"]
    # 12 of the morphable build's faces and 12 spread over the refiner's training photos
    # (one of either may have no face dlib finds)
    refiner_faces = len(refiner_training_sample(12))
    assert refiner_faces == 12
    assert any(f"against {n} training faces" in shown.detail for n in (22, 23, 24))
