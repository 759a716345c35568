"""The bad-input corpus in one test: every odd input a researcher may hand the studio, run
through the real ``studio`` command in a child process. Each must end with its exit code
and a message that names the trouble, never a traceback or a native abort, and must lose
nothing. The per-case tests (test_bad_inputs, test_crowd_inputs, test_workspace_inputs)
look closer at each; this one keeps the whole list in one place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.images import load_image
from studio.core.datasets import utkface
from studio.core.workspace.batch import run_batch
from studio.core.workspace.store import Workspace

pytestmark = pytest.mark.data
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    """A command to run, where, and what it must end with."""

    argv: list[str]
    codes: tuple[int, ...]
    says: list[str]
    cwd: Path = ROOT
    check: Callable[[], None] | None = None
    output: list[str] = field(default_factory=list)


def studio(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "studio", *argv], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, engine, genki_test, crowd_study) -> dict:
    """Real faces and a real workspace (two GENKI-4K photos, candidates accepted), and the
    simulated crowd."""
    root = tmp_path_factory.mktemp("corpus")
    photos = root / "photos"
    photos.mkdir()
    for item in genki_test[:2]:
        shutil.copy(item.path, photos / item.path.name)
    workspace = root / "study.studio"
    with Workspace(workspace, create=True) as ws:
        run_batch(photos, ws, engine, candidates=1, methods=("gan",))
        for c in ws.candidates():
            ws.decide(c.id, "accepted")
    people = [it for it in utkface() if 20 <= it.age <= 50][::50][:12]
    return {"root": root, "photos": photos, "workspace": workspace,
            "faces": [load_image(p.path).rgb for p in people], "study": crowd_study}


def wide(c: dict, tmp: Path) -> Case:
    canvas = np.full((1800, 33_000, 3), 128, np.uint8)  # wider than OpenCV's SHRT_MAX
    face = np.asarray(Image.fromarray(c["faces"][0]).resize((1200, 1200), Image.LANCZOS))
    canvas[300:1500, 30_500:31_700] = face  # as large in the frame as a portrait's
    Image.fromarray(canvas).save(tmp / "panorama.png")
    return Case(["analyze", str(tmp / "panorama.png")], (0,), ["1 face", "face 1"])


def fifo(c: dict, tmp: Path) -> Case:
    os.mkfifo(tmp / "photo.jpg")  # would block a reader forever
    return Case(["analyze", str(tmp / "photo.jpg")], (1,), ["named pipe (FIFO)"])


def twelve_faces(c: dict, tmp: Path) -> Case:
    step, gap = 260, 60
    canvas = np.full((3 * step + gap, 4 * step + gap, 3), 200, np.uint8)
    for i, face in enumerate(c["faces"]):
        r, k = divmod(i, 4)
        canvas[gap + r * step:gap + r * step + 200, gap + k * step:gap + k * step + 200] = face
    Image.fromarray(canvas).save(tmp / "group.png")
    return Case(["analyze", str(tmp / "group.png")], (0,), ["12 faces", "face 12"])


def _crowd(tmp: Path, results: Path, mapping: Path, truth: Path, out: Path) -> list[str]:
    return ["crowd-report", str(results), str(out), "--truth", str(truth),
            "--mapping", str(mapping)]


def nested_json(c: dict, tmp: Path) -> Case:
    mapping, truth, _ = c["study"](6, 4, {"original": 0.8}, seed=1).write(tmp)
    deep = tmp / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    return Case(_crowd(tmp, deep, mapping, truth, tmp / "report"), (2,), ["nested too deeply"])


def label_studio_value(c: dict, tmp: Path) -> Case:
    study = c["study"](6, 4, {"original": 0.8}, seed=2)
    mapping, truth, _ = study.write(tmp)
    export = tmp / "ls.json"
    tasks = study.label_studio(export)
    tasks[0]["annotations"][0]["result"][0]["value"] = "Smile"  # a string, not an object
    tasks[1]["annotations"][0]["result"][0]["value"] = ["Smile"]
    tasks[2]["annotations"][0]["result"][0]["value"] = 1
    export.write_text(json.dumps(tasks))
    return Case(_crowd(tmp, export, mapping, truth, tmp / "report"), (0,),
                ["value is a string", "value is a list", "value is a number"])


def unwritable_report(c: dict, tmp: Path) -> Case:
    mapping, truth, results = c["study"](6, 4, {"original": 0.8}, seed=3).write(tmp)
    out = Path("/proc/studio-crowd-report")
    return Case(_crowd(tmp, results, mapping, truth, out), (2,), ["cannot write", str(out)])


def unwritable_export(c: dict, tmp: Path) -> Case:
    return Case(["export", str(c["workspace"]), "/proc/studio-export", "--format",
                 "labelstudio"], (2,), ["cannot write", "/proc"])


def corrupted_workspace(c: dict, tmp: Path) -> Case:
    broken = tmp / "broken.studio"
    shutil.copy(c["workspace"], broken)
    size = broken.stat().st_size
    with broken.open("r+b") as fh:  # a bad disk: random bytes over pages in the middle
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(np.random.default_rng(0).bytes(3 * 4096))
    kept = broken.read_bytes()

    def untouched() -> None:
        assert broken.read_bytes() == kept  # refused, not "repaired" behind the user's back

    return Case(["export", str(broken), str(tmp / "batch"), "--format", "labelstudio"], (2,),
                [".recover", "sqlite3"], check=untouched)


def duplicates(c: dict, tmp: Path) -> Case:
    folder = tmp / "in"
    folder.mkdir()
    first = next(c["photos"].iterdir())
    shutil.copy(first, folder / "a.jpg")
    shutil.copy(first, folder / "copy of a.jpg")
    workspace = tmp / "dups.studio"

    def one_original() -> None:
        with Workspace(workspace) as ws:
            (oid,) = [r[0] for r in ws.db.execute("SELECT id FROM originals")]
            assert sorted(Path(p).name for p in ws.paths_of(oid)) == ["a.jpg", "copy of a.jpg"]

    return Case(["batch", str(folder), "--workspace", str(workspace), "--candidates", "1",
                 "--methods", "gan", "--quiet"], (0,), ["identical to", "1 duplicates"],
                check=one_original)


def relative_paths(c: dict, tmp: Path) -> Case:
    shutil.copytree(c["photos"], tmp / "photos")

    def absolute() -> None:
        elsewhere = os.getcwd()  # not tmp: where the batch ran
        with Workspace(tmp / "rel.studio") as ws:
            for (oid,) in ws.db.execute("SELECT id FROM originals").fetchall():
                assert all(Path(p).is_absolute() for p in ws.paths_of(oid))
                assert ws.locate(oid) is not None, f"not found from {elsewhere}"

    return Case(["batch", "photos", "--workspace", "rel.studio", "--candidates", "1",
                 "--methods", "gan", "--quiet"], (0,), ["2 photos"], cwd=tmp, check=absolute)


def output_is_input(c: dict, tmp: Path) -> Case:
    shutil.copytree(c["photos"], tmp / "photos")
    before = sorted(p.name for p in (tmp / "photos").iterdir())

    def untouched() -> None:
        assert sorted(p.name for p in (tmp / "photos").iterdir()) == before

    return Case(["anonymize", str(tmp / "photos"), "-o", str(tmp / "photos"), "--quiet"], (2,),
                ["may not be the input"], check=untouched)


CORPUS = {f.__name__.replace("_", " "): f for f in (
    wide, fifo, twelve_faces, nested_json, label_studio_value, unwritable_report,
    unwritable_export, corrupted_workspace, duplicates, relative_paths, output_is_input)}


@pytest.mark.parametrize("name", CORPUS)
def test_the_corpus(name, corpus, tmp_path):
    case = CORPUS[name](corpus, tmp_path)
    proc = studio(case.argv, case.cwd)
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said, said
    assert proc.returncode in case.codes, f"exit {proc.returncode}: {said[-2000:]}"
    for needle in case.says:
        assert needle in said, f"{needle!r} not in: {said[-2000:]}"
    if case.check:
        case.check()


# --- crash safety and one writer per output folder ------------------------------------

WRITER = """
import sys, time
from studio.core.assets import atomic_file
with atomic_file(sys.argv[1], binary=True) as fh:
    fh.write(b"P" * 2_097_152)
    fh.flush()
    print("half", flush=True)
    time.sleep(60)
    fh.write(b"N" * 2_097_152)
"""


def test_a_killed_writer_leaves_nothing_at_the_name_and_the_rerun_cleans(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "big.png"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert writer.stdout.readline() == "half\n"
    writer.kill()  # SIGKILL: no clean-up of its own
    writer.wait(30)
    assert not target.exists()
    (partial,) = [p for p in out.iterdir()]
    assert partial.name.startswith(".big.png.") and partial.stat().st_size == 2_097_152
    photos = tmp_path / "photos"
    photos.mkdir()
    os.mkfifo(photos / "pipe.jpg")  # refused at the listing: the rerun loads no model
    proc = studio(["anonymize", str(photos), "-o", str(out), "--quiet"], ROOT)
    assert proc.returncode == 1 and "named pipe" in proc.stderr, proc.stderr[-2000:]
    assert list(out.iterdir()) == []  # the partial file gone, and the lock file too


def test_a_failed_write_leaves_neither_the_file_nor_a_partial(tmp_path, monkeypatch):
    from studio.core import assets

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(assets.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        assets.write_atomic(tmp_path / "p.png", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_second_anonymize_into_the_same_folder_is_stopped(corpus, tmp_path):
    from studio.core.assets import folder_lock

    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out, "test"):  # as a first `studio anonymize` holds it
        proc = studio(["anonymize", str(corpus["photos"]), "-o", str(out), "--neutral-names",
                       "--seed", "2", "--quiet"], ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "being written by another" in proc.stderr and str(out) in proc.stderr
    assert list(out.iterdir()) == []
    assert not (tmp_path / "out.private-mapping.csv").exists()
