"""The held-out face sets, defined once, and the one loop over their faces.

Every component check (the generator's, the 3D surrogate's, the in-context surrogate's)
measures on GENKI-4K's test split and UTKFace's hold-out (``sources.discover``), each
photo marked against the training manifest of the model it measures: a face whose bytes
that model was trained on is set aside, since it is not held out from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.analysis.analyzer import FaceAnalysis, FaceAnalyzer
from studio.core.analysis.images import LoadedImage, load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.evaluation.sources import Dataset, Source
from studio.core.progress import Progress, track

#: The held-out sets: their kind (``sources.Dataset.kind``) and name, in the order checks
#: report them.
SETS = {"genki4k-test": "GENKI-4K test", "utkface-holdout": "UTKFace hold-out"}
_FOLDERS = {"genki4k-test": "genki4k", "utkface-holdout": "utkface"}


@dataclass(frozen=True)
class HeldOut:
    """The held-out face sets, each photo marked if the measured model's training
    manifest holds its bytes; ``manifest``: False when the weights have none beside them
    (then only the split says the faces are held out)."""

    datasets: list[Dataset]
    manifest: bool
    model: str = "model"

    def unseen(self, kinds: tuple[str, ...] | None = None) -> list[Source]:
        return [s for d in self.datasets if kinds is None or d.kind in kinds
                for s in d.sources if not s.seen_by]

    def excluded(self, kinds: tuple[str, ...] | None = None) -> int:
        return sum(1 for d in self.datasets if kinds is None or d.kind in kinds
                   for s in d.sources if s.seen_by)

    def note(self, kinds: tuple[str, ...] | None = None) -> str:
        if not self.manifest:
            return "no training manifest beside the weights: held out by split only"
        return f"{self.excluded(kinds)} in the {self.model}'s training manifest set aside"

    def paths(self, n_genki: int, n_utk: int) -> list[Path]:
        """The first ``n_genki`` unseen GENKI-4K test photos, then ``n_utk`` of the
        UTKFace hold-out spread over it (it is sorted by age)."""
        genki = self.unseen(("genki4k-test",))[:n_genki]
        utk = self.unseen(("utkface-holdout",))
        step = max(1, len(utk) // max(n_utk, 1))
        return [s.path for s in genki] + [s.path for s in utk[::step][:n_utk]]


def held_out(weights: Path, model: str) -> HeldOut:
    """GENKI-4K test and UTKFace hold-out, marked against the training manifest beside
    ``weights`` (``datasets.manifest_path``); ``model`` names it in notes."""
    from studio.core.datasets import TrainingManifest, data_root, manifest_path
    from studio.core.evaluation.sources import discover, mark_seen

    where = manifest_path(weights)
    manifest = TrainingManifest.load(where) if where.is_file() else None
    sets = [mark_seen(discover(data_root() / folder), {model: manifest})
            for folder in _FOLDERS.values()]
    return HeldOut(sets, manifest is not None, model)


@dataclass
class FaceLoop:
    """The held-out photos' largest faces, one at a time; those without one are counted."""

    paths: list
    progress: Progress | None = None
    no_face: int = 0
    skipped: list[str] = field(default_factory=list)

    def faces(self, analyzer: FaceAnalyzer) -> Iterator[tuple[int, LoadedImage, FaceAnalysis]]:
        """(index of the photo, the photo, its largest face)."""
        for i, path in enumerate(track(self.paths, self.progress, "held-out faces")):
            image = load_image(path)
            face = largest_face(analyzer.analyze(image).faces)
            if face is None:
                self.no_face += 1
                self.skipped.append(f"{Path(path).name}: no face found")
                continue
            yield i, image, face
