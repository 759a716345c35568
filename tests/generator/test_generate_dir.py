"""``studio generate --out-dir``: a data set of separate faces whose labels.csv regenerates
each file, with the shipped generator weights."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli import main
from studio.core.analysis.attributes import NAMES, SPECS, Attributes
from studio.core.generator.dataset_export import (
    LABELS_FILE,
    draw_one,
    export_dataset,
    file_name,
    read_labels,
)
from studio.core.generator.latent import z_for_seed

FIXED = Attributes(0.85, 0.2, -12.5, 4.0, 0.0)
FLAGS = ["--joy", "0.85", "--male", "0.2", "--yaw", "-12.5", "--pitch", "4"]


def generate(*args: str) -> int:
    return main(["generate", "--device", "cpu", "--quiet", *args])


@pytest.fixture(scope="module")
def fixed_set(tmp_path_factory) -> Path:
    """11 faces drawn 4 at a time: two full batches and a short one."""
    out = tmp_path_factory.mktemp("fixed") / "set"  # made by the command
    assert generate("-n", "11", "--seed", "40", "--batch", "4", *FLAGS, "--out-dir",
                    str(out)) == 0
    return out


@pytest.fixture(scope="module")
def varied_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("varied")
    assert generate("-n", "64", "--seed", "7", "--vary", "--batch", "16",
                    "--out-dir", str(out)) == 0
    return out


def png_chunks(path: Path) -> list[str]:
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(raw):
        (length,), kind = struct.unpack(">I", raw[at:at + 4]), raw[at + 4:at + 8]
        chunks.append(kind.decode("ascii"))
        at += 12 + length
    return chunks


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / LABELS_FILE, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_n_native_size_files_and_their_labels(fixed_set, sampler):
    size = sampler.config.image_size  # the model's, read from its file
    names = [file_name(i, 11) for i in range(11)]
    assert names[0] == "000000.png" and names[-1] == "000010.png"
    assert sorted(p.name for p in fixed_set.iterdir()) == sorted([*names, LABELS_FILE])
    faces = [np.asarray(Image.open(fixed_set / n)) for n in names]
    assert all(f.shape == (size, size, 3) and f.dtype == np.uint8 for f in faces)
    assert len({f.tobytes() for f in faces}) == 11  # eleven identities, no repeats
    with open(fixed_set / LABELS_FILE, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == ["file", "seed", *(s.name for s in SPECS)]
    table = rows(fixed_set)
    assert [r["file"] for r in table] == names
    assert [int(r["seed"]) for r in table] == list(range(40, 51))
    for r in table:
        assert Attributes(**{n: float(r[n]) for n in NAMES}) == FIXED


def test_the_pngs_carry_no_metadata(fixed_set):
    for path in sorted(fixed_set.glob("*.png")):
        assert png_chunks(path) == ["IHDR", "IDAT", "IEND"]
        assert Image.open(path).info == {}


def test_a_row_regenerates_its_file_exactly(fixed_set, varied_set, sampler, tmp_path):
    sets = [(fixed_set, read_labels(fixed_set / LABELS_FILE)),
            (varied_set, read_labels(varied_set / LABELS_FILE))]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # another thread count than the export's
        for out, table in sets:
            for name, seed, attrs in (table[0], table[5], table[-1]):
                assert np.array_equal(draw_one(sampler, seed, attrs),
                                      np.asarray(Image.open(out / name))), (out, name)
    finally:
        torch.set_num_threads(threads)
    # and with the command, from the CSV's text alone (row 40 was drawn in the third batch)
    name, seed, attrs = sets[1][1][40]
    flags = [x for s in SPECS for x in (f"--{s.flag}", str(getattr(attrs, s.name)))]
    again = tmp_path / "again"
    assert generate("-n", "1", "--seed", str(seed), *flags, "--out-dir", str(again)) == 0
    assert np.array_equal(np.asarray(Image.open(again / "000000.png")),
                          np.asarray(Image.open(varied_set / name)))
    assert read_labels(again / LABELS_FILE) == [("000000.png", seed, attrs)]


def test_the_seed_is_the_studios_face(fixed_set, sampler):
    """Float64 moves a pixel by a grey level or so from the Sampler's face for the seed."""
    for name, seed, attrs in read_labels(fixed_set / LABELS_FILE)[:4]:
        fast = sampler.sample(attrs, z=z_for_seed(seed, sampler.config.z_dim)[None])[0]
        diff = np.abs(np.asarray(Image.open(fixed_set / name)).astype(int) - fast)
        assert diff.mean() < 0.5 and diff.max() <= 4, (name, diff.mean(), diff.max())


def test_vary_spans_each_attributes_range(varied_set, tmp_path):
    table = rows(varied_set)
    assert len(table) == 64
    for s in SPECS:
        values = np.array([float(r[s.name]) for r in table])
        assert values.min() >= s.low and values.max() <= s.high, s.name
        assert len(set(values)) == 64, s.name  # a new draw per face
        third = (s.high - s.low) / 3  # 64 uniform draws reach each outer third
        assert values.min() < s.low + third and values.max() > s.high - third, s.name
    # seeded: the same command draws the same labels and faces, in batches of another size
    again = tmp_path / "again"
    assert generate("-n", "64", "--seed", "7", "--vary", "--out-dir", str(again)) == 0
    assert (again / LABELS_FILE).read_bytes() == (varied_set / LABELS_FILE).read_bytes()
    for path in varied_set.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_vary_some_keeps_the_flags_for_the_rest(tmp_path):
    out = tmp_path / "pose"
    assert generate("-n", "12", "--seed", "3", *FLAGS, "--vary", "yaw,male",
                    "--out-dir", str(out)) == 0
    table = rows(out)
    for name in ("yaw", "p_male"):
        assert len({r[name] for r in table}) == 12
    for name in ("joy", "pitch", "roll"):
        assert {float(r[name]) for r in table} == {getattr(FIXED, name)}


@pytest.mark.data
def test_the_faces_follow_the_varied_pose(tmp_path, analyzer):
    """The labels describe the faces: the analysed yaw follows the drawn one. (Pitch and
    roll stay at 0 here: drawn over all of +-45 they leave GENKI-4K's range and blur it.)"""
    out = tmp_path / "pose"
    assert generate("-n", "48", "--seed", "11", "--vary", "joy,male,yaw",
                    "--out-dir", str(out)) == 0
    wanted, seen = [], []
    for name, _, attrs in read_labels(out / LABELS_FILE):
        faces = analyzer.analyze(np.asarray(Image.open(out / name))).faces
        if faces:
            wanted.append(attrs.yaw)
            seen.append(faces[0].attributes.yaw)
    assert len(seen) >= 40
    assert np.corrcoef(wanted, seen)[0, 1] > 0.85


def test_batches_report_progress(sampler, tmp_path):
    calls = []
    done = export_dataset(sampler, tmp_path / "seven", 7, FIXED, seed=0, batch=3,
                          progress=lambda *call: calls.append(call))
    assert calls == [(0, 7, "faces"), (3, 7, "faces"), (6, 7, "faces"), (7, 7, "faces")]
    assert (done.count, done.seed, done.size, done.varied) == (7, 0, sampler.config.image_size, ())
    assert len(read_labels(done.labels)) == 7


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / LABELS_FILE).write_text("file,seed\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert generate("-n", "3", "--out-dir", str(out)) == 2
    assert "not empty" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    afile = tmp_path / "a.png"
    afile.write_bytes(b"x")
    assert generate("-n", "3", "--out-dir", str(afile)) == 2
    assert afile.read_bytes() == b"x"
    assert "not a folder" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    out = tmp_path / "new"
    with pytest.raises(SystemExit) as exit_:
        generate("-o", str(tmp_path / "g.png"), "--out-dir", str(out))
    assert exit_.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert generate("--vary") == 2
    assert "--out-dir" in capsys.readouterr().err
    assert generate("--size", "64", "--out-dir", str(out)) == 2
    assert "native size" in capsys.readouterr().err
    assert generate("--vary", "yaw,smile", "--out-dir", str(out)) == 2
    assert "cannot vary smile" in capsys.readouterr().err
    assert generate("-n", "0", "--out-dir", str(out)) == 2
    assert not out.exists() and not (tmp_path / "g.png").exists()
