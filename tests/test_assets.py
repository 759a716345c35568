"""Model files: verified against the manifest, with one clear message when they are not."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from studio.core import assets
from studio.core.errors import ModelFileError


def test_every_manifest_file_is_present_and_verified():
    for entry in assets.manifest():
        path = assets.third_party_file(entry.name)
        assert path.is_file() and assets.sha256_of(path) == entry.sha256


def test_missing_file_names_file_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    with pytest.raises(ModelFileError) as info:
        assets.third_party_file("gender-v1.onnx")
    message = str(info.value)
    assert "gender-v1.onnx" in message and "make models" in message and "missing" in message


def test_corrupted_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    good = assets.third_party_dir  # noqa: F841 - the real folder is read below via MODELS_DIR
    src = assets.MODELS_DIR / "third_party" / "gender-v1.onnx"
    data = bytearray(src.read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "gender-v1.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupted"):
        assets.third_party_file("gender-v1.onnx")


def test_analysis_reports_missing_model_cleanly(tmp_path):
    # A fresh process with an empty model folder: one clear line, no traceback.
    env = {"STUDIO_THIRD_PARTY_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    shutil.copy(assets.MANIFEST, tmp_path / "unused.json")
    proc = subprocess.run([sys.executable, "-m", "studio", "analyze", "--demo"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "face_landmarker.task" in proc.stderr and "make models" in proc.stderr
    assert "Traceback" not in proc.stderr
