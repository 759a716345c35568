"""Every input a researcher may throw at the loader: formats, modes, EXIF and bad files."""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.images import MAX_PIXELS, decode_image, load_image
from studio.core.errors import ImageLoadError

pytestmark = pytest.mark.data


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"),
                                        ("TIFF", ".tif"), ("WEBP", ".webp")])
def test_formats_load_as_rgb8(tmp_path, utk_face, fmt, suffix):
    path = tmp_path / f"face{suffix}"
    Image.fromarray(utk_face).save(path, format=fmt)
    img = load_image(path)
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == utk_face.shape
    lossy = fmt in ("JPEG", "WEBP")
    assert np.abs(img.rgb.astype(int) - utk_face).mean() < (8 if lossy else 0.01)


def test_exif_orientation_is_applied(tmp_path, utk_face, analyzer):
    # Store the face rotated on disk with an EXIF tag saying "rotate 90 CW to view".
    stored = np.rot90(utk_face, k=1)  # 90 deg counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=95)
    img = load_image(path)
    assert img.exif_transposed
    assert np.abs(img.rgb.astype(int) - utk_face).mean() < 8  # upright again
    face = analyzer.analyze(img).faces[0]
    assert abs(face.attributes.roll) < 10


def test_modes_are_normalised(tmp_path, utk_face):
    gray = Image.fromarray(utk_face).convert("L")
    cases = {
        "gray.png": gray,
        "rgba.png": Image.fromarray(utk_face).convert("RGBA"),
        "palette.png": Image.fromarray(utk_face).convert("P"),
        "cmyk.jpg": Image.fromarray(utk_face).convert("CMYK"),
        "gray16.png": Image.fromarray(np.asarray(gray).astype(np.uint16) * 257),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        rgb = load_image(tmp_path / name).rgb
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, name
        assert rgb.shape[:2] == utk_face.shape[:2], name
    g16 = load_image(tmp_path / "gray16.png").rgb
    assert np.abs(g16[..., 0].astype(int) - np.asarray(gray)).max() <= 1


def test_transparent_background_becomes_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert (load_image(tmp_path / "clear.png").rgb == 255).all()


def test_unicode_path(tmp_path, utk_face_path):
    path = tmp_path / "visages – 顔 ü" / "фото 😀.jpg"
    path.parent.mkdir()
    shutil.copy(utk_face_path, path)
    assert load_image(path).rgb.shape == (200, 200, 3)


def _png_with_size(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    side = int(MAX_PIXELS**0.5) + 100
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_size(side, side))
    with pytest.raises(ImageLoadError, match="megapixel limit"):
        load_image(path)


@pytest.mark.parametrize("name,content,message", [
    ("empty.jpg", b"", "empty"),
    ("notes.png", b"this is a text file, not a picture\n" * 10, "not an image"),
    ("random.jpg", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
     "not an image"),
])
def test_bad_files_raise_one_typed_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=message):
        load_image(path)


def test_truncated_jpeg(tmp_path, utk_face_path):
    data = utk_face_path.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError, match="damaged or truncated"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_original_is_never_modified(tmp_path, utk_face_path, analyzer):
    path = tmp_path / "original.jpg"
    shutil.copy(utk_face_path, path)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    analyzer.analyze_path(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_decode_bytes_directly(utk_face_path):
    assert decode_image(utk_face_path.read_bytes()).rgb.shape == (200, 200, 3)
