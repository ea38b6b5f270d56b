"""Writers for every kind of bad or awkward image file that docs/design.md lists."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from facesearch.synthetic import make_face


def face_jpeg_bytes(identity: int = 0, sample: int = 0, size: int = 112) -> bytes:
    buf = io.BytesIO()
    make_face(identity, sample, size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def truncated_jpeg(path: Path) -> Path:
    data = face_jpeg_bytes(size=200)
    path.write_bytes(data[: len(data) // 2])
    return path


def not_an_image(path: Path) -> Path:
    path.write_bytes(b"this is plain text, not a picture\n" * 20)
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A tiny PNG file whose header claims side x side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def sixteen_bit_png(path: Path) -> Path:
    """A 16-bit greyscale face: the values use the full 0..65535 range."""
    grey = np.asarray(make_face(1, 0).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(path, "PNG")  # uint16 array -> mode I;16
    return path


def cmyk_jpeg(path: Path) -> Path:
    make_face(2, 0).convert("CMYK").save(path, "JPEG", quality=90)
    return path


def palette_png_with_transparency(path: Path) -> Path:
    img = make_face(3, 0).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    img.info["transparency"] = 0
    img.save(path, "PNG", transparency=0)
    return path


def rgba_png(path: Path) -> Path:
    img = make_face(4, 0).convert("RGBA")
    alpha = Image.new("L", img.size, 255)
    alpha.paste(0, (0, 0, 20, 20))
    img.putalpha(alpha)
    img.save(path, "PNG")
    return path


def png_named_jpg(path: Path) -> Path:
    """A PNG file whose extension claims JPEG."""
    make_face(5, 0).save(path, "PNG")
    return path


def exif_rotated_jpeg(path: Path, orientation: int = 6) -> Path:
    """Pixels stored sideways (a landscape 160x120), with the EXIF tag saying 'rotate'."""
    img = make_face(6, 0, 160).resize((160, 120))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", exif=exif.tobytes())
    return path


def tiny_png(path: Path) -> Path:
    Image.new("RGB", (4, 4), (200, 150, 120)).save(path, "PNG")
    return path
