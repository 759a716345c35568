"""Contact sheets: generated faces laid out in a grid on white, each resized smoothly.

One layout for the model card's grids, the interpolation filmstrips and ``studio
generate``. A sheet is a new image: nothing of any photo's metadata travels with it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def contact_sheet(images: np.ndarray | list[np.ndarray], cols: int | None = None,
                  size: int | None = None, gap: int = 2) -> Image.Image:
    """``images`` (N, H, W, 3) in rows of ``cols`` (default: a near-square grid), each
    resized to ``size`` pixels square (default: as they are), ``gap`` pixels apart."""
    images = list(images)
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    h, w = images[0].shape[:2]
    tw, th = (size, size) if size else (w, h)
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * (tw + gap) - gap, rows * (th + gap) - gap), (255, 255, 255))
    for i, img in enumerate(images):
        tile = Image.fromarray(img)
        if tile.size != (tw, th):
            tile = tile.resize((tw, th), Image.LANCZOS)
        sheet.paste(tile, ((i % cols) * (tw + gap), (i // cols) * (th + gap)))
    return sheet
