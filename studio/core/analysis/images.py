"""Load any photo a researcher may have into 8-bit RGB, safely.

Originals are only ever read: nothing here writes to the source file.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.errors import ImageLoadError

if TYPE_CHECKING:  # numpy and Pillow load with the first image, not with ``studio --help``
    import numpy as np
    from PIL import Image

#: Images above this many pixels are refused (decompression-bomb guard); 100 MP
#: covers every camera a researcher is likely to use.
MAX_PIXELS = 100_000_000

#: Files larger than this are refused before they are read into memory: 1 GiB holds an
#: uncompressed 100-megapixel 16-bit TIFF.
MAX_FILE_BYTES = 1 << 30

#: The one list of what the studio reads: analyze, batch, the evaluation sources and the
#: window's file dialog all take it from here.
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SUPPORTED_NAMES = "JPEG, PNG, BMP, GIF, TIFF, WebP"


@dataclass(frozen=True)
class ImageListing:
    """A folder's images, and the files named like images that are not regular files."""

    images: list[Path]
    skipped: list[tuple[Path, str]]  # (path, why)


def _not_regular(mode: int) -> str:
    """Why a file of this ``st_mode`` cannot be read as an image ("" when it can)."""
    if stat.S_ISREG(mode):
        return ""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"this is {kind}, not an image file"


def scan_images(folder: Path) -> ImageListing:
    """Every supported image under ``folder``, recursively, in a stable order. Anything
    with an image's name that is not a regular file (a FIFO would block the reader
    forever, a device never end) is set aside with the reason, never opened. A folder named
    like an image (``x.jpg/``) is a folder, searched like the others, not a photo."""
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for p in folder.rglob("*"):
        if p.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        try:
            mode = p.stat().st_mode
        except OSError as exc:  # a dangling link, a file gone since the listing
            why = f"the file cannot be read ({exc.strerror or exc})"
        else:
            if stat.S_ISDIR(mode):
                continue  # its photos are listed on their own
            why = _not_regular(mode)
        if why:
            skipped.append((p, why))
        else:
            images.append(p)
    return ImageListing(sorted(images, key=_order),
                        sorted(skipped, key=lambda item: _order(item[0])))


def _order(path: Path) -> str:
    return str(path).lower()


def list_images(folder: Path) -> list[Path]:
    """Every supported image under ``folder`` (see ``scan_images`` for what is left out)."""
    return scan_images(folder).images


@dataclass(frozen=True)
class LoadedImage:
    """An image as 8-bit RGB (H, W, 3), upright, plus where it came from."""

    rgb: np.ndarray
    source: str
    original_mode: str
    exif_transposed: bool
    frames: int = 1  # frames or pages in the file; only the first is read
    note: str = ""  # what the user should know, e.g. "animated GIF, 12 frames: ..."

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Normalise any PIL mode (L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr...) to uint8 RGB."""
    import numpy as np
    from PIL import Image

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
    arr = np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def _frames_note(img: Image.Image) -> tuple[int, str]:
    """How many frames or pages the file holds, and the note saying only one is read.
    A camera's MPO JPEG holds previews of the same shot: no note for those."""
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames <= 1 or img.format == "MPO":
        return frames, ""
    fmt = {"WEBP": "WebP"}.get(img.format or "", img.format or "image")
    kind = (f"TIFF with {frames} pages" if fmt == "TIFF" else f"animated {fmt}, {frames} frames")
    first = "page" if img.format == "TIFF" else "frame"
    return frames, f"{kind}: only the first {first} is analysed"


def _pillow_limit() -> None:
    """Pillow's own bomb guard at the studio's limit, set once for the process. Setting it
    and a warnings filter around each call and restoring them races between batch
    workers (one worker's restore can land inside another's open: a 99-megapixel photo
    drew Pillow's warning once in a two-worker batch, and could as well have been
    refused). Pillow's warning band (the limit to twice it) is left to decode_image's
    own explicit check."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS != MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_image(data: bytes, source: str = "<bytes>") -> LoadedImage:
    """Decode image bytes; every failure becomes one ImageLoadError with a plain message."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageLoadError(f"{source}: the file is empty.")
    _pillow_limit()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageLoadError(
                    f"{source}: the image is {img.width}x{img.height} pixels, more than the "
                    f"{MAX_PIXELS // 1_000_000} megapixel limit."
                )
            mode = img.mode
            frames, note = _frames_note(img)
            img.load()
            # exif_transpose copies even an upright image: only call it when turned.
            transposed = img.getexif().get(0x0112, 1) not in (0, 1)
            rgb = _to_rgb8(ImageOps.exif_transpose(img) if transposed else img)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(
            f"{source}: the image is larger than the {MAX_PIXELS // 1_000_000} megapixel limit."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{source}: this is not an image file the studio can read.") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(f"{source}: the image is damaged or truncated ({exc}).") from exc
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageLoadError(f"{source}: the image has no pixels.")
    return LoadedImage(rgb=rgb, source=source, original_mode=mode, exif_transposed=transposed,
                       frames=frames, note=note)


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read a photo from disk (unicode paths fine) without touching the file. Only regular
    files are opened: a FIFO or a device named ``.jpg`` is refused before it can block."""
    p = Path(path)
    name = p.name
    try:
        why = _not_regular(p.stat().st_mode)
        if why:
            raise ImageLoadError(f"{name}: {why}.")
        # O_NONBLOCK: should the path turn into a FIFO after the check, opening it still
        # returns at once, and fstat below refuses it.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            why = _not_regular(info.st_mode)
            if why:
                raise ImageLoadError(f"{name}: {why}.")
            if info.st_size > MAX_FILE_BYTES:
                raise ImageLoadError(f"{name}: the file is {info.st_size / 2**30:.1f} GiB, more "
                                     f"than the {MAX_FILE_BYTES >> 30} GiB limit for an image.")
            data = f.read()
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
