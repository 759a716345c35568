"""Typed errors whose messages are shown to the user as they are."""

from __future__ import annotations

import os


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


def shown(path: str | os.PathLike[str]) -> str:
    """A path as messages print it: a newline, a tab or any other control character in a
    file's name is escaped (as Python writes it), so that one message stays one line and
    says which file it is."""
    text = os.fspath(path)
    text = text if isinstance(text, str) else os.fsdecode(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
