"""The studio command as a user runs it."""

from __future__ import annotations

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
