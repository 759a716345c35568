"""Training pairs for the refiner, made from the identity-disjoint training split.

Input: a training photo's in-context composite made with the face's **own** fit (its own
identity and texture coefficients instead of a new draw; light, eyes, mouth, grain and
blend as the method does them). Target: the photo itself. Both are cut with the refiner's
own framing (``refiner.crops``), with the drawn face's mask. Shards are written whole
(a temporary name, then renamed), so a run that is stopped resumes where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import sha256_of
from studio.core.datasets import utk_split, utkface
from studio.core.morphable.model import Fit
from studio.core.progress import Progress, Stop, never_stop, no_progress
from studio.core.refiner.crops import CROP_SIZE, CropBox, cut
from studio.core.surrogates.incontext import ContextRequest, InContextMaker, Redraw

#: Photos per shard file.
SHARD = 256


class OwnFitMaker(InContextMaker):
    """The in-context method with the face's own identity and texture put back: the
    composite the refiner learns to turn into the real photo. Never used for output."""

    def __init__(self) -> None:
        super().__init__(refine=False)

    def new_identity(self, fit: Fit, seed: int, p_male: float, redraw: Redraw
                     ) -> tuple[np.ndarray, np.ndarray]:
        assert fit.texture is not None
        return fit.identity, fit.texture


@dataclass(frozen=True)
class Pair:
    composite: np.ndarray  # (S, S, 3) uint8
    real: np.ndarray  # (S, S, 3) uint8
    mask: np.ndarray  # (S, S) uint8, 255 where the face was drawn


def make_pair(analyzer, maker: InContextMaker, rgb: np.ndarray, seed: int,
              size: int = CROP_SIZE) -> Pair | None:
    """The pair of one photo's largest face, or None where none was found or fitted."""
    face = largest_face(analyzer.analyze(rgb).faces)
    if face is None:
        return None
    result = maker.make(rgb, [face], ContextRequest(seed=seed))
    if result.replaced != 1 or result.rendered is None or not result.rendered.any():
        return None
    box = CropBox.around(face.landmarks)
    mask = cut(result.rendered.astype(np.uint8) * 255, box, size, cv2.INTER_NEAREST,
               cv2.BORDER_CONSTANT)
    return Pair(cut(result.image, box, size), cut(rgb, box, size), mask)


def training_photos() -> list[Path]:
    """UTKFace's training split (never its held-out every 23rd photo), in a fixed shuffled
    order so the first shards are already a fair sample."""
    items = utk_split(utkface(), "train")
    order = np.random.default_rng(27).permutation(len(items))
    return [items[i].path for i in order]


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"pairs_{index:04d}.npz"


def write_shards(folder: Path, paths: list[Path], size: int = CROP_SIZE,
                 progress: Progress | None = None, stop: Stop | None = None,
                 own_fit: bool = True) -> int:
    """Pairs of ``paths`` into ``folder``, SHARD photos a file; shards already there are
    kept. Returns the number of pairs written by this call. ``own_fit=False``: the
    composite is a **new** draw, made as the method makes it at use (unrefined), for the
    critic to see what the refiner meets at use; its "real" is the photo, which no loss
    pairs with it."""
    from studio.core.analysis.analyzer import FaceAnalyzer

    report, stop = progress or no_progress, stop or never_stop
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    chunks = [paths[i:i + SHARD] for i in range(0, len(paths), SHARD)]
    maker = OwnFitMaker() if own_fit else InContextMaker(refine=False)
    with FaceAnalyzer(identity=False, gender=False) as analyzer, maker:
        for k, chunk in enumerate(chunks):
            report(k * SHARD, len(paths), "pairs")
            target = shard_path(folder, k)
            if target.exists():
                continue
            if stop():
                break
            pairs, shas = [], []
            for j, path in enumerate(chunk):
                pair = make_pair(analyzer, maker, load_image(path).rgb, k * SHARD + j, size)
                if pair is not None:
                    pairs.append(pair)
                    shas.append(sha256_of(path))
            tmp = target.with_name(target.stem + ".tmp.npz")
            np.savez(tmp, composite=np.stack([p.composite for p in pairs]),
                     real=np.stack([p.real for p in pairs]),
                     mask=np.stack([p.mask for p in pairs]), sha256=np.array(shas))
            tmp.replace(target)
            written += len(pairs)
    report(len(paths), len(paths), "pairs")
    return written
