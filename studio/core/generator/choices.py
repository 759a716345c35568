"""The generators the studio ships, declared once: what the window's Generator menu lists,
what ``--weights NAME`` accepts, and which is the default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.assets import MODELS_DIR

GENERATOR_DIR = MODELS_DIR / "generator"


@dataclass(frozen=True)
class GeneratorChoice:
    key: str  # what --weights takes
    title: str  # what the window shows
    file: str  # weights in models/generator/
    card: str  # its model card, beside the weights

    @property
    def path(self) -> Path:
        return GENERATOR_DIR / self.file


#: The default first. The thesis's BEGAN-CS stays as a second choice (issue 16): the default
#: keeps its generator network but trains it against a projection discriminator.
CHOICES = (
    GeneratorChoice("projection", "Projection GAN (default)", "projection_64.safetensors",
                    "README.md"),
    GeneratorChoice("thesis", "BEGAN-CS (thesis)", "began_cs_64.safetensors", "began_cs_64.md"),
)
DEFAULT = CHOICES[0]
BY_KEY = {c.key: c for c in CHOICES}


def resolve_weights(weights: str | Path | None) -> Path:
    """None: the default's file; a choice's key: its file; anything else: a path."""
    if weights is None or weights == "":
        return DEFAULT.path
    if isinstance(weights, str) and weights in BY_KEY:
        return BY_KEY[weights].path
    return Path(weights)


def title_of(path: Path) -> str:
    """The window's name for a weights file: the choice's title, or the file's stem."""
    for c in CHOICES:
        if c.path.resolve() == Path(path).resolve():
            return c.title
    return Path(path).stem
