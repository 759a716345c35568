"""Issue 25: every face found, and none written untouched (detector, crop fits, the rule)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import cv2
import numpy as np
import pytest

from studio.core.analysis.detector import FaceDetector, fine_scale, levels, merge_boxes, tiles
from studio.core.analysis.images import load_image
from studio.core.datasets import data_available, data_root, utk_split, utkface
from studio.core.errors import ModelFileError
from studio.core.surrogates.unfitted import cover_unfitted, guard, untouched


@pytest.fixture(scope="module")
def held_out() -> list[np.ndarray]:
    """Held-out UTKFace photos (the every-23rd split no model trained on)."""
    if not data_available():
        pytest.skip(f"research face data not found at {data_root()}")
    items = utk_split(utkface(), "test")
    return [load_image(items[i].path).rgb for i in (100, 101, 102, 103, 104, 140)]


@pytest.fixture(scope="module")
def search_analyzer():
    from studio.core.analysis.analyzer import FaceAnalyzer

    with FaceAnalyzer(identity=False, gender=False, recall=True) as a:
        yield a


def _texture(h: int, w: int) -> np.ndarray:
    import skimage.data

    return cv2.resize(skimage.data.coffee(), (w, h), interpolation=cv2.INTER_LINEAR)


def _paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int) -> tuple:
    """``face`` resized to ``side`` at (x, y), clipped by the canvas; its face box."""
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    canvas[y0:y1, x0:x1] = small[y0 - y:y1 - y, x0 - x:x1 - x]
    # UTKFace's aligned chips hold the face in about their middle 60%.
    return (x + 0.2 * side, y + 0.2 * side, x + 0.8 * side, y + 0.85 * side)


def test_tiles_cover_with_overlap_and_levels_shrink() -> None:
    spans = tiles(5000)
    assert spans[0][0] == 0 and spans[-1][1] == 5000
    assert all(b[0] < a[1] - 90 for a, b in itertools.pairwise(spans))
    scales = levels(6000, 8000, 12)
    assert scales[0] == 1.0 and scales[-1] * 8000 <= 1024
    assert fine_scale(12) > 1 and levels(600, 800, 40)[0] < 1  # large faces only: shrunk
    assert all(b < a for a, b in itertools.pairwise(scales))


def test_merge_keeps_one_box_per_face() -> None:
    from studio.core.analysis.detector import FaceBox

    a = FaceBox((0, 0, 10, 10), 0.9, np.zeros((5, 2)))
    b = FaceBox((1, 1, 10, 10), 0.5, np.zeros((5, 2)))
    c = FaceBox((50, 0, 60, 10), 0.4, np.zeros((5, 2)))
    assert merge_boxes([b, c, a]) == [a, c]


def test_unfitted_rule_counts_weak_boxes_only_where_the_border_cuts_them() -> None:
    from studio.core.analysis.detector import FaceBox
    from studio.core.analysis.face_search import counts_unfitted

    def box(x0: float, y0: float, side: float, score: float) -> FaceBox:
        return FaceBox((x0, y0, x0 + side, y0 + side), score, np.zeros((5, 2)))

    shape = (480, 640, 3)
    assert counts_unfitted(box(300, 200, 28, 0.21), shape)  # a small face, scored as one
    assert not counts_unfitted(box(300, 200, 28, 0.16), shape)  # texture, in the middle
    assert counts_unfitted(box(300, 460, 28, 0.16), shape)  # half a face at the bottom
    assert not counts_unfitted(box(0, 200, 28, 0.10), shape)  # too weak even there
    assert not counts_unfitted(box(300, 200, 80, 0.3), shape)  # large: needs 0.4
    assert counts_unfitted(box(300, 200, 80, 0.45), shape)


def test_missing_detector_file_names_it_and_make_models(tmp_path, monkeypatch) -> None:
    import studio.core.assets as assets

    monkeypatch.setattr(assets, "third_party_dir", lambda: tmp_path)
    with pytest.raises(ModelFileError, match=r"centerface\.onnx.*make models"):
        FaceDetector()
    (tmp_path / "centerface.onnx").write_bytes(b"not a network")
    with pytest.raises(ModelFileError, match=r"centerface\.onnx.*corrupted"):
        FaceDetector()


def test_cover_and_guard_leave_no_face_untouched(held_out) -> None:
    photo = held_out[0].copy()
    small, large = (10, 10, 30, 30), (60, 50, 160, 170)
    out, fates = cover_unfitted(photo, [small, large], "mask")
    assert [f.kind for f in fates] == ["blurred", "masked"]
    assert not untouched(photo, out, small) and not untouched(photo, out, large)
    assert (out[110, 110] == 0).all()
    _, fates = cover_unfitted(photo, [large], "blur")
    assert fates[0].kind == "blurred"
    fixed, left = guard(photo, photo.copy(), [large])
    assert left == [0] and not untouched(photo, fixed, large)


@pytest.mark.data
def test_five_face_picture_every_face_changed(held_out, tmp_path) -> None:
    """The issue's case: one 500 px face and four of 120-170 px; all five leave changed."""
    canvas = _texture(600, 1000)
    boxes = [_paste(canvas, f, x, y, s) for f, (x, y, s) in zip(
        held_out, [(20, 50, 500), (560, 40, 170), (760, 60, 150), (560, 300, 120),
                   (760, 330, 140)], strict=False)]
    pic = tmp_path / "pic.png"
    cv2.imwrite(str(pic), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    run = subprocess.run([sys.executable, "-m", "studio", "anonymize", str(pic), "-o",
                          str(tmp_path / "out"), "--seed", "1", "--method", "pixelate",
                          "--quiet"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "5 faces found" in run.stdout
    out = load_image(tmp_path / "out" / "pic.png").rgb
    assert not [b for b in boxes if untouched(canvas, out, b)]


@pytest.mark.data
def test_same_face_found_at_every_offset(held_out, search_analyzer) -> None:
    """A portrait inside a larger frame is found wherever it sits (the issue's offsets)."""
    face = cv2.resize(held_out[1], (450, 450))
    for offset in (50, 90, 130, 170, 210):
        canvas = _texture(600, 800)
        box = _paste(canvas, face, offset, offset // 2, 350)
        analysis = search_analyzer.analyze(canvas)
        found = [f.box for f in analysis.faces] + [u.box for u in analysis.unfitted]
        assert any(f[0] < (box[0] + box[2]) / 2 < f[2] for f in found), offset


@pytest.mark.data
def test_small_and_cut_faces_are_found(held_out, search_analyzer) -> None:
    """A 30 px face, an 18 px face and one cut in half by the left border."""
    canvas = _texture(400, 600)
    boxes = [_paste(canvas, held_out[2], 300, 100, 50),  # a face about 30 px wide
             _paste(canvas, held_out[3], 450, 250, 30),  # about 18 px
             _paste(canvas, held_out[4], -80, 120, 200)]  # half off the left border
    analysis = search_analyzer.analyze(canvas)
    found = [f.box for f in analysis.faces] + [u.box for u in analysis.unfitted]
    for box in boxes:
        cx, cy = (max(box[0], 0) + box[2]) / 2, (box[1] + box[3]) / 2
        assert any(f[0] - 4 <= cx <= f[2] + 4 and f[1] - 4 <= cy <= f[3] + 4 for f in found), box


@pytest.mark.data
@pytest.mark.slow
def test_recall_benchmark_small_seeded_run() -> None:
    """benchmarks/bench_recall.py in small: no face of 20 px or more left untouched."""
    from studio.core.evaluation.group_pictures import compose, source_faces, tally
    from studio.core.surrogates.whole_photo import anonymize_engine, anonymize_rgb

    rng = np.random.default_rng(3)
    faces = source_faces(12, 3)
    pics = [compose(faces, rng, (900, 640), 6) for _ in range(3)]
    engine = anonymize_engine("blur")
    try:
        result = tally(pics, lambda rgb: anonymize_rgb(engine, rgb, "blur", 1).image)
    finally:
        engine.close()
    assert sum(result.total.values()) >= 12
    assert result.untouched_20 == 0
