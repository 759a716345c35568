"""Curation workspace, `studio batch` and `studio export`, on real faces."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.framing import original_crop
from studio.core.analysis.images import load_image
from studio.core.surrogates.making import png_bytes
from studio.core.workspace.batch import run_batch
from studio.core.workspace.export import ExportError, export_batch
from studio.core.workspace.store import Workspace, WorkspaceError

pytestmark = pytest.mark.data


@pytest.fixture
def photo_folder(tmp_path, genki_test, group_photo) -> Path:
    """Four real faces, a group photo of two, a corrupt file and a face-less image."""
    folder = tmp_path / "in"
    folder.mkdir()
    for item in genki_test[:4]:
        shutil.copy(item.path, folder / f"person_{item.path.stem}.jpg")
    Image.fromarray(group_photo).save(folder / "group.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (240, 240), (150, 160, 170)).save(folder / "wall.png")
    return folder


def test_batch_records_every_face_and_resumes(engine, photo_folder, tmp_path):
    path = tmp_path / "w.studio"
    seen = []
    with Workspace(path, create=True) as ws:
        report = run_batch(photo_folder, ws, engine, candidates=2,
                           progress=lambda *call: seen.append(call))
        assert report.unreadable == 1 and report.no_face == 1
        # One report before the first photo and one after each of the seven.
        assert [(d, t) for d, t, _ in seen] == [(i, 7) for i in range(8)]
        assert seen[-1][2] == (f"photos: {report.faces} faces, "
                               f"{report.faces_per_second:.1f} faces/s")
        faces = ws.faces()
        assert report.faces == len(faces) >= 5  # the group photo gives two items
        assert sum(f.original_path.endswith("group.png") for f in faces) == 2
        cands = ws.candidates()
        assert len(cands) == 4 * len(faces)  # 2 GAN + 2 3D each
        assert {c.method for c in cands} == {"gan", "3d"}
        for c in cands:
            assert c.decision == "pending" and c.labels == ws.face(c.face_id).attributes
            png = Image.open(__import__("io").BytesIO(ws.image(c.id)))
            assert png.size == ((64, 64) if c.method == "gan" else (256, 256))
        statuses = dict(ws.db.execute("SELECT path, status FROM originals").fetchall())
        assert statuses[str(photo_folder / "broken.jpg")] == "unreadable"
        assert statuses[str(photo_folder / "wall.png")] == "no_face"
        # A second run skips everything already recorded.
        again = run_batch(photo_folder, ws, engine, candidates=2)
        assert again.skipped_done == 7 and again.faces == 0 and len(ws.candidates()) == len(cands)
    # The originals were only read.
    assert (photo_folder / "broken.jpg").read_bytes() == b"\xff\xd8 not really a jpeg"


def test_killed_batch_resumes_without_losing_or_duplicating(photo_folder, tmp_path):
    path = tmp_path / "k.studio"
    cmd = [sys.executable, "-m", "studio", "batch", str(photo_folder), "--workspace", str(path),
           "--candidates", "1", "--methods", "gan", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        done = 0
        while time.time() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    with sqlite3.connect(str(path), timeout=5) as db:
                        done = db.execute("SELECT COUNT(*) FROM originals").fetchone()[0]
                except sqlite3.Error:
                    done = 0
            if done >= 2:
                break
            time.sleep(0.05)
        assert done >= 2, "the batch never committed an original"
        proc.kill()  # mid-run, as a crash would
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Workspace(path) as ws:
        before = len(ws.db.execute("SELECT id FROM originals").fetchall())
        assert before >= 2
        for face in ws.faces():  # every committed face has its candidate: nothing half-done
            assert len(ws.candidates(face.id)) == 1
    # Exit 1, as the README says: the folder holds a broken photo and one without a face.
    assert subprocess.run(cmd, timeout=300, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 1
    with Workspace(path) as ws:
        summary = ws.summary()
        assert sum(v for k, v in summary.items() if k.startswith("originals_")) == 7
        assert summary["faces"] >= 5 and summary["candidates_pending"] == summary["faces"]


def test_decisions_and_undo(tmp_path, engine, genki_test):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(genki_test[0].path, folder / "a.jpg")
    with Workspace(tmp_path / "d.studio", create=True) as ws:
        run_batch(folder, ws, engine, candidates=1, methods=("gan",))
        (c,) = ws.candidates()
        ws.decide(c.id, "accepted", note="looks fine")
        ws.decide(c.id, "rejected")
        assert ws.candidates()[0].decision == "rejected"
        assert ws.undo() == c.id and ws.candidates()[0].decision == "accepted"
        assert ws.undo() == c.id and ws.candidates()[0].decision == "pending"
        assert ws.undo() is None
        assert ws.candidates()[0].note == "looks fine"
        with pytest.raises(WorkspaceError):
            ws.decide(c.id, "maybe")


def test_not_a_workspace_gives_a_clear_error(tmp_path):
    bad = tmp_path / "notes.studio"
    bad.write_text("just text, not sqlite " * 100)
    with pytest.raises(WorkspaceError, match="not a studio workspace"):
        Workspace(bad)


def _accepted_workspace(tmp_path, engine, genki_test) -> Workspace:
    folder = tmp_path / "src"
    folder.mkdir()
    for item in genki_test[:3]:
        shutil.copy(item.path, folder / f"secret_name_{item.path.stem}.jpg")
    ws = Workspace(tmp_path / "e.studio", create=True)
    run_batch(folder, ws, engine, candidates=1)
    for c in ws.candidates():
        ws.decide(c.id, "accepted")
    return ws


def test_export_has_no_original_data_and_a_private_mapping(tmp_path, engine, genki_test,
                                                           analyzer):
    ws = _accepted_workspace(tmp_path, engine, genki_test)
    truth = {f.key: True for f in ws.faces()}
    out = tmp_path / "batch1"
    report = export_batch(ws, out, analyzer, base_url="https://data.example.org/b1",
                          truth=truth, gold=2, repeats=2, seed=3)
    n = len(ws.candidates())
    assert report.items == n - len(report.refused) and report.gold == 2 and report.repeats == 2
    images = sorted((out / "images").iterdir())
    assert len(images) == report.items + 4
    for png in images:
        assert len(png.stem) == 12 and all(ch in "0123456789abcdef" for ch in png.stem)
        with Image.open(png) as img:
            assert img.format == "PNG" and img.size == (256, 256)
            assert not img.getexif() and not {k for k in img.info if k not in ("dpi",)}
    text = "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file()
                   and p.suffix != ".png")
    assert "secret_name" not in text and str(tmp_path / "src") not in text
    assert not any(b"secret_name" in p.read_bytes() for p in images)
    with (out / "mturk.csv").open() as fh:
        urls = [r["image_url"] for r in csv.DictReader(fh)]
    assert all(u.startswith("https://data.example.org/b1/images/") for u in urls)
    tasks = json.loads((out / "labelstudio_tasks.json").read_text())
    assert len(tasks) == len(urls) and "Smile" in (out / "labelstudio_config.xml").read_text()
    mapping = report.mapping
    assert mapping.is_file() and out not in mapping.parents
    with mapping.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["item_id"] for r in rows} == {p.stem for p in images}
    assert sum(r["kind"] == "gold" for r in rows) == 2
    assert all("secret_name" in r["original_path"] for r in rows)
    # Never overwrite.
    with pytest.raises(ExportError, match="already exists"):
        export_batch(ws, out, analyzer, base_url="https://x")
    ws.close()


def test_identity_gate_refuses_the_original_itself(tmp_path, engine, genki_test, analyzer):
    ws = _accepted_workspace(tmp_path, engine, genki_test)
    face = ws.faces()[0]
    rgb = load_image(face.original_path).rgb
    fake = original_crop(rgb, face.landmarks, size=256)  # the "surrogate" is the person
    with ws.transaction() as db:
        cid = ws.add_candidate(db, face.id, "gan", 999, face.attributes,
                               {"distance": 0.9}, png_bytes(fake))  # metrics that lie
    ws.decide(cid, "accepted")
    out = tmp_path / "gated"
    report = export_batch(ws, out, analyzer, formats=("labelstudio",), seed=1)
    assert any(f"candidate {cid} " in r and "same person" in r for r in report.refused)
    with report.mapping.open() as fh:
        assert str(cid) not in {r["candidate_id"] for r in csv.DictReader(fh)}
    ws.close()


def test_failed_export_leaves_nothing_behind(tmp_path, engine, genki_test, analyzer,
                                             monkeypatch):
    ws = _accepted_workspace(tmp_path, engine, genki_test)
    import studio.core.workspace.export as export_module

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "label_studio_config", boom)
    out = tmp_path / "fails"
    with pytest.raises(ExportError, match=r"could not write the export .disk full"):
        export_batch(ws, out, analyzer, formats=("labelstudio",))
    assert not out.exists() and not list(tmp_path.glob(".fails*"))
    assert not list(tmp_path.glob("fails*mapping*"))
    ws.close()


def test_png_bytes_carry_nothing_but_pixels():
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    img = Image.open(__import__("io").BytesIO(png_bytes(rgb, 256)))
    assert img.size == (256, 256) and not img.info.get("exif") and not img.text
