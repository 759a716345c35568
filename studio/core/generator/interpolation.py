"""Latent interpolations for demos: filmstrips and animated GIFs from the generator.

Two walks: between two identities at fixed labels (the latent space), or along one
attribute at a fixed identity (what the sliders do), as PPRL-VGAN did for expression
morphing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.analysis.attributes import NAMES, Attributes
from studio.core.errors import StudioError
from studio.core.generator.latent import interpolate, z_for_seed
from studio.core.generator.sheets import contact_sheet


def between_identities(generator, labels: Attributes, seed_a: int, seed_b: int, steps: int,
                       mode: str = "slerp") -> np.ndarray:
    """(steps, 64, 64, 3): identity A to identity B with the same labels throughout."""
    z = interpolate(z_for_seed(seed_a), z_for_seed(seed_b), steps, mode)
    return generator.sample(labels, z=z)


def along_attribute(generator, labels: Attributes, seed: int, attribute: str, start: float,
                    stop: float, steps: int) -> np.ndarray:
    """(steps, 64, 64, 3): one identity while one attribute goes from start to stop."""
    if attribute not in NAMES:
        raise StudioError(f"unknown attribute {attribute!r}; use one of {', '.join(NAMES)}")
    values = np.linspace(start, stop, steps)
    walk = [replace(labels, **{attribute: float(v)}) for v in values]
    return generator.sample(walk, z=z_for_seed(seed)[None])


def filmstrip(frames: np.ndarray, size: int = 128, gap: int = 2) -> np.ndarray:
    """The frames side by side, each upscaled smoothly to ``size``."""
    return np.asarray(contact_sheet(frames, cols=len(frames), size=size, gap=gap))


def save_animation(frames: np.ndarray, path: str | Path, size: int = 192, fps: float = 12,
                   bounce: bool = True) -> Path:
    """An animated GIF that plays the walk forth (and back, with ``bounce``)."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise StudioError(f"{path.name}: animations are written as .gif")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    images = [Image.fromarray(f).resize((size, size), Image.LANCZOS) for f in seq]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0, optimize=True)
    return path
