"""Labelled 64x64 training crops for the generator, built from the face analysis.

Labels are cached in a JSON-lines file keyed by the sha256 of each image's bytes, so a
re-run only analyses images it has not seen. Crops use translation and scale only (no
rotation), so roll stays in the picture.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.framing import CropFrame, crop
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import sha256_of
from studio.core.datasets import ManifestEntry, TrainingManifest
from studio.core.progress import Progress, track

file_sha256 = sha256_of  # the label cache's key


def read_cache(cache: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
            records[rec["sha256"]] = rec
    return records


def label_images(paths: Iterable[Path], cache: Path,
                 progress: Progress | None = None) -> dict[str, dict]:
    """Analyse every image not yet in the cache; return the records by file path."""
    paths = list(paths)
    records = read_cache(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    analyzer: FaceAnalyzer | None = None
    out: dict[str, dict] = {}
    try:
        with cache.open("a", encoding="utf-8") as fh:
            for path in track(paths, progress, "labelling"):
                digest = file_sha256(path)
                rec = records.get(digest)
                if rec is None:
                    analyzer = analyzer or FaceAnalyzer(identity=False)
                    rec = _analyse(analyzer, path, digest)
                    records[digest] = rec
                    fh.write(json.dumps(rec) + "\n")
                    fh.flush()
                out[str(path)] = rec
    finally:
        if analyzer is not None:
            analyzer.close()
    return out


def _analyse(analyzer: FaceAnalyzer, path: Path, digest: str) -> dict:
    faces = analyzer.analyze(load_image(path)).faces
    if not faces:
        return {"sha256": digest, "faces": 0}
    face = largest_face(faces)
    frame = CropFrame.from_landmarks(face.landmarks)
    rec = {"sha256": digest, "faces": len(faces), **face.attributes.to_dict(),
           "cx": round(frame.cx, 2), "cy": round(frame.cy, 2), "side": round(frame.side, 2)}
    return rec


#: Rotated copies for the label-consistent roll augmentation: the crop is turned by
#: theta about its centre and theta is added to the roll label.
ROLL_AUGMENT_DEG = 25.0


@dataclass
class TrainingSet:
    """Crops (N, 64, 64, 3) uint8, normalised labels (N, 5), and where each came from."""

    images: np.ndarray
    labels: np.ndarray
    source: np.ndarray  # 0 GENKI-4K train, 1 UTKFace train, 2 celeba-id train
    counts: dict
    manifest: TrainingManifest | None = None  # every image read; None in an old file

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [] if self.manifest is None else [
            (e.sha256, e.dataset, -1 if e.identity is None else e.identity)
            for e in self.manifest.entries]
        np.savez(path, images=self.images, labels=self.labels, source=self.source,
                 counts=json.dumps(self.counts), manifest=json.dumps(rows))

    @classmethod
    def load(cls, path: Path) -> TrainingSet:
        with np.load(path) as f:
            manifest = None
            if "manifest" in f.files and (rows := json.loads(str(f["manifest"]))):
                manifest = TrainingManifest(GENERATOR, [
                    ManifestEntry(sha, d, None if i < 0 else i) for sha, d, i in rows])
            return cls(f["images"], f["labels"], f["source"], json.loads(str(f["counts"])),
                       manifest)


#: The generator's name in training manifests, and the data set of each source code.
GENERATOR = "generator"
SOURCE_DATASETS = ("genki4k", "utkface", "celeba-id")


def training_items(celeba: str = "train") -> list[tuple[int, Path, int | None]]:
    """(source code, path, celeba identity or None) of every training image: GENKI-4K
    train, UTKFace minus its held-out share, and the celeba-id ``celeba`` split. The shipped
    weights were trained with ``celeba="all"``; from now on only "train" identities."""
    from studio.core.datasets import celeba_id, celeba_split, genki, utk_split, utkface

    out: list[tuple[int, Path, int | None]] = [(0, it.path, None) for it in genki("train")]
    out += [(1, it.path, None) for it in utk_split(utkface(), "train")]
    out += [(2, it.path, it.identity) for it in celeba_split(celeba_id(), celeba)]
    return out


def training_sources(celeba: str = "train") -> list[tuple[int, Path]]:
    """(source code, path) of the training images (see ``training_items``)."""
    return [(src, path) for src, path, _ in training_items(celeba)]


def build_training_set(cache: Path, rotated_copies: int = 1, seed: int = 0,
                       celeba: str = "train", progress: Progress | None = None
                       ) -> TrainingSet:
    """Label (cached) and crop every training image, plus roll-augmented copies; the
    manifest lists every image read (those without a face too)."""
    from studio.core.analysis.attributes import Attributes

    items = training_items(celeba)
    sources = [(src, path) for src, path, _ in items]
    records = label_images([p for _, p in sources], cache, progress=progress)
    manifest = TrainingManifest(GENERATOR, [
        ManifestEntry(records[str(path)]["sha256"], SOURCE_DATASETS[src], ident)
        for src, path, ident in items])
    rng = np.random.default_rng(seed)
    images, labels, origin = [], [], []
    skipped = 0
    for src, path in track(sources, progress, "cropping"):
        rec = records[str(path)]
        if not rec.get("faces"):
            skipped += 1
            continue
        rgb = load_image(path).rgb
        frame = CropFrame(rec["cx"], rec["cy"], rec["side"])
        attrs = Attributes(rec["joy"], rec["p_male"], rec["yaw"], rec["pitch"], rec["roll"])
        angles = [0.0, *rng.uniform(-ROLL_AUGMENT_DEG, ROLL_AUGMENT_DEG, rotated_copies)]
        for theta in angles:
            images.append(crop(rgb, frame, rotate_deg=float(theta)))
            a = Attributes(attrs.joy, attrs.p_male, attrs.yaw, attrs.pitch,
                           attrs.roll + float(theta))
            labels.append(a.normalized())
            origin.append(src)
    counts = {"source_images": len(sources), "skipped_no_face": skipped,
              "crops": len(images), "rotated_copies_per_image": rotated_copies}
    return TrainingSet(np.stack(images), np.stack(labels).astype(np.float32),
                       np.array(origin, dtype=np.int8), counts, manifest)


def read_cache_by_path(cache: Path, paths: Iterable[Path] | None = None,
                       progress: Progress | None = None) -> dict[str, dict]:
    """Cached labels of the held-out and training images, keyed by path (labels any
    image not yet in the cache)."""
    from studio.core.datasets import celeba_id, genki, utkface

    if paths is None:
        paths = [it.path for it in genki("all")] + [it.path for it in utkface()]
        paths += [it.path for it in celeba_id()]
    return label_images(paths, cache, progress=progress)
