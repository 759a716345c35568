"""The workspace, ``studio batch`` and ``studio export`` against bad places and bad files:
one clear message, the right exit code, nothing lost and nothing left behind. Real faces
(GENKI-4K photos copied to tmp dirs) wherever a face matters."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.workspace.batch import run_batch
from studio.core.workspace.export import ExportError, IdentityGate, export_batch
from studio.core.workspace.paths import missing_originals
from studio.core.workspace.store import Workspace, WorkspaceError

pytestmark = pytest.mark.data


def studio(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def faces_folder(root: Path, genki_test, n: int, name: str = "in") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for item in genki_test[:n]:
        shutil.copy(item.path, folder / f"person_{item.path.stem}.jpg")
    return folder


@pytest.fixture(scope="module")
def accepted(tmp_path_factory, engine, genki_test) -> Path:
    """A workspace of three real faces, one GAN and one 3D candidate each, all accepted."""
    root = tmp_path_factory.mktemp("accepted")
    path = root / "accepted.studio"
    with Workspace(path, create=True) as ws:
        run_batch(faces_folder(root, genki_test, 3), ws, engine, candidates=1)
        for c in ws.candidates():
            ws.decide(c.id, "accepted")
    return path


@pytest.fixture
def workspace_copy(accepted, tmp_path) -> Path:
    path = tmp_path / "copy.studio"
    shutil.copy(accepted, path)
    return path


def damage(path: Path) -> None:
    """Random bytes over three pages in the middle of the file, as a bad disk would."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(np.random.default_rng(0).bytes(3 * 4096))


# -- 1. export to a place it cannot write -----------------------------------------------

def test_export_refuses_an_unwritable_place_before_the_identity_gate(workspace_copy, tmp_path,
                                                                      analyzer, monkeypatch):
    def gate_ran(*args, **kwargs):
        raise AssertionError("the identity gate ran before the places were checked")

    monkeypatch.setattr(IdentityGate, "check", gate_ran)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    places = [("/proc/studio-export", None), (tmp_path / "ok", "/sys/studio-mapping.csv"),
              (a_file / "out", None), (tmp_path / "ok", a_file / "m.csv")]
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        places += [(ro / "out", None), (tmp_path / "ok", ro / "m.csv")]
    with Workspace(workspace_copy) as ws:
        for out, mapping in places:
            with pytest.raises(ExportError, match=r"cannot write the (export folder|private "
                                                  r"mapping)"):
                export_batch(ws, out, analyzer, formats=("labelstudio",), mapping=mapping)
    assert not (tmp_path / "ok").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.studio", "notes.txt"] + (
        ["ro"] if os.geteuid() != 0 else [])


def test_export_cli_unwritable_place_one_message_exit_2(workspace_copy, tmp_path, monkeypatch,
                                                         capsys):
    from studio.cli import main
    from studio.core.analysis import analyzer as analyzer_module

    def slow_models(*args, **kwargs):
        raise AssertionError("the analyser was loaded before the places were checked")

    monkeypatch.setattr(analyzer_module, "FaceAnalyzer", slow_models)
    for extra in (["/proc/foo"], [str(tmp_path / "b"), "--mapping", "/sys/m.csv"]):
        assert main(["export", str(workspace_copy), *extra, "--format", "labelstudio"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: cannot write"), err
    proc = studio("export", str(workspace_copy), "/proc/foo", "--format", "labelstudio")
    assert proc.returncode == 2 and len(errors(proc)) == 1 and "/proc" in errors(proc)[0]


# -- 2. a damaged workspace -------------------------------------------------------------

def test_damaged_workspace_is_refused_at_open_with_the_recovery(workspace_copy, tmp_path,
                                                                genki_test):
    with Workspace(workspace_copy) as ws:
        faces = len(ws.faces())
    damage(workspace_copy)
    before = workspace_copy.read_bytes()
    with pytest.raises(WorkspaceError, match=r"(?s)is damaged .*\.recover") as caught:
        Workspace(workspace_copy)
    folder = faces_folder(tmp_path, genki_test, 2, "more")
    # batch stops at once, before any photo, with the same message; the file is untouched
    proc = studio("batch", str(folder), "--workspace", str(workspace_copy), "--methods", "gan")
    assert proc.returncode == 2 and "is damaged" in errors(proc)[0], proc.stderr
    assert len(errors(proc)) == 1 and ".recover" in proc.stderr and "photos" not in proc.stdout
    proc = studio("export", str(workspace_copy), str(tmp_path / "out"), "--format",
                  "labelstudio")
    assert proc.returncode == 2 and "is damaged" in errors(proc)[0] and ".dump" in proc.stderr
    assert workspace_copy.read_bytes() == before and not (tmp_path / "out").exists()
    # The recovery the message gives works, and the recovered workspace opens.
    if shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 shell to try the recovery with")
    fixed = tmp_path / "copy-recovered.studio"
    commands = [line.strip() for line in str(caught.value).splitlines()
                if line.startswith("  sqlite3 ")]
    assert len(commands) == 2
    for command in commands:  # .recover, or .dump where the shell lacks .recover
        fixed.unlink(missing_ok=True)
        subprocess.run(command, shell=True, timeout=120, capture_output=True)
        try:
            ws = Workspace(fixed)
        except WorkspaceError:
            continue
        with ws:
            assert 0 < len(ws.faces()) <= faces
            assert ws.candidates()
        break
    else:
        pytest.fail(f"neither recovery worked: {commands}")


def test_rows_salvaged_from_damaged_pages_are_set_aside_not_fatal(workspace_copy, analyzer,
                                                                  tmp_path):
    """`sqlite3 .recover` can bring back rows whose text is not UTF-8 or not JSON: the
    workspace still opens and lists its sound candidates, and says how many it left out."""
    with Workspace(workspace_copy) as ws:
        first, second, *rest = ws.candidates()
        assert ws.set_aside() == 0
        with ws.transaction() as db:
            db.execute("UPDATE candidates SET decision=CAST(x'ff33c0af' AS TEXT) WHERE id=?",
                       (first.id,))
            db.execute("UPDATE candidates SET labels='{\"joy\": 0.' WHERE id=?", (second.id,))
    with Workspace(workspace_copy) as ws:
        left = ws.candidates()
        assert [c.id for c in left] == [c.id for c in rest] and ws.set_aside() == 2
        assert ws.faces() and ws.candidates(decision="pending") == [
            c for c in left if c.decision == "pending"]
        summary = ws.summary()  # what `studio batch` prints
        assert summary["candidates_set_aside"] == 2
        assert sum(n for k, n in summary.items() if k.startswith("candidates_")
                   and k != "candidates_set_aside") == len(left)
        ws.decide(left[0].id, "accepted")
        accepted = len(ws.candidates(decision="accepted"))
        report = export_batch(ws, tmp_path / "out", analyzer, formats=("labelstudio",))
        assert report.set_aside == 2 and report.items + len(report.refused) == accepted


def test_a_damaged_stored_image_is_refused_by_name(workspace_copy, tmp_path, analyzer):
    with Workspace(workspace_copy) as ws:
        cid = ws.candidates()[0].id
        png = bytearray(ws.image(cid))
        png[len(png) // 2:len(png) // 2 + 64] = bytes(64)  # inside the image data
        with ws.transaction() as db:
            db.execute("UPDATE candidates SET image=? WHERE id=?", (bytes(png), cid))
        report = export_batch(ws, tmp_path / "out", analyzer, formats=("labelstudio",))
        assert report.items == len(ws.candidates()) - len(report.refused) > 0
    assert any(f"candidate {cid} " in r and "damaged" in r for r in report.refused)


# -- 3. batch's exit code is the README's ----------------------------------------------

def test_batch_exit_code_is_the_readmes(tmp_path, genki_test):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "1 some input had no face or could not\nbe read" in readme
    good = faces_folder(tmp_path, genki_test, 2, "good")
    proc = studio("batch", str(good), "--workspace", str(tmp_path / "g.studio"),
                  "--methods", "gan", "--candidates", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    bad = faces_folder(tmp_path, genki_test, 1, "bad")
    (bad / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (240, 240), (150, 160, 170)).save(bad / "wall.png")
    args = ("batch", str(bad), "--workspace", str(tmp_path / "b.studio"), "--methods", "gan",
            "--candidates", "1", "--quiet")
    for _ in range(2):  # and again when resumed, since the folder has not changed
        proc = studio(*args)
        assert proc.returncode == 1, proc.stderr
        assert "broken.jpg" in proc.stderr and "wall.png: no face found" in proc.stderr
        assert "1 unreadable, 1 without a face" in proc.stdout


def test_batch_sets_aside_what_is_not_a_file_and_says_what_it_read(tmp_path, engine,
                                                                   genki_test):
    folder = faces_folder(tmp_path, genki_test, 1)
    os.mkfifo(folder / "pipe.jpg")  # named like a photo, would block a reader forever
    face = Image.open(genki_test[1].path)
    face.save(folder / "moving.gif", save_all=True, append_images=[face.rotate(4)])
    with Workspace(tmp_path / "w.studio", create=True) as ws:
        report = run_batch(folder, ws, engine, candidates=1, methods=("gan",))
        statuses = dict(ws.db.execute("SELECT path, status FROM originals").fetchall())
    assert report.unreadable == 1 and report.faces == 2, report.problems
    assert any("pipe.jpg: set aside" in p and "FIFO" in p for p in report.problems)
    assert any("moving.gif" in p and "2 frames" in p for p in report.problems)
    assert statuses[str(folder / "moving.gif")] == "ok" and len(statuses) == 2


# -- 4. identical files -------------------------------------------------------------------

def test_identical_files_are_one_original_with_every_path(tmp_path, engine, genki_test):
    folder = faces_folder(tmp_path, genki_test, 2)
    first = sorted(folder.iterdir())[0]
    (folder / "sub").mkdir()
    copies = [folder / "a_copy.jpg", folder / "sub" / "z_copy.jpg"]
    for copy in copies:
        shutil.copy(first, copy)
    with Workspace(tmp_path / "d.studio", create=True) as ws:
        report = run_batch(folder, ws, engine, candidates=1, methods=("gan",), workers=2)
        assert report.originals == 4 and report.faces == 2 and report.candidates == 2
        assert len(report.duplicates) == 2
        # the first in the folder's order is the original, the others are its copies
        assert {c for c, _ in report.duplicates} == {str(folder / "sub" / "z_copy.jpg"),
                                                     str(first)}
        (oid,) = ws.db.execute("SELECT original_id FROM original_paths WHERE path=?",
                               (str(first),)).fetchone()
        assert ws.paths_of(oid)[0] == str(copies[0])  # the first in the folder's order
        assert sorted(ws.paths_of(oid)) == sorted(map(str, [first, *copies]))
        assert ws.summary()["faces"] == 2
        # A second run skips both originals and reports the same copies, adding no path.
        again = run_batch(folder, ws, engine, candidates=1, methods=("gan",))
        assert again.skipped_done == 2 and again.duplicates == report.duplicates
        assert again.faces == 0 and len(ws.candidates()) == 2
        assert len(ws.db.execute("SELECT * FROM original_paths").fetchall()) == 4


def test_old_workspace_gains_paths_and_absolute_ones(tmp_path, engine, genki_test,
                                                     monkeypatch):
    folder = faces_folder(tmp_path, genki_test, 1)
    path = tmp_path / "old.studio"
    with Workspace(path, create=True) as ws:
        run_batch(folder, ws, engine, candidates=1, methods=("gan",))
    photo = next(folder.iterdir())
    with sqlite3.connect(path) as db:  # as a workspace of the previous studio looked
        db.execute("DROP TABLE original_paths")
        db.execute("UPDATE originals SET path=?", (f"in/{photo.name}",))
        db.execute("PRAGMA user_version=0")
    monkeypatch.chdir(tmp_path)
    with Workspace("old.studio") as ws:
        (face,) = ws.faces()
        assert face.original_path == str(photo) and ws.paths_of(face.original_id) == [str(photo)]
        assert ws.db.execute("PRAGMA user_version").fetchone()[0] == 3  # and on to schema 3


# -- 5. absolute paths and relinking a moved folder ----------------------------------------

def test_relative_folder_is_stored_absolute_and_relinks_after_a_move(tmp_path, engine,
                                                                     genki_test, monkeypatch):
    faces_folder(tmp_path, genki_test, 3)
    monkeypatch.chdir(tmp_path)
    with Workspace("w.studio", create=True) as ws:
        run_batch("in", ws, engine, candidates=1, methods=("gan",))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ws = Workspace(tmp_path / "w.studio")
    faces = ws.faces()
    assert all(Path(f.original_path).is_absolute() for f in faces)
    assert all(ws.locate(f.original_id) == Path(f.original_path) for f in faces)
    (tmp_path / "in").rename(tmp_path / "moved")
    assert len(missing_originals(ws)) == 3
    names = sorted(Path(f.original_path).name for f in faces)
    (tmp_path / "moved" / names[0]).write_bytes(b"another photo under the same name")
    (tmp_path / "moved" / names[1]).unlink()
    report = ws.relink(tmp_path / "in", tmp_path / "moved")
    assert report.relinked == 1
    assert [Path(p).name for p in report.different] == [names[0]]
    assert [Path(p).name for p in report.missing] == [names[1]]
    assert len(missing_originals(ws)) == 2  # the other two stay where they were
    moved = next(f for f in ws.faces() if Path(f.original_path).name == names[2])
    assert moved.original_path == str(tmp_path / "moved" / names[2])
    ws.close()
    with pytest.raises(WorkspaceError, match=r"no original .* recorded under"):
        Workspace(tmp_path / "w.studio").relink(tmp_path / "nowhere", tmp_path / "moved")
    proc = studio("relink", str(tmp_path / "w.studio"), str(tmp_path / "in"),
                  str(tmp_path / "moved"))
    assert proc.returncode == 1 and names[0] in proc.stderr and names[1] in proc.stderr
    proc = studio("relink", str(tmp_path / "w.studio"), "/nowhere", str(tmp_path / "moved"))
    assert proc.returncode == 2 and len(errors(proc)) == 1


def test_batch_of_a_moved_folder_follows_it(tmp_path, engine, genki_test):
    folder = faces_folder(tmp_path, genki_test, 2)
    with Workspace(tmp_path / "f.studio", create=True) as ws:
        run_batch(folder, ws, engine, candidates=1, methods=("gan",))
        folder.rename(tmp_path / "moved")
        report = run_batch(tmp_path / "moved", ws, engine, candidates=1, methods=("gan",))
        assert report.skipped_done == 2 and not report.duplicates and not missing_originals(ws)
        assert all(f.original_path.startswith(str(tmp_path / "moved")) for f in ws.faces())


# -- 6. a workspace that does not exist ---------------------------------------------------

def test_no_workspace_is_made_by_mistake(tmp_path, genki_test):
    typo = tmp_path / "typo.studio"
    with pytest.raises(WorkspaceError, match="there is no workspace"):
        Workspace(typo)
    proc = studio("export", str(typo), str(tmp_path / "out"), "--format", "labelstudio")
    assert proc.returncode == 2 and "there is no workspace" in errors(proc)[0]
    proc = studio("relink", str(typo), "a", str(tmp_path))
    assert proc.returncode == 2
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        proc = studio("batch", str(folder), "--workspace", str(typo), "--methods", "gan")
        assert proc.returncode == 2 and len(errors(proc)) == 1
    assert not list(tmp_path.glob("typo.studio*"))
    # Another program's SQLite file is refused and left as it was.
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = other.read_bytes()
    for create in (False, True):
        with pytest.raises(WorkspaceError, match="not a studio workspace"):
            Workspace(other, create=create)
    assert other.read_bytes() == before
    # batch makes the workspace only when there is work
    folder = faces_folder(tmp_path, genki_test, 1, "one")
    proc = studio("batch", str(folder), "--workspace", str(typo), "--methods", "gan",
                  "--candidates", "1", "--quiet")
    assert proc.returncode == 0 and typo.is_file()


# -- 7. the private mapping is private from the start -------------------------------------

def test_private_mapping_is_owner_only_from_the_start(workspace_copy, tmp_path, analyzer,
                                                       monkeypatch):
    import studio.core.workspace.export as export_module

    modes = []
    real_writer = export_module.dict_writer

    def watching(fh, *args, **kwargs):  # the mapping's writer, before its first row
        (partial,) = tmp_path.glob(".out.private-mapping.csv.partial-*")
        modes.append(stat.S_IMODE(partial.stat().st_mode))
        return real_writer(fh, *args, **kwargs)

    monkeypatch.setattr(export_module, "dict_writer", watching)
    old = os.umask(0o022)
    try:
        with Workspace(workspace_copy) as ws:
            report = export_batch(ws, tmp_path / "out", analyzer, formats=("labelstudio",))
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert stat.S_IMODE(report.mapping.stat().st_mode) == 0o600


# -- 8. repeats and gold items are not byte copies ----------------------------------------

def test_repeats_differ_in_bytes_but_not_in_what_they_show(workspace_copy, tmp_path,
                                                           analyzer):
    from studio.core.analysis.identity import identity_distance
    from studio.core.analysis.landmarks import largest_face

    with Workspace(workspace_copy) as ws:
        truth = {f.key: True for f in ws.faces()}
        report = export_batch(ws, tmp_path / "out", analyzer, formats=("labelstudio",),
                              truth=truth, gold=2, repeats=4, seed=5)
    with report.mapping.open() as fh:
        rows = list(csv.DictReader(fh))
    files = {r["item_id"]: (tmp_path / "out" / "images" / f"{r['item_id']}.png").read_bytes()
             for r in rows}
    assert len({hashlib.sha256(b).digest() for b in files.values()}) == len(files)
    by_candidate: dict[str, list[bytes]] = {}
    for r in rows:
        by_candidate.setdefault(r["candidate_id"], []).append(files[r["item_id"]])
    shown_again = [v for v in by_candidate.values() if len(v) > 1]
    assert sum(len(v) - 1 for v in shown_again) == report.gold + report.repeats == 6
    for first, *others in shown_again:
        a = np.asarray(Image.open(io.BytesIO(first)).convert("RGB")).astype(int)
        seen_a = largest_face(analyzer.analyze(a.astype(np.uint8)).faces)
        for other in others:
            b = np.asarray(Image.open(io.BytesIO(other)).convert("RGB")).astype(int)
            assert 0 < np.count_nonzero(a != b) <= 8 and np.abs(a - b).max() == 1
            seen_b = largest_face(analyzer.analyze(b.astype(np.uint8)).faces)
            assert (seen_a is None) == (seen_b is None)
            if seen_a is not None:
                assert identity_distance(seen_a.descriptor, seen_b.descriptor) < 0.05
                assert abs(seen_a.attributes.joy - seen_b.attributes.joy) < 0.03
                assert abs(seen_a.attributes.yaw - seen_b.attributes.yaw) < 0.5


# -- 9. a photo that kills the analysing process ------------------------------------------

def test_batch_survives_a_photo_that_crashes_native_code(tmp_path, genki_test):
    """A panorama wider than 32767 px aborted the process inside MediaPipe's OpenCV (the
    analysis now shrinks such frames first; the guard is for the next bug of its kind)."""
    folder = faces_folder(tmp_path, genki_test, 2)
    Image.new("RGB", (33000, 40), (120, 130, 140)).save(folder / "panorama.png")
    path = tmp_path / "p.studio"
    proc = studio("batch", str(folder), "--workspace", str(path), "--methods", "gan",
                  "--candidates", "1", "--workers", "2", "--quiet")
    assert proc.returncode == 1 and "panorama.png" in proc.stderr, proc.stderr
    with Workspace(path) as ws:
        assert ws.summary()["faces"] == 2
        status, message = ws.db.execute("SELECT status, message FROM originals WHERE path=?",
                                        (str(folder / "panorama.png"),)).fetchone()
    if status == "unreadable":  # it crashed, twice: once with others, once alone
        assert "crashed" in message and "a new process took over" in proc.stderr
    else:
        assert status == "no_face"


def test_one_kill_from_outside_blames_no_photo(tmp_path, genki_test):
    import multiprocessing

    from studio.core.workspace.guard import guarded_batch

    folder = faces_folder(tmp_path, genki_test, 4)
    killed = []

    def progress(done, total, message):
        if done == 1 and not killed:  # the others are in flight
            (child,) = multiprocessing.active_children()
            os.kill(child.pid, 9)
            killed.append(child.pid)

    report = guarded_batch(folder, tmp_path / "k.studio", candidates=1, methods=("gan",),
                           workers=2, progress=progress)
    assert len(killed) == 1 and len(report.crashes) == 1 and "SIGKILL" in report.crashes[0]
    assert report.unreadable == 0 and report.faces == 4
    with Workspace(tmp_path / "k.studio") as ws:
        assert ws.summary() == {"originals_ok": 4, "faces": 4, "candidates_pending": 4}


# -- 9. a new workspace is private; decisions have one writer at a time ---------------------

def test_a_new_workspace_and_its_wal_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        with Workspace(tmp_path / "new.studio", create=True) as ws:
            with ws.transaction() as db:  # a write: the WAL and its index exist now
                db.execute("INSERT INTO bulk_ops (what, at) VALUES ('test', 0)")
            made = sorted(p.name for p in tmp_path.iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert made == ["new.studio", "new.studio-shm", "new.studio-wal"]
    assert modes == dict.fromkeys(made, 0o600)


def test_an_accept_waits_for_another_and_undo_takes_back_only_its_own(workspace_copy):
    import time

    with Workspace(workspace_copy) as ws:
        with ws.transaction() as db:
            db.execute("DELETE FROM history")
            db.execute("UPDATE candidates SET decision='pending'")
        first = ws.candidates()[0].id
        with ws.deciding():  # as another `studio accept` deciding now
            command = subprocess.Popen(
                [sys.executable, "-m", "studio", "accept", str(workspace_copy), "--rule",
                 "distance >= 0 or not face_found"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
            time.sleep(3)  # long enough to have read the candidates, were it not held back
            ws.decide_many([first], "accepted", "by the other command")
        _, err = command.communicate(timeout=60)
        assert command.returncode == 0, err
        step = ws.last_step()
        assert step is not None and first not in step.candidate_ids  # decided already
        everyone = {c.id for c in ws.candidates()}
        assert set(step.candidate_ids) == everyone - {first}
        undo = studio("accept", str(workspace_copy), "--undo")
        assert undo.returncode == 0, undo.stderr
        assert f"({len(everyone) - 1} candidates" in undo.stdout
        decided = {c.id: c.decision for c in ws.candidates()}
    assert decided[first] == "accepted"
    assert set(decided.values()) == {"accepted", "pending"}
    assert sum(d == "accepted" for d in decided.values()) == 1
