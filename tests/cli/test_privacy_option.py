"""The privacy presets through the commands' entry point in this process: ``studio anonymize
--privacy`` (a bad preset or a contradicting option is one line and exit 2 before any model
loads; strict on a real held-out photo blurs its context and repeats for a seed), and the
in-context method under each other preset as a method of ``studio batch`` and ``studio
evaluate`` (``context-strict``), recorded by its key in the workspace."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from studio.core.workspace.store import Workspace

pytestmark = pytest.mark.data


def _run(argv: list[str]) -> int:
    from studio.cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own refusals
        return int(exc.code)


@pytest.mark.parametrize(("extra", "says"), [
    (["--privacy", "lax"], "unknown privacy preset 'lax'; use default, strict"),
    (["--privacy", "strict", "--context", "keep"], "--privacy strict blurs the context"),
    (["--privacy", "strict", "--method", "blur"], "--privacy strict is for the methods"),
])
def test_a_bad_preset_is_one_line_and_nothing_is_made(tmp_path, utk_face_path, capsys,
                                                      extra, says):
    out = tmp_path / "out"
    code = _run(["anonymize", str(utk_face_path), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and says in errors[0], err
    assert not out.exists()


def test_strict_blurs_the_context_and_repeats_for_a_seed(tmp_path, held_out_adults, capsys):
    photo = held_out_adults[3].path
    made = {}
    for name, extra in (("default", []), ("strict", ["--privacy", "strict"]),
                        ("again", ["--privacy", "strict"])):
        code = _run(["anonymize", str(photo), "-o", str(tmp_path / name), "--seed", "5",
                     "--workers", "1", "--quiet", *extra])
        assert code == 0, capsys.readouterr().err[-2000:]
        made[name] = np.asarray(Image.open(tmp_path / name / f"{photo.stem}.png"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert np.array_equal(made["strict"], made["again"])
    corner = (slice(0, 16), slice(0, 16))  # the photo's top left: hair or background

    def moved(image: np.ndarray) -> float:
        return float(np.abs(image[corner].astype(int) - original[corner]).mean())

    assert moved(made["default"]) < 0.5 and moved(made["strict"]) > 2, (
        moved(made["default"]), moved(made["strict"]))


def test_batch_and_evaluate_offer_strict_and_batch_records_it(tmp_path, held_out_adults,
                                                             capsys):
    for command in ("batch", "evaluate"):
        assert _run([command, "--help"]) == 0
        assert "context-strict" in "".join(capsys.readouterr().out.split())  # wrapped at "-"
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(held_out_adults[3].path, folder / held_out_adults[3].path.name)
    path = tmp_path / "strict.studio"
    code = _run(["batch", str(folder), "--workspace", str(path), "--methods", "context-strict",
                 "--candidates", "1", "--workers", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err[-2000:]
    with Workspace(path) as ws:
        assert [c.method for c in ws.candidates()] == ["context-strict"]
        (face,) = ws.faces()
        assert face.descriptor2 is not None and face.descriptor2.shape == (192,)
