"""`studio batch --ray` and `studio anonymize --ray`: the same work on a local Ray, on real faces.

A local Ray on two CPUs is started once for the module (about 4 s) and shut down at its
end; each pipeline then starts its own actors, which load the models once each.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.surrogates.scale import CRASH_HOOK_ENV
from studio.core.workspace.store import Workspace

pytestmark = [pytest.mark.data, pytest.mark.slow]
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install .[ray])")

FACES = 3  # GENKI-4K test faces in the batch folder


def sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def contents(path: Path) -> dict:
    """A workspace's contents, without its row ids and times: originals and every path
    they were seen at, faces (their analysis, arrays by sha256), candidates (labels,
    metrics, the PNG's sha256, decision), keyed by the photo's sha256."""
    with sqlite3.connect(str(path)) as db:
        originals = sorted(db.execute(
            "SELECT sha256, path, status, message, width, height FROM originals"))
        paths = sorted(db.execute("SELECT o.sha256, p.path FROM original_paths p "
                                  "JOIN originals o ON o.id = p.original_id"))
        faces = {(o, i): (box, attributes, sha(lm), sha(bs), sha(d)) for o, i, box, attributes,
                 lm, bs, d in db.execute(
                     "SELECT o.sha256, f.face_index, f.box, f.attributes, f.landmarks, "
                     "f.blendshapes, f.descriptor FROM faces f "
                     "JOIN originals o ON o.id = f.original_id")}
        rows = list(db.execute(
            "SELECT o.sha256, f.face_index, c.method, c.seed, c.labels, c.metrics, c.image, "
            "c.decision FROM candidates c JOIN faces f ON f.id = c.face_id "
            "JOIN originals o ON o.id = f.original_id"))
    candidates = {(o, i, m, s): (labels, metrics, sha(png), decision)
                  for o, i, m, s, labels, metrics, png, decision in rows}
    assert len(candidates) == len(rows)  # nothing twice
    return {"originals": originals, "paths": paths, "faces": faces, "candidates": candidates}


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha(p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def photo_folder(tmp_path, genki_test) -> Path:
    """Three real faces, a copy of the first, and a corrupt file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for item in genki_test[:FACES]:
        shutil.copy(item.path, folder / f"person_{item.path.stem}.jpg")
    shutil.copy(genki_test[0].path, folder / "zz_copy.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.fixture(scope="module")
def held_out(held_out_adults):
    return held_out_adults[:3]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray on two CPUs, as ``--ray`` would start one; ``ray_session`` uses it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
    assert not ray.is_initialized()


# --- without Ray, and the command line (each in a process of its own) --------------------

def test_help_stays_without_ray():
    code = ("import sys\nfrom studio.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('ray', 'studio.core.surrogates.scale', "
            "'studio.core.workspace.scale') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_without_the_extra_ray_says_how_to_install_it(photo_folder, tmp_path):
    def studio_without_ray(*args: str) -> subprocess.CompletedProcess:
        code = ("import sys\nsys.modules['ray'] = None  # as if not installed\n"
                "from studio.cli import main\nsys.exit(main(sys.argv[1:]))")
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=120)

    work = tmp_path / "w.studio"
    proc = studio_without_ray("batch", str(photo_folder), "--workspace", str(work), "--ray")
    assert proc.returncode == 2
    assert "install the ray extra: pip install .[ray]" in proc.stderr
    assert "Traceback" not in proc.stderr and not work.exists()  # nothing was made
    out = tmp_path / "out"
    proc = studio_without_ray("anonymize", str(photo_folder), "-o", str(out), "--ray=auto")
    assert proc.returncode == 2 and "pip install .[ray]" in proc.stderr and not out.exists()
    # --ray before the inputs takes the first for an address: said, not run.
    proc = studio_without_ray("anonymize", "--ray", str(photo_folder), str(photo_folder),
                              "-o", str(out))
    assert proc.returncode == 2 and "--ray=ADDRESS" in proc.stderr and not out.exists()


def test_anonymize_command_starts_and_stops_its_own_ray(held_out, tmp_path):
    """`studio anonymize --ray` with no address: a local Ray of --workers CPUs, started and
    shut down by the command, writes what the plain command writes."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for item in held_out[:2]:
        shutil.copy(item.path, photos / item.path.name)
    runs = {}
    for name, extra in (("plain", []), ("ray", ["--ray", "--workers", "2"])):
        proc = subprocess.run([sys.executable, "-m", "studio", "anonymize", str(photos), "-o",
                               str(tmp_path / name), "--method", "blur", "--quiet", *extra],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "2 photos written" in proc.stdout
        runs[name] = hashes(tmp_path / name)
    assert runs["ray"] == runs["plain"] and len(runs["ray"]) == 2


# --- the pipelines, on one local Ray ------------------------------------------------------

def test_ray_batch_fills_the_workspace_as_the_plain_batch_though_a_worker_dies(
        engine, local_ray, photo_folder, genki_test, tmp_path, monkeypatch):
    """Same faces, candidates, metrics and image bytes as the plain run, although the
    worker on one photo dies: that photo alone is tried again, on a fresh worker."""
    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.scale import ray_batch

    plain, on_ray = tmp_path / "plain.studio", tmp_path / "ray.studio"
    with Workspace(plain, create=True) as ws:
        expected = run_batch(photo_folder, ws, engine, candidates=1)
    victim = photo_folder / f"person_{genki_test[1].path.stem}.jpg"
    marker = tmp_path / "died-once"
    monkeypatch.setenv(CRASH_HOOK_ENV, f"{victim.name}|{marker}")
    seen = []
    with Workspace(on_ray, create=True) as ws:
        report = ray_batch(photo_folder, ws, candidates=1, workers=2,
                           progress=lambda *call: seen.append(call))
    assert marker.exists()  # the worker did die on the victim (the marker is made first)
    assert [(d, t) for d, t, _ in seen] == [(i, 5) for i in range(6)]  # every photo, once
    for what in ("originals", "unreadable", "faces", "candidates", "duplicates", "problems"):
        assert getattr(report, what) == getattr(expected, what), what
    assert report.faces == FACES and report.candidates == FACES * 2  # a GAN and a 3D each
    assert report.crashes == []
    got = contents(on_ray)
    assert got == contents(plain)  # nothing lost, nothing twice, every byte the same
    statuses = {p: s for _, p, s, *_ in got["originals"]}
    assert statuses[str(victim)] == "ok"
    assert sorted(statuses.values()) == ["ok"] * FACES + ["unreadable"]
    assert len(got["paths"]) == FACES + 2  # the copy kept as a second path, the broken file
    assert len(got["candidates"]) == FACES * 2
    # Resuming on Ray skips everything done.
    with Workspace(on_ray) as ws:
        again = ray_batch(photo_folder, ws, candidates=1, workers=2)
    assert again.skipped_done == FACES + 1 and len(again.duplicates) == 1  # the copy
    assert again.faces == 0 and again.unreadable == 1
    assert contents(on_ray) == got


def test_a_photo_that_kills_every_worker_is_recorded_and_skipped(local_ray, photo_folder,
                                                                 genki_test, tmp_path,
                                                                 monkeypatch):
    from studio.core.workspace.scale import ray_batch

    victim = photo_folder / f"person_{genki_test[2].path.stem}.jpg"
    monkeypatch.setenv(CRASH_HOOK_ENV, victim.name)
    path = tmp_path / "c.studio"
    with Workspace(path, create=True) as ws:
        report = ray_batch(photo_folder, ws, candidates=1, methods=("gan",), workers=2,
                           retries=1)
        assert report.crashes == ["1 photo killed its Ray worker on each of 2 tries"]
        assert report.faces == FACES - 1 and report.unreadable == 2
        assert any(str(victim) in p and "crashed" in p for p in report.problems)
        # The next run skips it, as one recorded by an earlier run.
        again = ray_batch(photo_folder, ws, candidates=1, methods=("gan",), workers=2)
        assert again.crashes == [] and again.faces == 0 and again.skipped_done == FACES + 1
    statuses = {p: s for _, p, s, *_ in contents(path)["originals"]}
    assert statuses[str(victim)] == "unreadable"
    assert sum(s == "ok" for s in statuses.values()) == FACES - 1


def test_batch_command_with_ray(local_ray, photo_folder, tmp_path, capsys):
    from studio.cli import main

    path = tmp_path / "cli.studio"
    code = main(["batch", str(photo_folder), "--workspace", str(path), "--candidates", "1",
                 "--methods", "gan", "--quiet", "--ray", "--workers", "2"])
    out = capsys.readouterr()
    assert code == 1  # the broken photo, listed
    assert "broken.jpg" in out.err
    assert f"{FACES} faces, {FACES} candidates" in out.out
    assert ray.is_initialized()  # a Ray the command did not start is left running


def test_anonymize_with_ray_writes_the_same_files(local_ray, held_out, tmp_path):
    from studio.core.surrogates.anonymize import anonymize

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, item in enumerate(held_out):
        shutil.copy(item.path, photos / ("sub" if i else "") / item.path.name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = hashes(photos)
    plain = anonymize([photos], tmp_path / "plain", method="context", seed=7)
    on_ray = anonymize([photos], tmp_path / "ray", method="context", seed=7, ray="local",
                       workers=2)
    assert hashes(tmp_path / "ray") == hashes(tmp_path / "plain")
    assert len(on_ray.written) == len(held_out) == on_ray.faces_replaced
    assert (on_ray.faces_replaced, on_ray.faces_blurred) == (plain.faces_replaced,
                                                             plain.faces_blurred)
    assert [p.name for p in on_ray.unreadable] == ["broken.jpg"]
    assert hashes(photos) == before  # originals only read
    # A second run on Ray overwrites nothing.
    again = anonymize([photos], tmp_path / "ray", method="context", seed=7, ray="local")
    assert again.written == [] and len(again.skipped_existing) == len(held_out)


def test_a_worker_that_cannot_start_stops_the_run_with_its_reason(local_ray, tmp_path):
    """A node without a model file (here: a worker whose constructor opens a missing file)
    stops the run with one line that names it, not a Ray traceback."""
    from functools import partial

    from studio.core.errors import StudioError
    from studio.core.surrogates.scale import ray_map

    missing = tmp_path / "missing-model.bin"
    with pytest.raises(StudioError, match=r"the Ray pipeline failed: FileNotFoundError.*"
                                          r"missing-model\.bin"):
        list(ray_map([{"path": "a.jpg"}, {"path": "b.jpg"}], partial(open, missing, "rb"), 2))
