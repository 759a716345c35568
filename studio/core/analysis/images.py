"""Load any photo a researcher may have into 8-bit RGB, safely.

Originals are only ever read: nothing here writes to the source file.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.core.errors import ImageLoadError

#: Images above this many pixels are refused (decompression-bomb guard); 100 MP
#: covers every camera a researcher is likely to use.
MAX_PIXELS = 100_000_000

SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Every supported image under ``folder``, recursively, in a stable order."""
    return sorted((p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in SUPPORTED_SUFFIXES), key=lambda p: str(p).lower())


@dataclass(frozen=True)
class LoadedImage:
    """An image as 8-bit RGB (H, W, 3), upright, plus where it came from."""

    rgb: np.ndarray
    source: str
    original_mode: str
    exif_transposed: bool

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Normalise any PIL mode (L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr...) to uint8 RGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "I":
            top = arr.max() if arr.size else 1.0
            arr = arr / (257.0 if top > 255 else 1.0)
        else:  # float images are taken as [0, 1] when they look like it
            arr = arr * 255.0 if arr.size and arr.max() <= 1.0 else arr
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite transparency on white so that a transparent background does not
        # turn black and confuse the detector.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def decode_image(data: bytes, source: str = "<bytes>") -> LoadedImage:
    """Decode image bytes; every failure becomes one ImageLoadError with a plain message."""
    if not data:
        raise ImageLoadError(f"{source}: the file is empty.")
    previous = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageLoadError(
                        f"{source}: the image is {img.width}x{img.height} pixels, more than the "
                        f"{MAX_PIXELS // 1_000_000} megapixel limit."
                    )
                mode = img.mode
                img.load()
                upright = ImageOps.exif_transpose(img)
                transposed = upright is not img
                rgb = _to_rgb8(upright)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(
            f"{source}: the image is larger than the {MAX_PIXELS // 1_000_000} megapixel limit."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{source}: this is not an image file the studio can read.") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(f"{source}: the image is damaged or truncated ({exc}).") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageLoadError(f"{source}: the image has no pixels.")
    return LoadedImage(rgb=rgb, source=source, original_mode=mode, exif_transposed=transposed)


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read a photo from disk (unicode paths fine) without touching the file."""
    p = Path(path)
    name = p.name
    if p.is_dir():
        raise ImageLoadError(f"{name}: this is a folder, not an image file.")
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise ImageLoadError(f"{name}: the file does not exist.") from exc
    except PermissionError as exc:
        raise ImageLoadError(f"{name}: the file cannot be read (permission denied).") from exc
    except OSError as exc:
        raise ImageLoadError(f"{name}: the file cannot be read ({exc.strerror}).") from exc
    return decode_image(data, source=str(p))


def display_copy(rgb: np.ndarray, max_side: int = 1600) -> tuple[np.ndarray, float]:
    """A copy small enough to paint quickly, and its scale (display px per image px)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale
