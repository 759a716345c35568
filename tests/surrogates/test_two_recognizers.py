"""The read-back answers to both recognizers (issue 28): a surrogate the second recognizer
still matches to its original is drawn again, the batch's metrics carry its figure, and a
missing or corrupt recognizer file stops the check instead of leaving dlib alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from studio.core.analysis import recognizer
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.analysis.recognizer import MODEL_FILE
from studio.core.errors import ModelFileError
from studio.core.surrogates.incontext import ContextRequest
from studio.core.surrogates.verified import MARGINS, MOST_DRAWS, replace_verified

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def face(engine, utk_face):
    """A real held-out face, analysed by the engine (both recognizers' descriptors)."""
    found = largest_face(engine.analyzer.analyze(utk_face).faces)
    assert found.descriptor is not None and found.descriptor2 is not None
    return found


def _everyone_is_the_same(monkeypatch) -> None:
    """The second recognizer's threshold below every similarity: it says "same" always."""
    monkeypatch.setattr(recognizer, "same_person_threshold", lambda: -2.0)


def test_in_context_face_the_second_recognizer_matches_is_redrawn_then_blurred(
        engine, utk_face, face, monkeypatch):
    maker, analyzer = engine.incontext, engine.analyzer
    honest = replace_verified(maker, analyzer, utk_face, [face], ContextRequest(seed=5))
    (check,) = honest.checks
    assert check.distance >= 0.6 and check.similarity2 is not None  # both read it
    assert check.similarity2 < recognizer.same_person_threshold()

    _everyone_is_the_same(monkeypatch)
    strict = replace_verified(maker, analyzer, utk_face, [face], ContextRequest(seed=5))
    assert strict.draws == MOST_DRAWS  # dlib alone would have stopped at the first
    assert not strict.result.faces[0].replaced and "blurred" in " ".join(strict.result.notes)


def test_gan_draw_the_second_recognizer_matches_is_drawn_again(engine, face, monkeypatch):
    from studio.core.surrogates.gan_draws import GAN_DRAWS, draw_verified

    honest = draw_verified(engine.generator, engine.analyzer, face, 7)
    assert honest.comparison.similarity2 is not None
    _everyone_is_the_same(monkeypatch)
    strict = draw_verified(engine.generator, engine.analyzer, face, 7)
    assert strict.draws == GAN_DRAWS and not strict.passed
    with pytest.raises(ValueError, match="second recognizer"):
        draw_verified(engine.generator, engine.analyzer, replace(face, descriptor2=None), 7)


def test_batch_metrics_carry_both_figures(engine, utk_face, face):
    from studio.core.analysis.images import LoadedImage
    from studio.core.surrogates.making import CandidateMaker

    image = LoadedImage(utk_face, "<utk>", "RGB", False)
    for method in ("gan", "context"):
        ((png, metrics),) = CandidateMaker(engine).make_many(method, image, face, [3])
        assert png.startswith(b"\x89PNG")
        assert -1.0 <= metrics["arcface_similarity"] <= 1.0 and metrics["distance"] > 0


@pytest.mark.parametrize("corrupt", [False, True])
def test_missing_or_corrupt_recognizer_stops_the_check(engine, utk_face, face, tmp_path,
                                                       monkeypatch, corrupt):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    if corrupt:
        (tmp_path / MODEL_FILE).write_bytes(b"not the model")
    monkeypatch.setattr(engine.analyzer, "second", None)  # as a fresh analyzer has it
    with pytest.raises(ModelFileError) as err:
        replace_verified(engine.incontext, engine.analyzer, utk_face, [face],
                         ContextRequest(seed=5))
    assert MODEL_FILE in str(err.value) and "make models" in str(err.value)
    with pytest.raises(ModelFileError, match="make models"):
        from studio.core.metrics.comparison import compare

        compare(engine.analyzer, face, np.ascontiguousarray(utk_face[:, ::-1]))


def test_a_face_inside_the_read_back_margin_is_drawn_again_then_kept_and_said(
        engine, utk_face, face, monkeypatch):
    """A new face must clear each threshold by the read-back's margin; one that reaches
    the thresholds but never the margin is drawn to the last margin and with a new
    outline, then kept (it is another person to both) with a note, not blurred."""
    from studio.core.surrogates import verified

    first = replace_verified(engine.incontext, engine.analyzer, utk_face, [face],
                             ContextRequest(seed=5))
    assert first.draws < len(MARGINS)
    monkeypatch.setattr(verified, "READ_BACK", verified.ReadBackMargin(dlib=0.0, second=5.0))
    unreachable = replace_verified(engine.incontext, engine.analyzer, utk_face, [face],
                                   ContextRequest(seed=5))
    assert unreachable.draws == MOST_DRAWS
    assert unreachable.result.faces[0].replaced
    notes = " ".join(unreachable.result.notes)
    assert "inside the read-back's margin" in notes and "blurred" not in notes


def test_a_last_draw_that_falls_back_gives_way_to_the_last_one_that_cleared(
        engine, utk_face, face, monkeypatch):
    """Draws go on while a face is inside the margin; where the last draw reads as the same
    person again, the last draw that was another person to both is made again (draws are
    repeatable), instead of the face being blurred."""
    from studio.core.surrogates import verified

    real_read_back = verified.read_back
    reads = []

    def last_read_says_same(analyzer, rgb, faces, threshold=0.6):
        checks = real_read_back(analyzer, rgb, faces, threshold)
        reads.append(checks[0])
        if len(reads) == MOST_DRAWS:  # the last reading: the same person to ArcFace
            return [replace(checks[0], similarity2=0.99)]
        return checks

    monkeypatch.setattr(verified, "READ_BACK", verified.ReadBackMargin(dlib=0.0, second=5.0))
    monkeypatch.setattr(verified, "read_back", last_read_says_same)
    out = replace_verified(engine.incontext, engine.analyzer, utk_face, [face],
                           ContextRequest(seed=5))
    assert out.draws == MOST_DRAWS and len(reads) == MOST_DRAWS
    assert reads[-2].identity_ok()  # the draw before was another person to both
    assert out.result.faces[0].replaced
    assert "blurred" not in " ".join(out.result.notes)
    assert out.checks[0] == reads[-2]
    monkeypatch.setattr(verified, "read_back", real_read_back)
    again = verified.read_back(engine.analyzer, out.result.image, [face])[0]
    assert again.identity_ok()  # the picture is that draw's, made again
    assert again.distance == pytest.approx(reads[-2].distance, abs=1e-6)


def test_a_kept_outline_that_reads_as_the_original_is_drawn_anew(engine, utk_face, face,
                                                                  monkeypatch):
    """Past every margin, a face whose kept outline still reads as the original is drawn
    with the new identity's own outline (strict's) before it would be blurred, and the
    result says so."""
    from studio.core.surrogates import verified
    from studio.core.surrogates.incontext import Redraw

    real_read_back = verified.read_back
    reads = []

    def kept_outline_reads_same(analyzer, rgb, faces, threshold=0.6):
        checks = real_read_back(analyzer, rgb, faces, threshold)
        reads.append(checks[0])
        if len(reads) <= len(MARGINS):
            return [replace(checks[0], similarity2=0.99)]
        return checks

    monkeypatch.setattr(verified, "read_back", kept_outline_reads_same)
    maker = engine.incontext
    real_make, outlines = maker.make, []

    def make(rgb, faces, request, prepared=None, redraws=None):
        outlines.append((redraws or {}).get(0, Redraw()).outline)
        return real_make(rgb, faces, request, prepared, redraws)

    monkeypatch.setattr(maker, "make", make)
    out = replace_verified(maker, engine.analyzer, utk_face, [face], ContextRequest(seed=5))
    assert out.draws == len(MARGINS) + 1 and out.result.faces[0].replaced
    assert outlines == [None] * len(MARGINS) + ["new"]  # the request's, then its own
    notes = " ".join(out.result.notes)
    assert "own outline" in notes and "blurred" not in notes


def test_read_back_also_reads_the_new_face_at_the_original_place(engine, utk_face, face):
    """An attacker (and ``studio evaluate``) reads the output at the original's landmarks;
    so does the read-back, and the nearer of its two readings counts. Here the face found
    nearest is another person, and at the original's place is the original itself."""
    from studio.core.datasets import data_root
    from studio.core.surrogates import verified

    other_rgb = load_image(sorted((data_root() / "utkface" / "images")
                                  .glob("30_1_0_*.jpg"))[0]).rgb
    analyzer = engine.analyzer
    other = largest_face(analyzer.analyze(other_rgb).faces)
    side = np.concatenate([other_rgb, utk_face], 1)  # the other person left, ours right
    moved = face.landmarks.copy()
    moved[:, 0] += other_rgb.shape[1]
    original = replace(face, landmarks=moved)
    plain = float(np.linalg.norm(other.descriptor - face.descriptor))
    assert plain >= 0.6  # the found face alone: another person
    assert verified._nearer_distance(analyzer, side, other, original, 0.6) < 0.3
    (sim,) = verified._nearer_similarities(analyzer, side, [other], [original])
    assert float(np.dot(other.descriptor2, face.descriptor2)) < recognizer.same_person_threshold()
    assert sim > 0.9  # the original's place reads the original
