"""Typed errors whose messages are shown to the user as they are."""

from __future__ import annotations


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
