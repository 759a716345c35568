"""The export's identity gate answers to both recognizers, as the read-back does (issue 28):
a candidate the second recognizer still matches to its original is refused even where dlib
lets it through; the batch stores both descriptors, so a workspace whose originals moved
still exports, while an older workspace (migrated, dlib's only) reads its originals and
refuses the candidates of one that cannot be read; a missing recognizer file stops the
gate. Real held-out faces (GENKI-4K's test split)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.core.analysis import recognizer
from studio.core.analysis.images import load_image
from studio.core.analysis.recognizer import MODEL_FILE
from studio.core.errors import ModelFileError
from studio.core.workspace.export import IdentityGate, export_batch
from studio.core.workspace.store import SCHEMA_VERSION, Workspace

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
            original = gate.original(face)  # the batch stored both descriptors
            assert original.descriptor2 is not None and original.descriptor is not None
            assert np.array_equal(original.descriptor2, face.descriptor2)
            # ... the very one the second recognizer reads from the photo now
            (fresh,) = engine.analyzer.describe2(
                load_image(Path(face.original_path)).rgb,
                [replace(original, descriptor2=None)])
            assert np.allclose(fresh.descriptor2, face.descriptor2, atol=1e-5)
        assert gate.photos_read == 0
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


def _schema_2(workspace: Path, to: Path) -> Path:
    """A copy of ``workspace`` as a studio before schema 3 wrote it: no second descriptor."""
    shutil.copy(workspace, to)
    db = sqlite3.connect(to)
    db.execute("ALTER TABLE faces DROP COLUMN descriptor2")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    return to


@pytest.fixture
def photos_moved(gan_workspace):
    """The batched photos moved away for the test, then put back."""
    photos = gan_workspace.parent / "photos"
    hidden = gan_workspace.parent / "photos-away"
    photos.rename(hidden)
    yield
    hidden.rename(photos)


def test_originals_moved_away_still_pass_the_gate_on_the_stored_descriptor(
        gan_workspace, engine, tmp_path, photos_moved):
    copy = tmp_path / "moved.studio"
    shutil.copy(gan_workspace, copy)
    with Workspace(copy) as ws:
        gate = IdentityGate(engine.analyzer, ws)
        verdicts = [gate.check(face, rgb) for face, rgb in _images(ws)]
        assert gate.photos_read == 0 and None in verdicts, verdicts
        report = export_batch(ws, tmp_path / "batch", engine.analyzer,
                              formats=("labelstudio",), seed=1)
    assert report.items == verdicts.count(None) >= 1
    assert len(list((tmp_path / "batch" / "images").iterdir())) == report.items


def test_a_migrated_old_workspace_reads_its_originals_as_before(gan_workspace, engine,
                                                                tmp_path):
    old = _schema_2(gan_workspace, tmp_path / "old.studio")
    with Workspace(old) as ws:
        assert ws.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        faces = ws.faces()
        assert faces and all(f.descriptor2 is None for f in faces)
        gate = IdentityGate(engine.analyzer, ws)
        checked = _images(ws)
        verdicts = [gate.check(face, rgb) for face, rgb in checked]
        assert gate.photos_read == len(faces)  # once per face, from its photo
        with Workspace(gan_workspace) as new:  # the same verdicts as the stored descriptors
            fresh = IdentityGate(engine.analyzer, new)
            assert verdicts == [fresh.check(face, rgb) for face, rgb in _images(new)]


def test_a_migrated_old_workspace_whose_originals_moved_refuses_them(
        gan_workspace, engine, tmp_path, photos_moved):
    old = _schema_2(gan_workspace, tmp_path / "old.studio")
    with Workspace(old) as ws:
        gate = IdentityGate(engine.analyzer, ws)
        for face, rgb in _images(ws):
            why = gate.check(face, rgb)
            assert "made before the studio stored the second recognizer" in why
            assert "studio relink" in why


def test_a_missing_recognizer_file_stops_the_gate(analyzer, tmp_path, monkeypatch,
                                                  gan_workspace):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    monkeypatch.setattr(analyzer, "second", None)  # as a fresh analyzer has it
    with Workspace(gan_workspace) as ws, pytest.raises(ModelFileError) as err:
        export_batch(ws, tmp_path / "batch", analyzer, formats=("labelstudio",))
    assert MODEL_FILE in str(err.value) and "make models" in str(err.value)
    assert not (tmp_path / "batch").exists()
