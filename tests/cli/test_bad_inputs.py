"""Inputs that used to bring the studio down or surprise it, made in tmp dirs from real faces.

Where a native abort is possible (MediaPipe's OpenCV kills the process at SHRT_MAX) the
case runs through the real command in a subprocess, and the exit code must be the
studio's own (0 faces found, 1 nothing found or refused), never a signal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from studio.core.analysis import images, landmarks
from studio.core.analysis.images import SUPPORTED_SUFFIXES, list_images, load_image, scan_images
from studio.core.analysis.landmarks import FaceLandmarker, panorama_windows
from studio.core.errors import ImageLoadError

pytestmark = pytest.mark.data

ROOT = Path(__file__).resolve().parents[2]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


def studio(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode != 134, proc.stderr[-2000:]  # abort() as an exit status
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc


def on_canvas(face: np.ndarray, width: int, height: int, side: int, x: int, y: int
              ) -> np.ndarray:
    """A real face, resized to ``side``, at (x, y) on a plain canvas."""
    canvas = np.full((height, width, 3), 170, np.uint8)
    canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side),
                                                interpolation=cv2.INTER_CUBIC)
    return canvas


def save(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path)
    return path


# --- huge, wide, tall and thin images through the real command -----------------------

BLANK = {  # name: (width, height); each one aborted `studio analyze` with exit 134
    "wide": (20000, 2000), "tall": (2000, 20000), "row": (20000, 1), "column": (1, 20000),
    "at_shrt_max": (32767, 16), "beyond": (40000, 100),
}


@pytest.mark.parametrize("name", sorted(BLANK))
def test_faceless_extreme_sizes_end_with_no_face(tmp_path, name):
    width, height = BLANK[name]
    path = save(np.full((height, width, 3), 128, np.uint8), tmp_path / f"{name}.png")
    proc = studio("analyze", "--no-identity", str(path))
    assert proc.returncode == 1
    assert f"{width}x{height}  0 faces" in proc.stdout
    assert "no face found" in proc.stderr
    if min(width, height) < landmarks.MIN_SIDE:
        assert "note: the image is" in proc.stdout and "too thin to hold a face" in proc.stdout


#: A face in a panorama: (width, height, face side, x, y). The first is wider than SHRT_MAX.
PANORAMAS = {"wide": (33000, 1800, 1200, 30500, 300), "tall": (1500, 24000, 1000, 250, 20000),
             "strip": (20000, 300, 250, 9000, 25)}


@pytest.mark.parametrize("name", sorted(PANORAMAS))
def test_face_in_a_panorama_is_found_where_it_is(tmp_path, utk_face, name):
    width, height, side, x, y = PANORAMAS[name]
    path = save(on_canvas(utk_face, width, height, side, x, y), tmp_path / f"{name}.png")
    proc = studio("analyze", str(path), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = json.loads(proc.stdout)
    assert (record["width"], record["height"]) == (width, height)
    (face,) = record["faces"]
    x0, y0, x1, y1 = face["box"]
    # The landmarks are in the original's pixels: the box sits on the pasted face.
    assert x <= x0 < x1 <= x + side and y <= y0 < y1 <= y + side
    assert x1 - x0 > 0.6 * side
    assert len(face["descriptor"]) == 128 and face["attributes"]["p_male"] > 0.5


# --- landmarks found on a shrunk copy or in a window are in the original's pixels -------

def test_landmarks_of_a_shrunk_copy_are_scaled_back(analyzer, utk_face, monkeypatch):
    big = cv2.resize(utk_face, (800, 800), interpolation=cv2.INTER_CUBIC)
    full = analyzer.landmarker.detect(big)[0].landmarks
    monkeypatch.setattr(landmarks, "DETECT_MAX_SIDE", 400)  # detection sees half the pixels
    shrunk = analyzer.landmarker.detect(big)[0].landmarks
    assert np.abs(shrunk[:, :2] - full[:, :2]).mean() < 0.01 * 800
    assert np.abs(shrunk[:, 2] - full[:, 2]).mean() < 0.02 * 800


def test_a_face_in_a_panorama_has_the_landmarks_it_has_alone(analyzer, utk_face):
    alone = on_canvas(utk_face, 600, 600, 400, 100, 100)
    reference = analyzer.landmarker.detect(alone)[0].landmarks
    wide = on_canvas(utk_face, 9000, 600, 400, 4900, 100)
    assert (4800, 0, 5400, 600) in panorama_windows(600, 9000)  # the same 600x600 view
    (face,) = analyzer.landmarker.detect(wide)
    moved = face.landmarks[:, :2] - (4800, 0)
    assert np.abs(moved - reference[:, :2]).mean() < 1  # pixels, of a 400-px face


@pytest.mark.parametrize("x", [1300, 1450, 1550])  # windows at 0, 600, 1200... (side 1200)
def test_a_face_where_windows_overlap_is_found_once(analyzer, utk_face, x):
    (face,) = analyzer.landmarker.detect(on_canvas(utk_face, 6000, 1200, 500, x, 300))
    assert x <= face.box[0] < face.box[2] <= x + 500


def test_frames_stay_under_the_abort_limit_padding_included(analyzer, monkeypatch):
    assert landmarks.DETECT_MAX_SIDE * (1 + 2 * max(landmarks.PAD_FRACTIONS)) <= (
        landmarks.MEDIAPIPE_MAX_SIDE)
    # The same rule at a scale a test can afford: a limit of 2,000 and a faceless
    # 1,900-px image, which the widest pad (3,800 px) would take past it.
    monkeypatch.setattr(landmarks, "MEDIAPIPE_MAX_SIDE", 2000)
    monkeypatch.setattr(landmarks, "DETECT_MAX_SIDE", 1000)
    sizes = []
    landmarker = analyzer.landmarker
    run = landmarker._run
    monkeypatch.setattr(landmarker, "_run",
                        lambda rgb, *a: sizes.append(max(rgb.shape[:2])) or run(rgb, *a))
    assert landmarker.detect(np.full((1500, 1900, 3), 128, np.uint8)) == []
    assert len(sizes) == 3 and max(sizes) == 2000  # the image, then two pads


# --- many faces -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def twelve_faces() -> np.ndarray:
    """Twelve real UTKFace adults on a 4x3 grid, as in a group photo."""
    from studio.core.datasets import utkface

    people = [it for it in utkface() if 20 <= it.age <= 50][::50][:12]
    step, gap = 260, 60
    canvas = np.full((3 * step + gap, 4 * step + gap, 3), 200, np.uint8)
    for i, person in enumerate(people):
        r, c = divmod(i, 4)
        canvas[gap + r * step:gap + r * step + 200, gap + c * step:gap + c * step + 200] = (
            load_image(person.path).rgb)
    return canvas


def test_a_group_of_twelve_gives_twelve_faces(analyzer, twelve_faces):
    result = analyzer.analyze(twelve_faces)
    assert len(result.faces) == 12 and result.notes == ()
    # Face (r, c) is centred near (160 + 260 c, 160 + 260 r).
    cells = {(round(((f.box[1] + f.box[3]) / 2 - 160) / 260),
              round(((f.box[0] + f.box[2]) / 2 - 160) / 260)) for f in result.faces}
    assert cells == {(r, c) for r in range(3) for c in range(4)}  # one in each place
    assert all(f.descriptor is not None for f in result.faces)


def test_the_face_limit_is_said_not_silent(twelve_faces):
    with FaceLandmarker(max_faces=4) as small:
        found = small.find(twelve_faces)
    assert any("more than 4 faces" in n for n in found.notes)


# --- files that are not regular files ----------------------------------------------------

@needs_fifo
def test_a_fifo_named_jpg_is_refused_at_once(tmp_path):
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            load_image(fifo)
            outcome.append(None)
        except ImageLoadError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock it before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("load_image blocked on a FIFO")
    assert "named pipe" in str(outcome[0])


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_analyze_refuses_what_is_not_a_file(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no named pipes here")
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        if not os.path.exists(os.devnull) or os.name == "nt":
            pytest.skip("no device files here")
        path.symlink_to(os.devnull)
    proc = studio("analyze", str(path), timeout=120)
    assert proc.returncode == 1
    assert {"fifo": "named pipe", "folder": "a folder", "device": "device"}[kind] in proc.stderr


@needs_fifo
def test_folder_listing_sets_aside_what_is_not_a_file(tmp_path, utk_face_path):
    shutil.copy(utk_face_path, tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "b.jpg")
    (tmp_path / "c.png").mkdir()  # a folder named like a photo is searched, not refused
    shutil.copy(utk_face_path, tmp_path / "c.png" / "inside.jpg")
    (tmp_path / "d.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    listing = scan_images(tmp_path)
    assert listing.images == [tmp_path / "a.jpg", tmp_path / "c.png" / "inside.jpg"]
    assert listing.images == list_images(tmp_path)
    why = {p.name: reason for p, reason in listing.skipped}
    assert set(why) == {"b.jpg", "d.jpg"}
    assert "named pipe" in why["b.jpg"]
    assert "cannot be read" in why["d.jpg"]


# --- bounds: refused in one line, exit 2, before any work ----------------------------

BOUNDS = {  # argv after the command's own arguments: what the one line must say
    "workers 0": (["anonymize", "IN", "-o", "OUT", "--workers", "0"], "at least 1"),
    "workers -3": (["anonymize", "IN", "-o", "OUT", "--workers=-3"], "at least 1"),
    "workers 100000": (["anonymize", "IN", "-o", "OUT", "--workers", "100000"], "at most"),
    "workers over the CPUs": (["anonymize", "IN", "-o", "OUT", "--workers",
                               str(len(os.sched_getaffinity(0)) + 1)], "CPUs of this machine"),
    "joy 2": (["generate", "-o", "OUT/g.png", "--joy", "2"], "from 0 to 1"),
    "joy nan": (["generate", "-o", "OUT/g.png", "--joy", "nan"], "from 0 to 1"),
    "yaw 1e9": (["generate", "-o", "OUT/g.png", "--yaw", "1e9"], "from -45 to 45"),
    "size 100000": (["generate", "-o", "OUT/g.png", "--size", "100000"], "GiB"),
    "device tpu": (["generate", "-o", "OUT/g.png", "--device", "tpu"], "unknown device"),
    "genki -1": (["evaluate-incontext", "--genki", "-1", "--utk", "-1"], "at least 0"),
    "genki 0 utk 0": (["evaluate-incontext", "--genki", "0", "--utk", "0"], "both 0"),
    "training 0": (["evaluate-incontext", "--genki", "0", "--utk", "0", "--training", "0"],
                   "at least 1"),
}


@pytest.mark.parametrize("name", BOUNDS)
def test_out_of_bounds_options_are_refused_in_one_line(tmp_path, utk_face_path, name, capsys):
    """The command's own entry point, in this process: each refusal comes before any model
    loads, so a child process would only add its start-up."""
    from studio.cli import main

    argv, says = BOUNDS[name]
    out = tmp_path / "out"
    argv = [str(utk_face_path) if a == "IN" else a.replace("OUT", str(out)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and says in errors[0], err
    assert not out.exists()  # nothing made


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here")
    proc = studio("generate", "-o", str(tmp_path / "g.png"), "--device", "cuda", timeout=60)
    assert proc.returncode == 2 and "no usable CUDA GPU" in proc.stderr, proc.stderr
    assert not (tmp_path / "g.png").exists()


def test_an_unreachable_ray_address_is_named_and_leaves_no_folder(tmp_path, utk_face_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    proc = studio("anonymize", str(utk_face_path), "-o", str(out), "--ray=127.0.0.1:1",
                  "--quiet", timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "127.0.0.1:1" in proc.stderr and "nothing answers" in proc.stderr
    assert not out.exists()


@needs_fifo
def test_a_control_character_in_a_name_is_printed_escaped(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    os.mkfifo(photos / "two\nlines.jpg")  # refused at the listing: no model is loaded
    proc = studio("anonymize", str(photos), "-o", str(tmp_path / "out"), "--quiet", timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if "named pipe" in x]
    assert "two\\nlines.jpg" in line, proc.stderr


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path, utk_face_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ImageLoadError, match="GiB limit"):
        load_image(utk_face_path)


# --- animations and pages: what is read is said -------------------------------------------

@pytest.fixture(scope="module")
def real_frames() -> list[np.ndarray]:
    from studio.core.datasets import utkface

    return [load_image(it.path).rgb for it in utkface()[:400:40]]


@pytest.mark.parametrize("fmt,suffix,word", [("GIF", ".gif", "animated GIF, 10 frames"),
                                              ("WEBP", ".webp", "animated WebP, 10 frames"),
                                              ("PNG", ".png", "animated PNG, 10 frames"),
                                              ("TIFF", ".tif", "TIFF with 10 pages")])
def test_only_the_first_frame_is_read_and_that_is_said(tmp_path, real_frames, analyzer, fmt,
                                                       suffix, word):
    path = tmp_path / f"moving{suffix}"
    frames = [Image.fromarray(f) for f in real_frames]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=80,
                   lossless=True)
    image = load_image(path)
    assert image.frames == 10 and image.note.startswith(word) and "first" in image.note
    with Image.open(path) as first:
        expected = np.asarray(first.convert("RGB"))
    assert np.array_equal(image.rgb, expected)
    if fmt != "GIF":  # lossless: the first frame, pixel for pixel
        assert np.array_equal(image.rgb, real_frames[0])
    result = analyzer.analyze(image)
    assert image.note in result.notes and len(result.faces) == 1


def test_a_still_image_has_no_note(tmp_path, utk_face):
    image = load_image(save(utk_face, tmp_path / "still.gif"))
    assert image.frames == 1 and image.note == ""


def test_analyze_prints_the_note(tmp_path, real_frames):
    path = tmp_path / "moving.gif"
    frames = [Image.fromarray(f) for f in real_frames[:4]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80)
    proc = studio("analyze", "--no-identity", str(path))
    assert proc.returncode == 0
    assert "note: animated GIF, 4 frames: only the first frame is analysed" in proc.stdout


def test_one_list_of_formats_for_every_reader(tmp_path, utk_face):
    assert ".gif" in SUPPORTED_SUFFIXES
    for suffix in SUPPORTED_SUFFIXES:
        save(utk_face, tmp_path / f"face{suffix}")
    assert {p.suffix for p in list_images(tmp_path)} == set(SUPPORTED_SUFFIXES)
    help_text = studio("analyze", "--help").stdout
    assert images.SUPPORTED_NAMES in " ".join(help_text.split())


# --- a batch over a folder with a panorama in it ---------------------------------------

def test_batch_goes_past_a_panorama_to_every_real_face(tmp_path, analyzer, genki_test,
                                                       utk_face):
    from studio.core.workspace.store import Workspace

    folder = tmp_path / "photos"
    folder.mkdir()
    people = [it for it in genki_test[:20] if analyzer.analyze(load_image(it.path)).faces][:3]
    for it in people:
        shutil.copy(it.path, folder / f"z_{it.path.name}")  # after the panorama
    save(on_canvas(utk_face, 33000, 1500, 1000, 15000, 250), folder / "a_panorama.png")
    save(np.full((1, 20000, 3), 90, np.uint8), folder / "b_row.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "c_pipe.jpg")
    path = tmp_path / "w.studio"
    # Faces of 40 px and more: the panorama's finest search costs a quarter of the default's
    # (the default's is measured in benchmarks/bench_recall.py's large frames).
    proc = studio("batch", str(folder), "--workspace", str(path), "--candidates", "1",
                  "--methods", "gan", "--min-face", "40", "--quiet", timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    with Workspace(path) as ws:
        faces = {Path(f.original_path).name for f in ws.faces()}
        assert {f"z_{it.path.name}" for it in people} <= faces
        assert "a_panorama.png" in faces
        assert len(ws.candidates()) == len(ws.faces()) == 4
