"""Realism, measured on real faces: real-versus-real is indistinguishable, heavy blur is not;
the pooled mid-level features are what the network's layers give; the descriptor is dlib's."""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from studio.core.analysis.dlib_format import MODEL_NAME
from studio.core.assets import third_party_dir
from studio.core.datasets import data_available, data_root, genki, utk_split, utkface
from studio.core.errors import StudioError
from studio.core.evaluation.realism import (
    REALISM_SIZE,
    RealismFeatures,
    frechet_distance,
    method_crop,
    realism,
    realism_features,
    to_realism_size,
)

MODEL = third_party_dir() / MODEL_NAME
pytestmark = [
    pytest.mark.skipif(not data_available(), reason=f"research face data not at {data_root()}"),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL} not fetched (make models)"),
]
GENKI_FACES = 200
UTK_FACES = 60


@pytest.fixture(scope="module")
def faces() -> list[SimpleNamespace]:
    """~200 GENKI-4K test faces and 60 UTKFace hold-out faces, with their landmarks."""
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import FaceLandmarker, largest_face

    test = genki("test")
    hold = utk_split(utkface(), "test")
    paths = [test[i].path for i in np.linspace(0, len(test) - 1, GENKI_FACES).astype(int)]
    paths += [hold[i].path for i in np.linspace(0, len(hold) - 1, UTK_FACES).astype(int)]
    out = []
    with FaceLandmarker() as landmarker:
        for path in paths:
            image = load_image(path)
            face = largest_face(landmarker.detect(image.rgb))
            if face is not None:
                out.append(SimpleNamespace(image=image, face=face))
    assert len(out) > 0.9 * len(paths)
    return out


@pytest.fixture(scope="module")
def reals(faces) -> RealismFeatures:
    crops = np.stack([method_crop(None, "original", f.image, f.face, 0) for f in faces])
    assert crops.shape[1:] == (REALISM_SIZE, REALISM_SIZE, 3)
    return realism_features(crops)


@pytest.fixture(scope="module")
def blurred(faces) -> RealismFeatures:
    """The evaluation's strong blur (σ 12% of the face width), cropped after applying."""
    return realism_features(np.stack([method_crop(None, "blur-strong", f.image, f.face, 0)
                                      for f in faces]))


def test_real_versus_real_is_indistinguishable(reals):
    r = realism(reals, reals, seed=0, sources=np.arange(len(reals)))
    ref = r.reference
    assert 0.4 <= ref.c2st <= 0.62 and 0.4 <= ref.c2st_pooled <= 0.62
    assert abs(ref.kid) < 5e-4 and abs(ref.kid_pooled) < 5e-2
    assert 0.8 < ref.sharpness_ratio < 1.25
    assert abs(ref.face_found - ref.face_found_reals) < 0.12
    assert ref.face_found_reals > 0.75  # dlib's HOG finds most real faces at 64 px
    # outputs that are the reals themselves are compared like for like (half against half)
    assert 0.4 <= r.c2st <= 0.62 and r.fd == pytest.approx(ref.fd)
    # another seed splits differently and still finds nothing
    assert 0.4 <= realism(reals, reals, seed=1).reference.c2st <= 0.62


def test_heavy_blur_is_told_apart(reals, blurred):
    r = realism(blurred, reals, seed=0, sources=np.arange(len(reals)))
    ref = r.reference
    assert r.c2st >= 0.8 and r.c2st_pooled >= 0.8
    assert r.sharpness_ratio < 0.5
    assert r.face_found < r.face_found_reals - 0.3
    assert r.fd > 2 * ref.fd and r.fd_pooled > 3 * ref.fd_pooled
    assert r.kid > 10 * abs(ref.kid) and r.kid_pooled > 10 * abs(ref.kid_pooled)
    d = r.to_dict()
    for key in ("c2st", "kid", "fd", "face_found"):
        assert d[key] == getattr(r, key) and d["reference"][key] == getattr(ref, key)


def test_pooled_features_are_the_layers_run_by_hand(faces):
    from studio.core.analysis.dlib_resnet import POOLED_STAGE
    from studio.core.evaluation.realism import _encoder

    encoder = _encoder()
    model = encoder.model
    chips = np.stack([cv2.resize(method_crop(None, "original", f.image, f.face, 0), (150, 150))
                      for f in faces[:6]])
    desc, pooled = encoder.features(chips)
    assert pooled.shape == (6, encoder.pooled_size) == (6, 128)
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        # by hand: stem, then blocks 0-2 (32 ch), 3-6 (64 ch), 7-9 (128 ch) = stage 2
        h = (x - model.mean) / 256.0
        h = F.max_pool2d(F.relu(model.stem(h)), 3, 2)
        for block in list(model.blocks)[:10]:
            h = block(h)
        assert POOLED_STAGE == 2 and h.shape[1:] == (128, 8, 8)
        np.testing.assert_allclose(pooled, h.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(desc, model(x).numpy())  # forward, unchanged
    np.testing.assert_array_equal(desc, encoder.descriptors(chips))


def test_descriptor_is_still_dlibs(faces):
    """The descriptor of an unaligned 150 px crop is dlib's own, as before."""
    import dlib


    net = dlib.face_recognition_model_v1(str(MODEL))
    crops = [method_crop(None, "original", f.image, f.face, 0) for f in faces[-3:]]
    chips = np.stack([cv2.resize(c, (150, 150), interpolation=cv2.INTER_CUBIC) for c in crops])
    ours = realism_features(np.stack(crops)).descriptor
    theirs = np.array([net.compute_face_descriptor(c) for c in chips])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_features_serialise_and_sets_check_their_size(reals):
    rows = reals.rows()
    assert len(rows) == len(reals) and len(rows[0]["descriptor"]) == 128
    assert len(rows[0]["pooled"]) == 128 and isinstance(rows[0]["hog_found"], bool)
    back = RealismFeatures.from_rows(json.loads(json.dumps(rows)))
    np.testing.assert_array_equal(back.descriptor, reals.descriptor)
    np.testing.assert_array_equal(back.hog_found, reals.hog_found)
    np.testing.assert_allclose(back.sharpness, reals.sharpness)
    with pytest.raises(StudioError, match="at least"):
        realism(reals.subset(range(5)), reals)
    with pytest.raises(StudioError, match="square"):
        to_realism_size(np.zeros((64, 48, 3), np.uint8))


def test_frechet_distance_is_the_usual_formula(reals):
    from scipy import linalg

    a, b = reals.pooled[::2].astype(np.float64), reals.pooled[1::2].astype(np.float64)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mu = a.mean(0) - b.mean(0)
    usual = mu @ mu + np.trace(ca + cb) - 2 * np.trace(linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(usual, rel=1e-3)
