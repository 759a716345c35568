"""The second recognizer (MobileFaceNet, ArcFace loss; TFLite read without TensorFlow): its
agreement with the TFLite runtime on real faces, unit descriptors from the analyzer's
landmarks, people told apart on celeba-id's test identities, and the file's failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.analysis import recognizer as recognizer_module
from studio.core.analysis.images import load_image
from studio.core.analysis.recognizer import (
    CALIBRATION_FILE,
    DESCRIPTOR_SIZE,
    MODEL_FILE,
    SecondRecognizer,
    aligned_chip,
    calibration,
    same_person_threshold,
    similarity,
)
from studio.core.analysis.tflite_format import parse_tflite, read_tflite
from studio.core.assets import ThirdPartyFile, manifest
from studio.core.datasets import celeba_id, celeba_split, data_root
from studio.core.errors import ModelFileError


@pytest.fixture(scope="module")
def recognizer(fetched) -> SecondRecognizer:
    fetched(MODEL_FILE)
    return SecondRecognizer()


@pytest.mark.data
def test_port_matches_stored_tflite_outputs_on_real_faces(recognizer, reference_outputs,
                                                          port_tolerance):
    ref = reference_outputs("recognizer")["faces"]
    chips = np.stack([aligned_chip(load_image(data_root() / f["path"]).rgb,
                                   np.array(f["points"], np.float32)) for f in ref])
    got = recognizer.descriptors_of_chips(chips)
    expected = np.array([f["descriptor"] for f in ref])
    assert got.shape == (len(ref), DESCRIPTOR_SIZE) and got.dtype == np.float32
    assert np.abs(got - expected).max() < port_tolerance


@pytest.mark.data
def test_descriptors_are_unit_vectors_from_the_analyzers_landmarks(recognizer, analyzer,
                                                                  utk_face):
    faces = analyzer.analyze(utk_face).faces
    desc = recognizer.descriptors(utk_face, [f.landmarks for f in faces])
    assert desc.shape == (1, DESCRIPTOR_SIZE) and desc.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-5)
    assert similarity(desc[0], desc[0]) == pytest.approx(1.0, abs=1e-5)
    assert recognizer.descriptors(utk_face, []).shape == (0, DESCRIPTOR_SIZE)


@pytest.mark.data
def test_the_same_persons_photos_are_closer_than_other_peoples(recognizer, analyzer):
    """celeba-id's test identities only: the half no studio model trained on."""
    by_id: dict[int, list] = {}
    for it in celeba_split(celeba_id(), "test"):
        by_id.setdefault(it.identity, []).append(it.path)
    people = [paths[:2] for _, paths in sorted(by_id.items()) if len(paths) >= 2][:8]
    desc = []
    for paths in people:
        pair = []
        for path in paths:
            rgb = load_image(path).rgb
            pair.append(recognizer.descriptors(rgb, [analyzer.analyze(rgb).faces[0].landmarks])[0])
        desc.append(pair)
    firsts = np.array([d[0] for d in desc])
    genuine = np.array([similarity(a, b) for a, b in desc])
    cross = similarity(firsts, firsts)[~np.eye(len(firsts), dtype=bool)]
    assert genuine.mean() - cross.mean() > 0.3
    # each person's second photo finds the first photo of that person among all of them
    seconds = np.array([d[1] for d in desc])
    found = similarity(seconds, firsts).argmax(axis=1) == np.arange(len(desc))
    assert found.mean() >= 0.75
    assert (cross < same_person_threshold()).mean() >= 0.9  # measured: 0.96


def test_the_fused_prelu_equals_the_five_operators_tflite_spells_it_with(monkeypatch, fetched,
                                                                        port_tolerance):
    graph = read_tflite(fetched(MODEL_FILE))
    fused = recognizer_module.TfliteNet(graph).eval()
    monkeypatch.setattr(recognizer_module, "_is_prelu", lambda ops, i: False)
    spelled = recognizer_module.TfliteNet(graph).eval()
    assert len(spelled.steps) == len(graph.operators) > len(fused.steps)
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, (2, 3, 112, 112))
                         .astype(np.float32))
    with torch.inference_mode():
        assert (fused(x) - spelled(x)).abs().max() < port_tolerance


def test_missing_file_names_the_file_and_make_models(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    with pytest.raises(ModelFileError) as err:
        SecondRecognizer()
    message = str(err.value)
    assert MODEL_FILE in message and "make models" in message and "npm" in message


def test_corrupt_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    (tmp_path / MODEL_FILE).write_bytes(b"not the model")
    with pytest.raises(ModelFileError, match=r"corrupted.*make models"):
        SecondRecognizer()


def test_a_file_that_is_not_tflite_is_refused():
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        parse_tflite(b"\x00" * 64, "x.tflite")


def test_the_manifest_entry_comes_from_npm_and_unknown_registries_are_refused():
    entry = next(e for e in manifest() if e.name == MODEL_FILE)
    assert entry.registry == "npm" and entry.sha256 and "MIT" in entry.license
    with pytest.raises(ModelFileError, match="unknown registry"):
        ThirdPartyFile("x", "d", "1", "m", "0" * 64, registry="conda")


def test_the_calibration_belongs_to_this_file_and_says_where_it_was_measured():
    record = calibration()
    assert record["sha256"] == next(e.sha256 for e in manifest() if e.name == MODEL_FILE)
    assert 0.0 < same_person_threshold() < 1.0
    assert record["false_match_rate"] == 0.01
    assert "test" in record["data"]["split"], CALIBRATION_FILE
