"""The export's identity gate answers to both recognizers, as the read-back does (issue 28):
a candidate the second recognizer still matches to its original is refused even where dlib
lets it through, an original photo that cannot be read again refuses its candidates, and a
missing recognizer file stops the gate. Real held-out faces (GENKI-4K's test split)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.core.analysis import recognizer
from studio.core.analysis.recognizer import MODEL_FILE
from studio.core.errors import ModelFileError
from studio.core.workspace.export import IdentityGate, export_batch
from studio.core.workspace.store import Workspace

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def gan_workspace(batched) -> Path:
    """Two real faces with one GAN candidate each (read back by both), all accepted."""
    path, _ = batched("gate", 2, 1, ("gan",))
    with Workspace(path) as ws:
        for c in ws.candidates():
            ws.decide(c.id, "accepted")
    return path


def _images(ws: Workspace):
    from io import BytesIO

    import numpy as np
    from PIL import Image

    faces = {f.id: f for f in ws.faces()}
    return [(faces[c.face_id], np.asarray(Image.open(BytesIO(ws.image(c.id))).convert("RGB")))
            for c in ws.candidates()]


def test_the_gate_reads_both_figures_and_passes_what_both_call_another(gan_workspace, engine):
    with Workspace(gan_workspace) as ws:
        gate = IdentityGate(engine.analyzer, ws)
        checked = _images(ws)
        assert len(checked) == 2
        for face, _rgb in checked:
            original = gate.original(face)  # read from its photo: the store keeps dlib's
            assert original.descriptor2 is not None and original.descriptor is not None
            assert gate.original(face) is original  # once per face
        # the GAN draws answered to both; the gate measures the stored PNG anew
        assert any(gate.check(face, rgb) is None for face, rgb in checked)


def test_a_face_the_second_recognizer_matches_is_refused(gan_workspace, engine, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(recognizer, "same_person_threshold", lambda: -2.0)  # always "same"
    with Workspace(gan_workspace) as ws:
        gate = IdentityGate(engine.analyzer, ws)
        for face, rgb in _images(ws):
            why = gate.check(face, rgb)
            assert why is not None and "second recognizer" in why and "same person" in why
            assert "(dlib)" not in why  # dlib alone would have let it through
        out = tmp_path / "batch"
        with pytest.raises(Exception, match="no accepted candidate passed the identity gate"):
            export_batch(ws, out, engine.analyzer, formats=("labelstudio",), seed=1)
    assert not out.exists()


def test_an_original_that_cannot_be_read_again_refuses_its_candidates(gan_workspace, engine,
                                                                      tmp_path):
    copy = tmp_path / "moved.studio"
    shutil.copy(gan_workspace, copy)
    photos = gan_workspace.parent / "photos"
    hidden = gan_workspace.parent / "photos-away"
    photos.rename(hidden)
    try:
        with Workspace(copy) as ws:
            gate = IdentityGate(engine.analyzer, ws)
            for face, rgb in _images(ws):
                assert "studio relink" in gate.check(face, rgb)
    finally:
        hidden.rename(photos)


def test_a_missing_recognizer_file_stops_the_gate(analyzer, tmp_path, monkeypatch,
                                                  gan_workspace):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    monkeypatch.setattr(analyzer, "second", None)  # as a fresh analyzer has it
    with Workspace(gan_workspace) as ws, pytest.raises(ModelFileError) as err:
        export_batch(ws, tmp_path / "batch", analyzer, formats=("labelstudio",))
    assert MODEL_FILE in str(err.value) and "make models" in str(err.value)
    assert not (tmp_path / "batch").exists()
