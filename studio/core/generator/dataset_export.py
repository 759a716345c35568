"""Surrogate data sets: N generated faces as separate PNGs plus a ``labels.csv``.

For building training sets from the generator and for judging its faces with outside tools,
so every face is a file at the model's native size, and every row of ``labels.csv`` (file,
seed, the attributes of ``SPECS``) regenerates its file: ``draw_one(sampler, seed, labels)``
or ``studio generate --seed SEED --joy ... -n 1 --out-dir NEW``.

Why float64: in float32 (and more so in the Sampler's bfloat16 batches) a face's pixels
depend on the batch it was drawn in, by a grey level here and there, so a row could not
regenerate its file alone. In float64 the differences between batch sizes, thread counts
or devices are ~1e-15, far below the rounding to 8 bits, so each face depends only on its
seed and labels. The faces are within a few grey levels of the Sampler's fast draws.
"""

from __future__ import annotations

import copy
import csv
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.core.analysis.attributes import NAMES, SPECS, Attributes
from studio.core.assets import atomic_file, check_writable_dir
from studio.core.errors import StudioError
from studio.core.generator.latent import z_for_seed
from studio.core.generator.sampler import Sampler
from studio.core.progress import Progress, no_progress

LABELS_FILE = "labels.csv"
#: The columns of ``labels.csv``: the file, its identity seed, then one per attribute.
COLUMNS = ("file", "seed", *NAMES)
#: Faces drawn at a time: bounds memory (only one batch is ever held). In float64 a batch
#: of 256 peaked at 3.4 GB and one of 64 at 1.4 GB, at the same faces per second on the CPU.
BATCH = 64
#: Decimals of a varied label: short in the CSV, and the CSV's value is the one drawn.
VARY_DECIMALS = 4
#: Mixed into a row's seed for its label draws, so they are not the draws of its z.
_VARY_STREAM = 0x1ABE15


@dataclass(frozen=True)
class ExportResult:
    """What ``export_dataset`` wrote."""

    out_dir: Path
    labels: Path
    count: int
    size: int  # pixels, square: the model's native size
    seed: int  # the first row's seed; row i has seed + i
    varied: tuple[str, ...]  # the attributes drawn per face (empty: one label set for all)
    seconds: float


class ExactDrawer:
    """A float64 copy of a Sampler's network: faces that depend only on seed and labels."""

    def __init__(self, sampler: Sampler) -> None:
        # MPS has no float64; CUDA and the CPU do.
        self.device = sampler.device if sampler.device.type != "mps" else torch.device("cpu")
        self.net = copy.deepcopy(sampler.net).to(self.device, torch.float64).eval()
        self.config = sampler.config

    @property
    def size(self) -> int:
        return self.config.image_size

    def draw(self, seeds: Sequence[int], labels: Sequence[Attributes]) -> np.ndarray:
        """Faces (N, size, size, 3) uint8, face i from ``z_for_seed(seeds[i])`` and
        ``labels[i]`` (normalised and clipped as the Sampler does)."""
        z = np.stack([z_for_seed(int(s), self.config.z_dim) for s in seeds])
        y = np.stack([a.normalized() for a in labels])
        with torch.inference_mode():
            out = self.net(torch.from_numpy(z).to(self.device, torch.float64),
                           torch.from_numpy(y).to(self.device, torch.float64))
            imgs = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return np.ascontiguousarray(imgs.permute(0, 2, 3, 1).cpu().numpy())


def draw_one(sampler: Sampler, seed: int, labels: Attributes) -> np.ndarray:
    """The face (size, size, 3) that ``export_dataset`` wrote for this row's seed and labels."""
    return ExactDrawer(sampler).draw([seed], [labels])[0]


def varied_labels(seed: int, base: Attributes, vary: Sequence[str]) -> Attributes:
    """``base`` with the attributes in ``vary`` drawn uniformly over their ``SPECS`` range,
    from a generator keyed by the row's seed alone (so not by N or the batch)."""
    u = np.random.default_rng([_VARY_STREAM, seed]).random(len(SPECS))
    values = {s.name: getattr(base, s.name) for s in SPECS}
    for s, draw in zip(SPECS, u, strict=True):
        if s.name in vary:
            values[s.name] = round(float(s.denormalize(draw)), VARY_DECIMALS)
    return Attributes(**values)


def file_name(index: int, count: int) -> str:
    """``000000.png`` ...: zero-padded to six digits, more when N needs them."""
    return f"{index:0{max(6, len(str(count - 1)))}d}.png"


def _check_out_dir(out_dir: Path) -> None:
    check_writable_dir(out_dir, "the generated faces")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise StudioError(
            f"{out_dir} is not empty: a generated data set goes into a new or empty folder, "
            f"so that its {LABELS_FILE} describes every file there and nothing is overwritten. "
            "Choose another folder.")


def _check_request(count: int, seed: int | None, vary: Sequence[str], batch: int) -> int:
    if count < 1:
        raise StudioError(f"the number of faces must be at least 1, not {count}.")
    if batch < 1:
        raise StudioError(f"the batch must be at least 1 face, not {batch}.")
    unknown = [name for name in vary if name not in NAMES]
    if unknown:
        raise StudioError(f"cannot vary {', '.join(unknown)}: the attributes are "
                          f"{', '.join(NAMES)}.")
    if seed is None:
        return secrets.randbelow(2**31)
    if seed < 0:
        raise StudioError(f"the seed must be 0 or more, not {seed}.")
    return seed


def _write_png(path: Path, face: np.ndarray) -> None:
    """A fresh image, so no metadata, written whole or not at all, and never over a file
    that appeared meanwhile."""
    with atomic_file(path, binary=True, exclusive=True) as fh:
        Image.fromarray(face).save(fh, format="PNG")


def _write_labels(path: Path, rows: list[list]) -> None:
    """``labels.csv`` with every row so far, written whole and put in place of the last."""
    with atomic_file(path) as fh:
        csv.writer(fh).writerows([COLUMNS, *rows])


def export_dataset(sampler: Sampler, out_dir: str | Path, count: int, labels: Attributes,
                   seed: int | None = None, vary: Sequence[str] = (),
                   batch: int | None = None, progress: Progress | None = None) -> ExportResult:
    """Write ``count`` faces to the new or empty folder ``out_dir`` with ``labels.csv``.

    Face i has seed ``seed + i`` (``seed`` random when None) and ``labels``, except that the
    attributes named in ``vary`` are drawn per face (``varied_labels``). Faces are drawn
    ``batch`` (default ``BATCH``) at a time; each batch's files are written before their
    rows, so the CSV never names a missing file. Raises StudioError, before any work, on a
    non-empty folder.
    """
    out_dir = Path(out_dir)
    vary = tuple(dict.fromkeys(vary))
    batch = BATCH if batch is None else batch
    seed = _check_request(count, seed, vary, batch)
    _check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawer = ExactDrawer(sampler)
    report = progress or no_progress
    started = time.perf_counter()
    labels_path = out_dir / LABELS_FILE
    rows: list[list] = []
    report(0, count, "faces")
    for first in range(0, count, batch):
        seeds = [seed + i for i in range(first, min(first + batch, count))]
        wanted = [varied_labels(s, labels, vary) if vary else labels for s in seeds]
        faces = drawer.draw(seeds, wanted)
        for i, (s, face, attrs) in enumerate(zip(seeds, faces, wanted, strict=True)):
            name = file_name(first + i, count)
            _write_png(out_dir / name, face)
            rows.append([name, s, *(repr(float(getattr(attrs, n))) for n in NAMES)])
        _write_labels(labels_path, rows)
        report(first + len(seeds), count, "faces")
    return ExportResult(out_dir, labels_path, count, drawer.size, seed, vary,
                        time.perf_counter() - started)


def read_labels(path: str | Path) -> list[tuple[str, int, Attributes]]:
    """The rows of a ``labels.csv``: (file, seed, the attributes to regenerate it)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [(row["file"], int(row["seed"]), Attributes(**{n: float(row[n]) for n in NAMES}))
                for row in csv.DictReader(fh)]
