"""The studio command as a user runs it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest


def studio(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_subcommands():
    proc = studio("--help")
    assert proc.returncode == 0
    for name in ("gui", "analyze", "calibrate", "evaluate-analysis", "fetch-models"):
        assert name in proc.stdout


@pytest.mark.data
def test_analyze_json(utk_face_path):
    proc = studio("analyze", str(utk_face_path), "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == 1 and len(records[0]["faces"]) == 1
    face = records[0]["faces"][0]
    assert set(face["attributes"]) == {"joy", "p_male", "yaw", "pitch", "roll"}
    assert len(face["descriptor"]) == 128
    assert face["attributes"]["p_male"] > 0.5  # file name says male
    assert "detect" in records[0]["timings_ms"]


def test_analyze_demo_text():
    proc = studio("analyze", "--demo")
    assert proc.returncode == 0, proc.stderr
    assert "1 face" in proc.stdout and "joy" in proc.stdout and "timings" in proc.stdout


def test_analyze_bad_inputs_exit_nonzero(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (120, 130, 140)).save(blank)
    proc = studio("analyze", str(text), str(blank))
    assert proc.returncode == 1
    assert "notes.jpg: this is not an image file" in proc.stderr
    assert "no face found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert studio("analyze", str(tmp_path / "missing.png")).returncode == 1


def test_gui_without_a_display_says_so():
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "studio", "gui"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "no display" in proc.stderr


# --- the parser: every command, the shared options, the attribute flags -----------------

#: The commands that report progress, with the arguments each one requires.
PROGRESS_COMMANDS = {
    "calibrate": [], "build-morphable": [], "evaluate-3d": [], "evaluate-analysis": [],
    "train": [], "evaluate-generator": [], "batch": ["photos", "--workspace", "w.studio"],
    "evaluate": ["--data", "photos", "--out", "report"], "manifests": [], "generate": [],
    "evaluate-realism": [], "anonymize": ["photos", "-o", "out"], "evaluate-incontext": [],
    "study": ["photos", "out"], "refiner-pairs": [], "train-refiner": [],
}


def subparsers() -> dict:
    import argparse

    from studio.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_has_help_and_the_help_stays_light():
    names = subparsers()
    assert len(names) == 26  # relink joined the seventeen, then manifests, evaluate-realism,
    # anonymize, evaluate-incontext, accept, study, refiner-pairs, train-refiner
    code = ("import sys\nfrom studio.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'PySide6', 'mediapipe', 'matplotlib', 'tqdm',"
            " 'skimage', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            subparsers()[name].parse_args(["--help"])
        assert exit_.value.code == 0


def test_attribute_flags_come_from_the_spec():
    from dataclasses import replace

    from studio.cli.options import attributes_from
    from studio.core.analysis.attributes import NAMES, SPECS, Attributes

    for name in ("generate", "interpolate"):
        parser = subparsers()[name]
        actions = {a.dest: a for a in parser._actions}
        for s in SPECS:
            action = actions[s.name]
            assert action.option_strings == [f"--{s.flag}"]
            assert action.default == s.default and action.help.startswith(s.help)
            assert action.type(str(s.high)) == s.high  # the spec's range, from the spec
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(str(s.high + 1))
        assert attributes_from(parser.parse_args([])) == Attributes.defaults()
        args = parser.parse_args(["--male", "0.2", "--yaw", "-10", "--joy", "1"])
        assert attributes_from(args) == replace(Attributes.defaults(), p_male=0.2, yaw=-10.0,
                                                joy=1.0)
    along = {a.dest: a for a in subparsers()["interpolate"]._actions}["along"]
    assert tuple(along.choices) == NAMES


def test_quiet_is_there_exactly_where_progress_is_reported():
    import inspect

    for name, parser in subparsers().items():
        reports = "progress_for(" in inspect.getsource(parser.get_default("func"))
        has_quiet = any("--quiet" in a.option_strings for a in parser._actions)
        assert reports == has_quiet == (name in PROGRESS_COMMANDS), name
    for name, required in PROGRESS_COMMANDS.items():
        parser = subparsers()[name]
        assert parser.parse_args([*required, "--quiet"]).quiet
        assert not parser.parse_args(required).quiet


class Recorder:
    """Stands in for a core function: remembers the progress it was given."""

    def __init__(self, result):
        self.result, self.progress = result, "not called"

    def __call__(self, *args, progress=None, **kwargs):
        from studio.cli.options import TqdmProgress

        assert progress is None or isinstance(progress, TqdmProgress)
        if progress is not None:
            progress(1, 2, "stage: detail")
        self.progress = progress
        return self.result


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_passes_no_progress_and_otherwise_bars(monkeypatch, tmp_path, capsys, quiet):
    from types import SimpleNamespace

    from studio.cli import main
    from studio.core.analysis import fit_calibration
    from studio.core.evaluation import job

    calibration = SimpleNamespace(info={"fitted": True}, save=lambda: None)
    run = SimpleNamespace(problems=[], datasets=[], computed=0, seconds=0.0)
    done = SimpleNamespace(run=run, results=[], index=tmp_path / "index.html")
    fit, evaluate = Recorder(calibration), Recorder(done)
    monkeypatch.setattr(fit_calibration, "fit", fit)
    monkeypatch.setattr(job, "evaluate_folders", evaluate)
    flags = ["--quiet"] if quiet else []
    assert main(["calibrate", *flags]) == 0
    assert main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path), *flags]) == 0
    out = capsys.readouterr()
    assert '"fitted": true' in out.out and "0 photos, 0 analysed now" in out.out
    for recorder in (fit, evaluate):
        assert (recorder.progress is None) == quiet
        if not quiet:
            assert recorder.progress.bar is None  # closed on the way out
    assert ("stage: " in out.err and "detail" in out.err) != quiet


def test_ctrl_c_exits_130(monkeypatch, capsys):
    from studio.cli import main
    from studio.core.crowd import power

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(power, "simulate_power", interrupted)
    assert main(["power", "--reps", "5"]) == 130
    assert "interrupted" in capsys.readouterr().err


# --- the tqdm adapter of the core's progress protocol -----------------------------------


def test_tqdm_progress_one_bar_per_stage_and_total():
    import io

    from studio.cli.options import TqdmProgress

    out = io.StringIO()
    with TqdmProgress(file=out, mininterval=0) as progress:
        progress(0, 3, "labelling")
        first = progress.bar
        progress(2, 3, "labelling: 2 faces, 1.5 faces/s")
        assert progress.bar is first and first.n == 2
        assert (first.desc, first.total, first.postfix) == ("labelling", 3, "2 faces, 1.5 faces/s")
        progress(3, 3, "labelling: 3 faces: all")  # only the first ": " splits
        assert progress.bar is first and first.n == 3 and first.postfix == "3 faces: all"
        progress(0, 5, "cropping")  # a new stage
        second = progress.bar
        assert second is not first and first.disable  # the old bar is closed
        assert (second.desc, second.total, second.n) == ("cropping", 5, 0)
        progress(4, 7, "cropping")  # the same stage with another total
        third = progress.bar
        assert third is not second and second.disable
        assert (third.desc, third.total, third.n) == ("cropping", 7, 4)
        progress(1, 7, "cropping")  # counting again from the start
        assert progress.bar is not third and progress.bar.n == 1
        progress(5, 0, "walking")  # an unknown total: a counter
        assert progress.bar.total is None and progress.bar.n == 5
        last = progress.bar
    assert progress.bar is None and last.disable
    text = out.getvalue()
    assert "labelling: 100%" in text and "2 faces, 1.5 faces/s" in text
    assert "cropping:  57%|" in text and "walking: 5it" in text


def test_tqdm_progress_closes_its_bar_when_interrupted():
    import io

    from studio.cli.options import TqdmProgress

    with pytest.raises(KeyboardInterrupt), TqdmProgress(file=io.StringIO()) as progress:
        progress(1, 10, "photos")
        bar = progress.bar
        raise KeyboardInterrupt
    assert bar.disable and progress.bar is None


# --- commands run for real ---------------------------------------------------------------


def test_generate_draws_a_square_sheet(tmp_path):
    import numpy as np
    from PIL import Image

    from studio.core.analysis.attributes import Attributes
    from studio.core.generator.sampler import Sampler

    out = tmp_path / "tmp.png"
    proc = studio("generate", "-n", "4", "--seed", "3", "--size", "40", "--male", "0.9",
                  "--device", "cpu", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 faces ({'joy': 0.5, 'p_male': 0.9, ")
    assert proc.stdout.rstrip().endswith(f"-> {out}")
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (80, 80, 3)  # 2 x 2 faces of 40 pixels, no gap
    attrs = Attributes(0.5, 0.9, 0.0, 0.0, 0.0)
    faces = Sampler(device="cpu").sample(attrs, seed=3, n=4)
    for i, face in enumerate(faces):
        tile = np.asarray(Image.fromarray(face).resize((40, 40), Image.LANCZOS))
        row, col = divmod(i, 2)
        np.testing.assert_array_equal(sheet[row * 40:(row + 1) * 40, col * 40:(col + 1) * 40],
                                      tile)


def test_power_quick_run(tmp_path, capsys):
    from studio.cli import main
    from studio.core.crowd.power import simulate_power

    out = tmp_path / "power"
    assert main(["power", "--p1", "0.6", "--p2", "0.7", "--reps", "20", "--alpha", "0.1",
                 "--seed", "3", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("p1 0.600  p2 0.700  reps 20  alpha 0.1  seed 3: ")
    assert lines[-2:] == [str(out / "power.csv"), str(out / "power.png")]
    assert (out / "power.png").stat().st_size > 10_000
    expected = simulate_power(0.6, 0.7, 20, 0.1, 3).write_csv(tmp_path / "expected.csv")
    assert (out / "power.csv").read_text() == expected.read_text()
    assert main(["power", "--alpha", "1"]) == 2
    assert "alpha in (0, 1)" in capsys.readouterr().err


@pytest.mark.data
def test_evaluate_analysis_bars_and_quiet(genki_test):  # the fixture skips without the data
    args = ("evaluate-analysis", "--limit", "3", "--gender-images", "3", "--identities", "2")
    loud, quiet = studio(*args), studio(*args, "--quiet")
    for proc in (loud, quiet):
        assert proc.returncode == 0, proc.stderr
        assert "smile accuracy, GENKI-4K test" in proc.stdout
    for stage in ("GENKI-4K test: 100%", "UTKFace gender: 100%", "celeba-id descriptors: 100%"):
        assert stage in loud.stderr and stage not in quiet.stderr
    assert "it/s" not in quiet.stderr


def test_train_refiner_tuning_options_set_the_settings_fields_of_their_names():
    from dataclasses import fields

    from studio.cli.refiner import DRAWS_FOR, TUNING
    from studio.core.refiner.training import RefinerSettings

    known = {f.name for f in fields(RefinerSettings)}
    assert {t.field for t in TUNING} | set(DRAWS_FOR.values()) <= known
    args = subparsers()["train-refiner"].parse_args(
        ["--l1-pool", "4", "--plain-parts", "--face-weighted", "--whole-face", "0.5"])
    given = {t.field: getattr(args, t.field) for t in TUNING
             if getattr(args, t.field) is not None}
    assert given == {"l1_pool": 4, "parts_sn": False, "face_weighted": True,
                     "whole_face": 0.5}
