"""`studio anonymize`: every face of real photos replaced, one metadata-free PNG each."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.identity import identity_distance
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.surrogates.anonymize import AnonymizeError, anonymize

pytestmark = pytest.mark.data

SECRET_EXIF = {0x010F: "SecretCam", 0x013B: "Jane Doe", 0x010E: "at home in Leeds"}


@pytest.fixture(scope="module")
def held_out(held_out_adults):
    return held_out_adults


@pytest.fixture(scope="module")
def photos(tmp_path_factory, held_out) -> Path:
    """Two single faces, one with a unicode name and camera EXIF in a sub-folder, a 2x2
    group of four people on a wide margin, a corrupt file and a face-less grey image."""
    folder = tmp_path_factory.mktemp("anon") / "photos"
    (folder / "trip").mkdir(parents=True)
    shutil.copy(held_out[0].path, folder / "alice.jpg")
    shutil.copy(held_out[1].path, folder / "bob.jpg")
    exif = Image.Exif()
    for tag, value in SECRET_EXIF.items():
        exif[tag] = value
    Image.open(held_out[2].path).save(folder / "trip" / "Zoë Ångström.jpg", exif=exif,
                                      quality=95)
    canvas = np.full((520, 520, 3), 185, np.uint8)
    for k, item in enumerate(held_out[4:8]):
        y, x = 60 + 200 * (k // 2), 60 + 200 * (k % 2)
        canvas[y:y + 200, x:x + 200] = load_image(item.path).rgb
    Image.fromarray(canvas).save(folder / "group.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (240, 180), (128, 128, 128)).save(folder / "grey.png")
    return folder


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def engine3d():
    from studio.core.surrogates.whole_photo import anonymize_engine

    e = anonymize_engine("context")
    yield e
    e.close()


@pytest.fixture(scope="module")
def context_run(photos, engine3d, tmp_path_factory):
    before = hashes(photos)
    out = tmp_path_factory.mktemp("anon-out") / "out"
    seen = []
    report = anonymize([photos], out, method="context", seed=5, engine=engine3d,
                       progress=lambda *call: seen.append(call))
    return report, out, before, seen


FACES = {"alice.png": 1, "bob.png": 1, "trip/Zoë Ångström.png": 1, "group.png": 4}


def source_of(photos: Path, rel: str) -> Path:
    return next(p for p in photos.rglob("*") if p.relative_to(photos).with_suffix(".png")
                == Path(rel))


def face_hulls(analyzer, rgb: np.ndarray):
    import cv2

    faces = analyzer.analyze(rgb).faces
    masks = []
    for f in faces:
        m = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(m, np.round(cv2.convexHull(f.landmarks[:, :2].astype(np.float32)))
                           .astype(np.int32), 1)
        masks.append(m > 0)
    return faces, masks


def changed(src: np.ndarray, new: np.ndarray, hull: np.ndarray) -> bool:
    """Most of the face's pixels changed (a dark face changes by fewer levels)."""
    diff = np.abs(new.astype(int) - src.astype(int)).max(axis=2)[hull]
    return bool((diff > 3).mean() > 0.6 and diff.mean() > 5)


def far_from_faces(faces, shape, grow: float = 0.3) -> np.ndarray:
    """Pixels outside every face's landmark box grown by ``grow`` of the face's width."""
    far = np.ones(shape[:2], bool)
    for f in faces:
        (x0, y0), (x1, y1) = f.landmarks[:, :2].min(0), f.landmarks[:, :2].max(0)
        g = grow * (x1 - x0)
        far[max(0, int(y0 - g)):int(y1 + g) + 1, max(0, int(x0 - g)):int(x1 + g) + 1] = False
    return far


def test_every_photo_written_at_its_resolution_and_bad_inputs_reported(context_run, photos):
    report, out, _, seen = context_run
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == sorted(FACES) == sorted(str(p.relative_to(out)) for p in report.written)
    for rel in FACES:
        src = load_image(source_of(photos, rel)).rgb
        assert np.asarray(Image.open(out / rel)).shape == src.shape
    assert report.faces_replaced == sum(FACES.values()) and report.faces_blurred == 0
    assert report.unreadable == [photos / "broken.jpg"]
    assert report.no_face == [photos / "grey.png"] and not (out / "grey.png").exists()
    assert report.inputs_failed == 2 and not report.skipped_existing
    text = "\n".join(report.messages)
    assert f"{photos / 'broken.jpg'}: this is not an image file" in text
    assert f"{photos / 'grey.png'}: no face found; nothing written" in text
    assert seen[0] == (0, 6, "photos") and seen[-1][:2] == (6, 6)


def test_context_faces_are_new_people_and_the_rest_is_untouched(context_run, photos,
                                                                analyzer):
    _, out, _, _ = context_run
    for rel, count in FACES.items():
        src = load_image(source_of(photos, rel)).rgb
        new = np.asarray(Image.open(out / rel).convert("RGB"))
        faces, hulls = face_hulls(analyzer, src)
        assert len(faces) == count
        for hull in hulls:
            assert changed(src, new, hull), rel  # the face itself
        far = far_from_faces(faces, src.shape)  # a UTKFace crop has little of it
        assert np.array_equal(new[far], src[far]), rel
        assert far.sum() > 20_000 or rel != "group.png"
        # Each face is someone else to the identity network (each tile of the group alone).
        for face in faces:
            (x0, y0), (x1, y1) = face.landmarks[:, :2].min(0), face.landmarks[:, :2].max(0)
            g = 0.4 * (x1 - x0)
            box = (slice(max(0, int(y0 - g)), int(y1 + g)), slice(max(0, int(x0 - g)),
                                                                    int(x1 + g)))
            before = largest_face(analyzer.analyze(np.ascontiguousarray(src[box])).faces)
            after = largest_face(analyzer.analyze(np.ascontiguousarray(new[box])).faces)
            assert before is not None and after is not None, rel
            d = identity_distance(before.descriptor, after.descriptor)
            assert d >= 0.6, f"{rel}: identity distance {d:.2f}"


def test_no_metadata_travels_and_originals_are_untouched(context_run, photos):
    report, _, before, _ = context_run
    for path in report.written:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.mode == "RGB"
            assert not {"exif", "icc_profile", "comment", "XML:com.adobe.xmp"} & set(img.info)
            assert not img.text  # no tEXt/iTXt/zTXt chunks
        data = path.read_bytes()
        assert not any(v.encode() in data for v in SECRET_EXIF.values())
        assert b"eXIf" not in data
    # The EXIF really was there, in the original.
    assert b"SecretCam" in (photos / "trip" / "Zoë Ångström.jpg").read_bytes()
    assert hashes(photos) == before


def test_a_second_run_overwrites_nothing(context_run, photos, engine3d):
    _, out, before, _ = context_run
    written = hashes(out)
    again = anonymize([photos], out, method="context", seed=99, engine=engine3d)
    assert not again.written and len(again.skipped_existing) == len(FACES)
    assert all("exists already; skipped, not overwritten" in m for m in again.messages
               if "broken" not in m and "grey" not in m)
    assert hashes(out) == written and hashes(photos) == before


def test_neutral_names_keep_the_mapping_outside(photos, engine3d, tmp_path):
    out = tmp_path / "share"
    report = anonymize([photos / "alice.jpg", photos / "trip"], out, method="blur",
                       neutral_names=True, engine=engine3d)
    assert report.mapping == tmp_path / "share.private-mapping.csv"
    assert out not in report.mapping.parents
    assert stat.S_IMODE(os.stat(report.mapping).st_mode) == 0o600
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and all(len(n) == 20 and n.endswith(".png") for n in names)
    with report.mapping.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["output"] for r in rows} == set(names)
    assert {r["original_path"] for r in rows} == {str(photos / "alice.jpg"),
                                                  str(photos / "trip" / "Zoë Ångström.jpg")}
    for name in names:
        data = (out / name).read_bytes()
        for stem in ("alice", "Zoë", "Ångström", "trip"):
            assert stem.encode() not in data and stem.encode("utf-16-le") not in data
    # A re-run finds what the mapping lists and writes nothing new.
    again = anonymize([photos / "alice.jpg", photos / "trip"], out, method="blur",
                      neutral_names=True, engine=engine3d)
    assert not again.written and len(again.skipped_existing) == 2
    assert sorted(p.name for p in out.iterdir()) == names
    with pytest.raises(AnonymizeError, match="must not be inside the output folder"):
        anonymize([photos], out, neutral_names=True, mapping=out / "sub" / "map.csv")


def test_group_photo_3d_surrogates_put_back_into_the_photo(photos, engine3d, analyzer,
                                                           tmp_path):
    report = anonymize([photos / "group.png"], tmp_path / "o", method="3d", seed=2,
                       engine=engine3d)
    assert report.faces_replaced == 4 and report.written == [tmp_path / "o" / "group.png"]
    src = load_image(photos / "group.png").rgb
    new = np.asarray(Image.open(report.written[0]).convert("RGB"))
    faces, hulls = face_hulls(analyzer, src)
    for hull in hulls:
        assert changed(src, new, hull)
    far = far_from_faces(faces, src.shape)
    assert np.array_equal(new[far], src[far])


def test_gan_surrogates_in_the_photo(photos, analyzer, tmp_path):
    report = anonymize([photos / "bob.jpg"], tmp_path / "o", method="gan", seed=2)
    src = load_image(photos / "bob.jpg").rgb
    new = np.asarray(Image.open(tmp_path / "o" / "bob.png").convert("RGB"))
    assert report.faces_replaced == 1 and new.shape == src.shape
    faces, hulls = face_hulls(analyzer, src)
    assert changed(src, new, hulls[0])
    far = far_from_faces(faces, src.shape)
    assert np.array_equal(new[far], src[far])


@pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
def test_naive_methods_cover_every_face(photos, engine3d, analyzer, tmp_path, method):
    report = anonymize([photos / "group.png"], tmp_path / "o", method=method, engine=engine3d)
    assert report.faces_replaced == 4
    import cv2

    src = load_image(photos / "group.png").rgb
    new = np.asarray(Image.open(tmp_path / "o" / "group.png").convert("RGB"))
    _, hulls = face_hulls(analyzer, src)
    def detail(rgb: np.ndarray) -> np.ndarray:  # what a blur of σ 3 px takes away
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return grey - cv2.GaussianBlur(grey, (0, 0), 3.0)

    detail_new, detail_src = detail(new), detail(src)
    for hull in hulls:
        if method == "mask":
            assert new[hull].max() == 0
        elif method == "pixelate":  # a mosaic of about 8 blocks across the face
            assert len(np.unique(new[hull], axis=0)) < 150 < len(np.unique(src[hull], axis=0))
        else:  # the face's fine detail is gone
            assert detail_new[hull].var() < 0.1 * detail_src[hull].var()


def test_out_dir_inside_the_input_and_name_clashes(photos, engine3d, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "alice.jpg", folder / "me.jpg")
    Image.open(photos / "bob.jpg").save(folder / "me.png")
    out = folder / "anonymised"
    first = anonymize([folder], out, method="blur", engine=engine3d)
    assert sorted(p.name for p in first.written) == ["me.png", "me_png.png"]
    second = anonymize([folder], out, method="blur", engine=engine3d)
    assert not second.written and len(second.skipped_existing) == 2  # not its own outputs
    assert sorted(p.name for p in out.rglob("*")) == ["me.png", "me_png.png"]


def test_command_line_exit_codes_and_messages(photos, tmp_path, capsys):
    from studio.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alice.jpg", "bob.jpg"):
        shutil.copy(photos / name, folder / name)
    out = tmp_path / "out"
    args = [str(folder), "-o", str(out), "--method", "blur", "--quiet"]
    assert main(["anonymize", *args]) == 0
    said = capsys.readouterr()
    assert (f"2 photos written to {out} (2 faces found: 2 replaced by blur, 0 blurred, "
            "0 masked)") in said.out
    written = hashes(out)
    assert sorted(written) == ["alice.png", "bob.png"]
    assert main(["anonymize", *args]) == 1
    said = capsys.readouterr()
    assert "2 skipped (output exists, not overwritten)" in said.out
    assert f"{out / 'alice.png'} exists already; skipped, not overwritten" in said.err
    assert hashes(out) == written
    shutil.copy(photos / "broken.jpg", folder / "broken.jpg")
    assert main(["anonymize", str(folder), "-o", str(tmp_path / "o2"), "--method", "blur",
                 "--quiet"]) == 1
    said = capsys.readouterr()
    assert "broken.jpg: this is not an image file" in said.err and "1 unreadable" in said.out
    for bad, why in ((["--method", "swirl"], "unknown method 'swirl'"),
                     (["--method", "blur", "--context", "blur"],
                      "replace the face in its photo: context"),
                     (["--neutral-names", "--mapping", str(out / "m.csv")], "must not be inside"),
                     (["--mapping", str(tmp_path / "m.csv")], "goes with --neutral-names")):
        assert main(["anonymize", str(folder), "-o", str(out), *bad]) == 2
        assert why in capsys.readouterr().err
    assert main(["anonymize", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert hashes(out) == written


def test_the_command_in_a_fresh_process_gives_the_same_bytes(context_run, photos, tmp_path):
    """Issue 27's determinism, through the real command: the same photos and seed give the
    same PNG bytes in another process, with two photos in flight, as in this one."""
    import subprocess
    import sys

    _, out, _, _ = context_run
    again = tmp_path / "again"
    done = subprocess.run([sys.executable, "-m", "studio", "anonymize", str(photos), "-o",
                           str(again), "--method", "context", "--seed", "5", "--workers", "2",
                           "--quiet"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr  # the broken and the face-less photo
    assert hashes(again) == hashes(out)


def test_the_window_s_sliders_repaint_the_same_bytes(engine3d, held_out):
    """The same photo, seed and sliders give the same in-context photo, verified (Save)
    or live, with the photo's fit measured anew in between."""
    from dataclasses import replace

    from studio.core.surrogates.incontext import ContextRequest

    image = load_image(held_out[3].path)
    faces = engine3d.analyze(image).faces
    request = ContextRequest(seed=5, targets=replace(faces[0].attributes, joy=0.8, yaw=6.0))
    for verify in (True, False):
        first = engine3d.in_context(image, faces, request, verify=verify)
        engine3d._prepared = None  # the fit and light measured again
        second = engine3d.in_context(image, faces, request, verify=verify)
        assert first.image.tobytes() == second.image.tobytes()
        assert not np.array_equal(first.image, image.rgb)


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
def test_a_bad_refiner_file_is_said_once_and_the_faces_go_unrefined(photos, engine3d,
                                                                    tmp_path, capsys,
                                                                    monkeypatch, fault):
    """Issue 27's bad input, through the real command: a missing or corrupt refiner file
    is named once (not once per photo), every photo is written whole with the unrefined
    composite, and the run succeeds."""
    from studio.cli import main
    from studio.core.refiner import model
    from studio.core.surrogates import incontext
    from studio.core.surrogates.whole_photo import photo_seed, replace_faces

    bad = tmp_path / "refiner_128.safetensors"
    if fault == "corrupt":
        bad.write_bytes(b"\x00" * 40)
    monkeypatch.setattr(incontext, "load_refiner", lambda: model.load_refiner(bad))
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alice.jpg", "bob.jpg"):
        shutil.copy(photos / name, folder / name)
    out = tmp_path / "out"
    assert main(["anonymize", str(folder), "-o", str(out), "--method", "context", "--seed",
                 "5", "--workers", "1", "--quiet"]) == 0
    said = capsys.readouterr()
    why = "are missing" if fault == "missing" else "cannot be read"
    assert said.err.count(str(bad)) == 1 and why in said.err and "not refined" in said.err
    assert "2 photos written" in said.out
    assert sorted(p.name for p in out.iterdir()) == ["alice.png", "bob.png"]  # no partial
    for name in ("alice", "bob"):
        image = load_image(folder / f"{name}.jpg")
        raw = replace_faces(engine3d, image, engine3d.analyze(image).faces, "context-raw",
                            photo_seed(5, image.rgb))
        assert np.array_equal(np.asarray(Image.open(out / f"{name}.png")), raw.image)
