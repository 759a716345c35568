"""The layers of docs/architecture.md, as import-linter contracts, and the module budget."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports over the ``studio`` package found in ``root``, with the project's
    contracts (its cache off, so that a copied tree is analysed afresh)."""
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The package and its contracts, copied, so that a test can break a layer."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "studio", root / "studio",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("studio/core/metrics/comparison.py", "import PySide6.QtGui",
     "The core imports no window, command line, Qt or progress bar"),
    ("studio/core/analysis/framing.py", "import pyqtgraph",
     "The core imports no window, command line, Qt or progress bar"),
    ("studio/core/workspace/batch.py", "from tqdm import tqdm",
     "The core imports no window, command line, Qt or progress bar"),
    ("studio/core/workspace/store.py", "import studio.ui.state",
     "The command line over the windows over the core"),
    ("studio/core/analysis/images.py", "import studio.core.generator.latent",
     "Core wings follow the data"),
    ("studio/core/evaluation/methods.py", "import studio.core.workspace.store",
     "Core wings follow the data"),
])
def test_a_broken_layer_fails(tree_copy, module, line, contract):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # a layer broken on purpose\n")
    try:
        proc = lint(tree_copy)
    finally:
        path.write_text(original)
    assert proc.returncode != 0
    broken = [ln for ln in proc.stdout.splitlines() if "BROKEN" in ln]
    assert any(ln.startswith(contract) for ln in broken), proc.stdout


def test_modules_stay_small_and_the_core_is_grouped():
    too_long = {str(p.relative_to(ROOT)): n for p in (ROOT / "studio").rglob("*.py")
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not too_long, f"modules over 450 lines: {too_long}"
    top = [p.name for p in (ROOT / "studio" / "core").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 6, top
    wings = {p.name for p in (ROOT / "studio" / "core").iterdir()
             if p.is_dir() and (p / "__init__.py").is_file()}
    assert wings == {"analysis", "generator", "morphable", "metrics", "refiner", "surrogates",
                     "evaluation", "workspace", "crowd"}
