"""``studio anonymize``'s files: which photos, which output each gets, the private mapping.

Nothing is overwritten and nothing is left half-written: an output is written whole under a
temporary name and linked to its name only if that name is still free
(``assets.write_atomic``); the mapping gets its row, fsynced, before the output.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core.analysis.images import SUPPORTED_NAMES, scan_images
from studio.core.assets import check_writable_dir, open_private, write_atomic
from studio.core.errors import StudioError, shown

#: The private mapping's columns: a random output name, the original it came from.
MAPPING_FIELDS = ("output", "original_path", "method")


class AnonymizeError(StudioError):
    pass


@dataclass(frozen=True)
class Job:
    source: Path  # absolute
    relative: Path  # where under OUT_DIR it goes (suffix still the input's)
    output: Path | None = None  # decided when the run is planned


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan_inputs(inputs: Iterable[str | os.PathLike[str]], out_dir: Path
                ) -> tuple[list[Job], list[tuple[Path, str]]]:
    """The photos to do (anything under ``out_dir`` left out) and the files named like
    photos that cannot be opened (a FIFO, a dangling link), with why."""
    jobs: list[Job] = []
    refused: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for given in inputs:
        root = Path(os.path.abspath(given))
        if inside(root.resolve(), out_dir):
            raise AnonymizeError(f"the output folder {shown(out_dir)} may not be the input "
                                 f"{shown(given)}, nor hold it: choose a new folder for the "
                                 "anonymised photos")
        if root.is_dir():
            try:
                listing = scan_images(root)
            except OSError as exc:
                raise AnonymizeError(f"cannot list {shown(root)} ({exc.strerror or exc})"
                                     ) from exc
            found = [(p, p.relative_to(root)) for p in listing.images]
            refused += [(p, why) for p, why in listing.skipped if not inside(p, out_dir)]
        elif root.exists() or root.is_symlink():
            found = [(root, Path(root.name))]
        else:
            raise AnonymizeError(f"{shown(given)}: there is no such file or folder")
        for path, rel in found:
            if inside(path.resolve(), out_dir) or path.resolve() in seen:
                continue  # our own outputs, or a photo given twice
            seen.add(path.resolve())
            jobs.append(Job(path, rel))
    if not jobs and not refused:
        raise AnonymizeError(f"no photos ({SUPPORTED_NAMES}) in "
                             f"{', '.join(shown(i) for i in inputs)}")
    return jobs, refused


def named(jobs: list[Job], out_dir: Path) -> list[Job]:
    """Each job's output: its relative path with the stem kept and .png; where two inputs
    would meet (photo.jpg and photo.png), the later one's suffix joins its stem."""
    taken: set[Path] = set()
    done = []
    for job in jobs:
        rel = job.relative
        out = out_dir / rel.with_suffix(".png")
        n = 1
        while out in taken:
            tag = rel.suffix.lstrip(".").lower() or "photo"
            out = out_dir / rel.parent / f"{rel.stem}_{tag}{'' if n == 1 else n}.png"
            n += 1
        taken.add(out)
        done.append(Job(job.source, rel, out))
    return done


def check_mapping(out_dir: Path, mapping: str | os.PathLike[str] | None) -> Path:
    """The private mapping's path, absolute: OUT_DIR.private-mapping.csv beside OUT_DIR by
    default, and never inside it (the folder is what gets shared)."""
    path = (Path(os.path.abspath(mapping)) if mapping
            else out_dir.with_name(out_dir.name + ".private-mapping.csv"))
    if inside(path.resolve(), out_dir):
        raise AnonymizeError(f"the private mapping {shown(path)} must not be inside the "
                             f"output folder {shown(out_dir)}: whoever gets the photos would "
                             "get it too")
    if path.is_dir():
        raise AnonymizeError(f"the private mapping {shown(path)} is a folder")
    check_writable_dir(path.parent, "the private mapping")
    return path


class Mapping:
    """The private mapping, appended to one row per output before the output is written,
    so that no output is ever without its row; a re-run skips what it lists and finds.
    Read when the output folder's lock is held, so that it lists what a run before made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, str] = {}  # original path -> output name
        if path.exists():
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if tuple(reader.fieldnames or ()) != MAPPING_FIELDS:
                    raise AnonymizeError(f"{shown(path)} is not a mapping of studio anonymize "
                                         f"(its columns should be {', '.join(MAPPING_FIELDS)})")
                self.done = {row["original_path"]: row["output"] for row in reader
                             if row.get("output")}
        new = not path.exists()
        self.fh = open_private(path, append=True)
        self.writer = csv.writer(self.fh)
        if new:
            self.writer.writerow(MAPPING_FIELDS)
            self.fh.flush()

    def add(self, output: str, original: Path, method: str) -> None:
        self.writer.writerow((output, str(original), method))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def write_new(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new file, whole or not at all; False, touching nothing, when
    ``path`` exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return write_atomic(path, data, exclusive=True)
    except OSError as exc:  # a full disk, a folder gone read-only
        raise AnonymizeError(f"cannot write {shown(path)} ({exc.strerror or exc})") from exc
