"""Canonical crops, the roll augmentation and the hash-keyed label cache, on real faces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.core.generator import training_data as td

pytestmark = pytest.mark.data


def test_canonical_crop_keeps_roll_and_frames_the_face(analyzer, utk_face):
    face = analyzer.analyze(utk_face).faces[0]
    frame = td.CropFrame.from_landmarks(face.landmarks)
    crop = td.crop(utk_face, frame)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    cropped = analyzer.analyze(crop).faces
    assert len(cropped) == 1
    a, b = face.attributes, cropped[0].attributes
    assert abs(a.roll - b.roll) < 3 and abs(a.yaw - b.yaw) < 6
    x0, _y0, x1, _y1 = cropped[0].box
    assert x0 >= 0 and x1 <= 64 and (x1 - x0) > 40  # the face fills the frame


def test_rotation_augmentation_adds_to_roll(analyzer, utk_face):
    face = analyzer.analyze(utk_face).faces[0]
    frame = td.CropFrame.from_landmarks(face.landmarks)
    base = analyzer.analyze(td.crop(utk_face, frame)).faces[0].attributes.roll
    turned = analyzer.analyze(td.crop(utk_face, frame, rotate_deg=15)).faces[0].attributes.roll
    assert turned - base == pytest.approx(15, abs=4)


def test_label_cache_is_keyed_by_hash(tmp_path, genki_test, monkeypatch):
    cache = tmp_path / "labels.jsonl"
    paths = [it.path for it in genki_test[:3]]
    first = td.label_images(paths, cache)
    assert len(cache.read_text().splitlines()) == 3
    assert {json.loads(line)["sha256"] for line in cache.read_text().splitlines()} == {
        td.file_sha256(p) for p in paths}

    def fail(*args, **kwargs):
        raise AssertionError("re-analysed a cached image")

    monkeypatch.setattr(td, "_analyse", fail)
    monkeypatch.setattr(td, "FaceAnalyzer", fail)
    again = td.label_images(paths, cache)
    assert again == first
    for rec in first.values():
        if rec["faces"]:
            assert 0 <= rec["joy"] <= 1 and rec["side"] > 20
