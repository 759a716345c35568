"""Readers for the research face sets in ``../shared/data`` (read in place, never copied)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.assets import PROJECT_ROOT


def data_root() -> Path:
    """``STUDIO_DATA`` or ``../shared/data`` beside the project."""
    return Path(os.environ.get("STUDIO_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def data_available() -> bool:
    root = data_root()
    return all((root / name).is_dir() for name in ("genki4k", "utkface", "celeba-id"))


@dataclass(frozen=True)
class GenkiItem:
    stem: str
    path: Path
    smile: int
    yaw: float  # degrees, GENKI's own labels
    pitch: float
    roll: float
    test: bool


def genki(split: str = "all", folder: Path | None = None) -> list[GenkiItem]:
    """GENKI-4K items; ``split`` is "train" (2,800), "test" (1,200) or "all"."""
    root = folder or data_root() / "genki4k"
    labels = np.loadtxt(root / "labels.txt", ndmin=2)
    test = set((root / "test_split.txt").read_text().split())
    items = []
    for i, row in enumerate(labels):
        stem = f"file{i + 1:04d}"
        yaw, pitch, roll = np.degrees(row[1:4])
        item = GenkiItem(stem, root / "files" / f"{stem}.jpg", int(row[0]), float(yaw),
                         float(pitch), float(roll), stem in test)
        if split == "all" or (split == "test") == item.test:
            items.append(item)
    return items


@dataclass(frozen=True)
class UtkItem:
    path: Path
    age: int
    male: bool
    race: int


def utkface(folder: Path | None = None) -> list[UtkItem]:
    """UTKFace items sorted by file name (age_gender_race_datetime; gender 0 is male)."""
    items = []
    for path in sorted(((folder or data_root() / "utkface") / "images").glob("*.jpg")):
        age, gender, race = path.name.split("_")[:3]
        items.append(UtkItem(path, int(age), gender == "0", int(race)))
    return items


#: Every 23rd UTKFace image (sorted by name) is held out from generator training and
#: calibration, 1,000+ images for evaluation.
UTK_HOLDOUT_STRIDE = 23


def utk_split(items: list[UtkItem], split: str) -> list[UtkItem]:
    keep = (lambda i: i % UTK_HOLDOUT_STRIDE == 0) if split == "test" else (
        lambda i: i % UTK_HOLDOUT_STRIDE != 0)
    return [it for i, it in enumerate(items) if keep(i)]


@dataclass(frozen=True)
class CelebaItem:
    path: Path
    identity: int


def celeba_id(folder: Path | None = None) -> list[CelebaItem]:
    root = folder or data_root() / "celeba-id"
    items = []
    for line in (root / "identity.txt").read_text().split("\n"):
        if line.strip():
            name, ident = line.split()
            items.append(CelebaItem(root / "images" / name, int(ident)))
    return items
