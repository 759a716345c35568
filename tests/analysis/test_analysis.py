"""The face analysis on real faces: conventions, identity, several faces, no face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.attributes import Attributes
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, identity_distance
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import BLENDSHAPE_NAMES
from studio.core.datasets import celeba_id

pytestmark = pytest.mark.data


def _turned_faces(analyzer, genki_test, sign: int, n: int = 1) -> list[np.ndarray]:
    """GENKI-4K test faces clearly turned one way by GENKI's own label, and detected."""
    out = []
    for it in genki_test:
        if sign * it.yaw > 20:
            rgb = load_image(it.path).rgb
            if analyzer.analyze(rgb).faces:
                out.append(rgb)
                if len(out) == n:
                    return out
    raise AssertionError("not enough turned faces")


def test_face_has_478_landmarks_52_blendshapes_and_pose(analyzer, utk_face):
    result = analyzer.analyze(utk_face)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.landmarks.shape == (478, 3)
    assert face.blendshapes.shape == (len(BLENDSHAPE_NAMES),) == (52,)
    assert face.transform.shape == (4, 4)
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 200
    assert face.descriptor.shape == (128,)
    a = face.attributes
    assert 0 <= a.joy <= 1 and 0 <= a.p_male <= 1
    assert np.all((a.normalized() >= 0) & (a.normalized() <= 1))


def test_mirror_flips_yaw_and_roll_and_keeps_joy_and_gender(analyzer, genki_test):
    rgb = _turned_faces(analyzer, genki_test, +1)[0]
    a = analyzer.analyze(rgb).faces[0].attributes
    m = analyzer.analyze(np.ascontiguousarray(rgb[:, ::-1])).faces[0].attributes
    assert a.yaw > 8 and m.yaw < -8
    assert abs(a.yaw + m.yaw) < 6
    assert abs(a.roll + m.roll) < 4
    assert abs(a.pitch - m.pitch) < 5
    assert abs(a.joy - m.joy) < 0.2
    assert abs(a.p_male - m.p_male) < 0.25
    mirrored = a.mirrored()
    assert mirrored.yaw == -a.yaw and mirrored.roll == -a.roll and mirrored.joy == a.joy


def test_yaw_sign_follows_the_nose_and_genki(analyzer, genki_test):
    # Convention: yaw > 0 when the nose points to the right of the image, as in GENKI-4K.
    for sign in (+1, -1):
        agree = 0
        for rgb in _turned_faces(analyzer, genki_test, sign, n=6):
            face = analyzer.analyze(rgb).faces[0]
            nose_offset = face.landmarks[1, 0] - face.landmarks[:, 0].mean()
            assert np.sign(face.attributes.yaw) == np.sign(nose_offset)
            agree += np.sign(face.attributes.yaw) == sign
        assert agree >= 5


def test_clockwise_rotation_raises_roll(analyzer, utk_face):
    base = analyzer.analyze(utk_face).faces[0].attributes.roll
    img = Image.fromarray(utk_face)
    clockwise = analyzer.analyze(np.asarray(img.rotate(-12, resample=Image.BICUBIC)))
    counter = analyzer.analyze(np.asarray(img.rotate(12, resample=Image.BICUBIC)))
    assert clockwise.faces[0].attributes.roll - base == pytest.approx(12, abs=3)
    assert counter.faces[0].attributes.roll - base == pytest.approx(-12, abs=3)


def test_smiles_are_told_apart(analyzer, genki_test):
    smiles = [it for it in genki_test if it.smile == 1][:12]
    neutral = [it for it in genki_test if it.smile == 0][:12]
    joy_s = [analyzer.analyze(load_image(it.path)).faces[0].attributes.joy for it in smiles
             if analyzer.analyze(load_image(it.path)).faces]
    joy_n = [analyzer.analyze(load_image(it.path)).faces[0].attributes.joy for it in neutral
             if analyzer.analyze(load_image(it.path)).faces]
    assert np.mean(np.array(joy_s) >= 0.5) >= 0.8
    assert np.mean(np.array(joy_n) < 0.5) >= 0.8
    assert np.median(joy_s) - np.median(joy_n) > 0.5


def test_gender_on_utkface_labels(analyzer):
    from studio.core.datasets import utkface

    items = [it for it in utkface() if 25 <= it.age <= 50][::400][:20]
    right = 0
    for it in items:
        faces = analyzer.analyze(load_image(it.path)).faces
        right += bool(faces) and (faces[0].attributes.p_male >= 0.5) == it.male
    assert right >= 17


def test_face_and_its_mirror_are_the_same_person(analyzer, utk_face):
    a = analyzer.analyze(utk_face).faces[0].descriptor
    b = analyzer.analyze(np.ascontiguousarray(utk_face[:, ::-1])).faces[0].descriptor
    assert identity_distance(a, b) < SAME_PERSON_THRESHOLD


def test_two_celeba_people_are_not_the_same_person(analyzer):
    items = celeba_id()
    by_id: dict[int, list] = {}
    for it in items:
        by_id.setdefault(it.identity, []).append(it.path)
    multi = [v for v in by_id.values() if len(v) >= 2][:3]
    desc = [[analyzer.analyze(load_image(p)).faces[0].descriptor for p in v[:2]] for v in multi]
    for i in range(3):
        assert identity_distance(desc[i][0], desc[i][1]) < SAME_PERSON_THRESHOLD + 0.1
        for j in range(i + 1, 3):
            assert identity_distance(desc[i][0], desc[j][0]) > SAME_PERSON_THRESHOLD


def test_several_faces_left_to_right(analyzer, group_photo):
    canvas = group_photo
    faces = analyzer.analyze(canvas).faces
    assert len(faces) == 2
    assert faces[0].box[2] < 260 < faces[1].box[0]
    assert faces[0].attributes.p_male > 0.5 > faces[1].attributes.p_male
    assert identity_distance(faces[0].descriptor, faces[1].descriptor) > SAME_PERSON_THRESHOLD


def test_no_face(analyzer):
    from skimage import data

    assert analyzer.analyze(data.coffee()).faces == []
    assert analyzer.analyze(np.full((300, 300, 3), 90, np.uint8)).faces == []


def test_tight_64px_genki_crop_is_found(analyzer, genki_test):
    found = sum(bool(analyzer.analyze(load_image(it.path)).faces) for it in genki_test[:40])
    assert found >= 34


def test_normalisation_round_trip():
    a = Attributes(0.7, 0.2, 12.0, -5.0, 3.0)
    b = Attributes.from_normalized(a.normalized())
    assert b.yaw == pytest.approx(12.0, abs=1e-4) and b.pitch == pytest.approx(-5.0, abs=1e-4)
    assert b.roll == pytest.approx(3.0, abs=1e-4) and b.joy == pytest.approx(0.7)


def test_pose_angles_equal_scipys_euler_decomposition(analyzer, genki_test):
    from scipy.spatial.transform import Rotation

    from studio.core.analysis.calibration import EULER_ORDER, raw_euler

    faces = [analyzer.landmarker.detect(load_image(it.path).rgb) for it in genki_test[:8]]
    transforms = [f[0].transform for f in faces if f]
    assert len(transforms) >= 5
    rng = np.random.default_rng(0)
    for angles in rng.uniform(-60, 60, (20, 3)):
        m = np.eye(4)
        m[:3, :3] = Rotation.from_euler(EULER_ORDER, angles, degrees=True).as_matrix() * 1.3
        transforms.append(m)  # a scaled pose matrix, as a similarity transform would give
    for t in transforms:
        expected = Rotation.from_matrix(t[:3, :3]).as_euler(EULER_ORDER, degrees=True)
        np.testing.assert_allclose(raw_euler(t), expected, atol=1e-6)


def test_batched_analysis_equals_one_by_one(analyzer, utk_face, group_photo):
    blank = np.full((120, 120, 3), 128, np.uint8)
    images = [utk_face, group_photo, blank]
    batched = analyzer.analyze_many(images)
    assert [len(a.faces) for a in batched] == [1, 2, 0]
    for rgb, b in zip(images, batched, strict=True):
        single = analyzer.analyze(rgb)
        for f1, f2 in zip(single.faces, b.faces, strict=True):
            np.testing.assert_allclose(f1.descriptor, f2.descriptor, atol=1e-4)
            assert f1.attributes == f2.attributes
