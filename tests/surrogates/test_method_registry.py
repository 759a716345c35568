"""The registry of surrogate methods: a method registered at run time is offered by
``studio anonymize --method``, ``studio batch --methods``, the evaluation's method list
and the curation rules, and is made by them, with no other file touched."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from studio.cli import build_parser, main
from studio.core.analysis.images import load_image
from studio.core.surrogates.method_makers import MethodMaker
from studio.core.surrogates.registry import REGISTRY, MethodSpec
from studio.core.surrogates.whole_photo import Replaced

pytestmark = pytest.mark.data


class Negative(MethodMaker):
    """A toy method: the face's region in negative (inside the photo, not seeded)."""

    def apply(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        from studio.core.surrogates.baselines import face_region

        out = rgb.copy()
        inside = face_region(rgb.shape, landmarks) > 0
        out[inside] = 255 - out[inside]
        return out

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        return [self.apply(image.rgb, face.landmarks) for _ in seeds]

    def replace(self, engine, image, faces, seed, context=None) -> Replaced:
        out = image.rgb
        for face in faces:
            out = self.apply(out, face.landmarks)
        return Replaced(out, len(faces), 0)


@pytest.fixture
def toy():
    spec = REGISTRY.register(MethodSpec("toy", "the face in negative", "#123456", Negative,
                                        in_photo=True, anonymize=True, candidate=True))
    yield spec
    REGISTRY.unregister(spec.key)


def help_of(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_registry_refuses_a_second_method_of_the_same_key(toy) -> None:
    with pytest.raises(ValueError, match="registered already"):
        REGISTRY.register(MethodSpec("toy", "again", "#000000", Negative))
    assert "toy" not in REGISTRY.batch_defaults()  # made only when asked for


def test_a_method_registered_at_run_time_is_offered_and_made_everywhere(
        toy, utk_face_path, engine, tmp_path, capsys) -> None:
    from studio.core.evaluation.methods import METHODS, families, methods_for
    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.rules import parse_rule
    from studio.core.workspace.store import Workspace

    # studio anonymize: offered, and the face leaves in negative.
    assert "toy: the face in negative" in help_of("anonymize", capsys)
    out = tmp_path / "out"
    assert main(["anonymize", str(utk_face_path), "-o", str(out), "--method", "toy",
                 "--seed", "1", "--quiet"]) == 0
    before = load_image(utk_face_path).rgb.astype(int)
    after = load_image(out / f"{utk_face_path.stem}.png").rgb.astype(int)
    face = engine.analyze(load_image(utk_face_path)).faces[0]
    from studio.core.surrogates.baselines import face_region

    x0, y0, x1, y1 = (int(v) for v in face.box)
    assert np.abs(after - before)[y0:y1, x0:x1].mean() > 40  # the face changed
    outside = face_region(before.shape, face.landmarks, 0.3) == 0
    assert outside.mean() > 0.05 and np.abs(after - before)[outside].mean() < 2  # only it

    # studio batch: offered, and its candidates made and measured in a workspace.
    assert "toy (the face in negative)" in help_of("batch", capsys)
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(utk_face_path, folder / "one.jpg")
    with Workspace(tmp_path / "w.studio", create=True) as ws:
        report = run_batch(folder, ws, engine, candidates=1, methods=("toy",))
        assert report.candidates == 1
        made = ws.candidates()
        assert [c.method for c in made] == ["toy"]
        assert parse_rule('method == "toy"') is not None  # a rule may name it

    # The evaluation: a family of its own, measured after the original.
    assert "toy" in families() and METHODS["toy"] is toy
    assert [m.key for m in methods_for(["toy"])] == ["original", "toy"]
    assert "toy" in help_of("evaluate", capsys)
