"""Typed errors whose messages are shown to the user as they are."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class StudioError(Exception):
    """Base class: every error the studio expects and explains."""


class ImageLoadError(StudioError):
    """The file is not an image the studio can read (corrupt, empty, too large...)."""


class ModelFileError(StudioError):
    """A third-party or shipped model file is missing or fails its checksum."""


class NoFaceError(StudioError):
    """The image holds no face the landmarker could find."""


class RenderError(StudioError):
    """Offscreen OpenGL rendering is unavailable (missing system libraries or driver)."""


def check_writable_dir(path: str | os.PathLike[str]) -> None:
    """Raise StudioError unless path is a folder we can write in, or one we can create.

    Called before long work that ends in writing there, so that a typo or a read-only place
    is told at once instead of after the work (and without a traceback). Creates nothing:
    it probes with a temporary file in the folder or in its nearest existing parent.
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise StudioError(f"cannot write to {path}: it is a file, not a folder")
        parent = path
        while not parent.exists() and parent.parent != parent:
            parent = parent.parent
        if not parent.is_dir():
            raise StudioError(f"cannot create the folder {path}: {parent} is not a folder")
    except OSError as exc:
        raise StudioError(f"cannot write to {path}: {exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".studio-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "it" if parent == path else str(parent)
        raise StudioError(f"cannot write to {path}: nothing can be created in {where} "
                          f"({exc.strerror or exc})") from None
