"""Readers for the research face sets in ``../shared/data`` (read in place, never copied),
their splits, and the training manifest that says which images and people a model saw."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.assets import PROJECT_ROOT, sha256_of
from studio.core.errors import StudioError


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


#: Share of celeba-id identities that models may train on; the rest is for evaluation only.
CELEBA_TRAIN_SHARE = 0.5


def celeba_train_identity(identity: int) -> bool:
    """True for a "train" identity: a stable hash of the id (not Python's ``hash``, which
    changes between runs) against ``CELEBA_TRAIN_SHARE``."""
    digest = hashlib.sha256(f"celeba-id/{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < CELEBA_TRAIN_SHARE * 2 ** 64


def celeba_split(items: list[CelebaItem], split: str) -> list[CelebaItem]:
    """celeba-id split by identity: "train", "test" (evaluation only) or "all"; a person's
    photos are all on one side."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown celeba-id split {split!r}")
    if split == "all":
        return list(items)
    return [it for it in items if celeba_train_identity(it.identity) == (split == "train")]


# -- training manifests -------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    dataset: str  # genki4k | utkface | celeba-id (the folder name under data_root())
    identity: int | None  # the celeba-id identity; None where a photo is its own person


@dataclass
class TrainingManifest:
    """Every image a model's build read (hash, data set, identity), kept beside its weights,
    so that an evaluation can tell which of its photos and people the model has seen."""

    model: str
    entries: list[ManifestEntry]
    _images: set[str] | None = field(default=None, init=False, repr=False, compare=False)
    _identities: set[tuple[str, int]] | None = field(default=None, init=False, repr=False,
                                                     compare=False)

    COLUMNS = ("sha256", "dataset", "identity")

    @classmethod
    def of_files(cls, model: str, files: Iterable[tuple[str, Path, int | None]]
                 ) -> TrainingManifest:
        """From (data set, path, identity) triples, hashing each file."""
        return cls(model, [ManifestEntry(sha256_of(Path(p)), d, i) for d, p, i in files])

    def contains_image(self, sha256: str) -> bool:
        if self._images is None:
            self._images = {e.sha256 for e in self.entries}
        return sha256 in self._images

    def contains_identity(self, dataset: str, identity: int | str | None) -> bool:
        if identity is None:
            return False
        if self._identities is None:
            self._identities = {(e.dataset, e.identity) for e in self.entries
                                if e.identity is not None}
        try:
            return (dataset, int(identity)) in self._identities
        except ValueError:
            return False

    def merged(self, other: TrainingManifest) -> TrainingManifest:
        """This manifest plus the entries of ``other`` it lacks: weights trained on
        further (resumed) keep what they saw before."""
        have = set(self.entries)
        return TrainingManifest(self.model,
                                self.entries + [e for e in other.entries if e not in have])

    def identities(self, dataset: str) -> set[int]:
        return {e.identity for e in self.entries
                if e.dataset == dataset and e.identity is not None}

    def save(self, path: Path) -> None:
        """Gzip CSV, a ``# model: NAME`` line first; byte-identical for the same entries."""
        text = io.StringIO()
        text.write(f"# model: {self.model}\n")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for e in self.entries:
            writer.writerow((e.sha256, e.dataset, "" if e.identity is None else e.identity))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                    mtime=0) as fh:
            fh.write(text.getvalue().encode())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrainingManifest:
        try:
            text = gzip.decompress(Path(path).read_bytes()).decode()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise StudioError(f"{path} is not a training manifest: {exc}") from exc
        lines = text.splitlines()
        if len(lines) < 2 or not lines[0].startswith("# model: ") or \
                tuple(lines[1].split(",")) != cls.COLUMNS:
            raise StudioError(f"{path} is not a training manifest (no model line or header)")
        entries = []
        for row in csv.reader(lines[2:]):
            sha, dataset, ident = row
            entries.append(ManifestEntry(sha, dataset, int(ident) if ident else None))
        return cls(lines[0][len("# model: "):], entries)


def manifest_path(weights: Path) -> Path:
    """Where a model's training manifest lives: beside its weights, named after them."""
    weights = Path(weights)
    return weights.with_name(f"training_manifest_{weights.stem}.csv.gz")
