"""Safe image decoding and preprocessing of face crops.

Every image that reaches the encoder passes through here, so this is where bad files are
turned into a clear :class:`~facesearch.errors.ImageError` instead of a crash or, worse, a
silently wrong embedding. The format is sniffed from the content (extensions lie), only a
short list of raster decoders is enabled, and the pixel count is checked from the header
before any pixel is decoded (decompression bombs).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facesearch.errors import ImageError

ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM")
"""Decoders we trust with untrusted files; everything else (EPS, PDF, ...) is refused."""


_PLUGINS = ("Jpeg", "Mpo", "Png", "Bmp", "WebP", "Tiff", "Gif", "Ppm")
"""Pillow's modules of ALLOWED_FORMATS."""


@functools.cache
def _registered_formats() -> tuple[str, ...]:
    """The allowed formats this Pillow has openers for (MPO, for one, comes and goes). Only
    their plugins are imported: ``Image.init()`` imports all of Pillow's, twice the time
    (80 against 38 ms, ad hoc), the largest part of it in a cold query's decode."""
    for name in _PLUGINS:
        try:
            importlib.import_module(f"PIL.{name}ImagePlugin")
        except ImportError:  # a Pillow built without it: that format is not offered
            pass
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)

NON_IMAGE_SUFFIXES = frozenset(
    {".txt", ".csv", ".json", ".md", ".db", ".ini", ".yaml", ".yml", ".py", ".log", ".pt", ".faiss"}
)
"""Files a gallery folder may hold beside its photos (notes, label lists): not tried."""

BACKGROUND = (128, 128, 128)
"""Transparent pixels are composited onto mid-grey: 0 after the encoder's normalisation."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on what a single image may cost to decode."""

    max_bytes: int = 100 * 2**20
    max_pixels: int = 40_000_000
    min_side: int = 16


DEFAULT_LIMITS = DecodeLimits()


def read_bytes(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a file whole, refusing missing, unreadable and oversized files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageError(path, f"file is {size} bytes, over the limit of {limits.max_bytes}")
        if size == 0:
            raise ImageError(path, "file is empty")
        return path.read_bytes()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from None


def content_hash(data: bytes) -> str:
    """The identity of an image file for de-duplication: SHA-256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def decode(
    data: bytes,
    source: str | Path = "<bytes>",
    limits: DecodeLimits = DEFAULT_LIMITS,
    draft_side: int | None = None,
) -> Image.Image:
    """Decode image bytes to an upright 8-bit RGB image.

    ``draft_side`` lets the JPEG decoder scale down by DCT while decoding (much faster for
    large photos); the result is still at least that many pixels on each side.
    """
    if not data:
        raise ImageError(source, "file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=_registered_formats())
        except UnidentifiedImageError:
            raise ImageError(source, "not an image, or a format that is not supported") from None
        except Image.DecompressionBombError as exc:
            raise ImageError(source, f"refused as a possible decompression bomb ({exc})") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(source, f"cannot read image header ({exc})") from None
        width, height = img.size
        if width * height > limits.max_pixels:
            raise ImageError(
                source,
                f"image is {width}x{height} = {width * height} pixels, over the limit of "
                f"{limits.max_pixels} (possible decompression bomb)",
            )
        if min(width, height) < limits.min_side:
            raise ImageError(
                source, f"image is {width}x{height}, too small for a face "
                f"(at least {limits.min_side} px a side)"
            )
        if draft_side and img.format in ("JPEG", "MPO"):
            img.draft(None, (draft_side, draft_side))
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
        except Image.DecompressionBombWarning as exc:
            raise ImageError(source, f"refused as a possible decompression bomb ({exc})") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            reason = str(exc) or type(exc).__name__
            if "truncated" in reason:
                reason = "image file is truncated"
            raise ImageError(source, f"cannot decode image ({reason})") from None
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16-bit and float scaled, alpha flattened, CMYK converted."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _wide_grey_to_rgb(img)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def _wide_grey_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale: scale the full range to 0..255, not clip it."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        arr = arr / 65535.0
    elif img.mode == "I" and arr.max(initial=0) > 255:
        arr = arr / (65535.0 if arr.max() <= 65535 else float(arr.max()))
    elif img.mode == "I":
        arr = arr / 255.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    grey = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def square_resize(img: Image.Image, side: int) -> Image.Image:
    """The centred square of a crop of any aspect ratio, resized (antialiased) to side x side.

    Face crops are roughly square around the face; the centre square keeps the face and
    drops the extra background of elongated crops rather than squashing the face.
    """
    width, height = img.size
    short = min(width, height)
    left, top = (width - short) // 2, (height - short) // 2
    return img.resize(
        (side, side), Image.Resampling.BILINEAR, box=(left, top, left + short, top + short)
    )


def to_chw(pixels: Image.Image | np.ndarray) -> np.ndarray:
    """An RGB image (PIL or (H, W, 3) array) as uint8 (3, H, W): the form batches travel in."""
    return np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).transpose(2, 0, 1))


def load_face(path: str | Path, side: int = 112, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Read, decode and resize one tight face crop: (uint8 (3, side, side), content hash)."""
    data = read_bytes(path, limits)
    img = decode(data, path, limits, draft_side=side)
    return to_chw(square_resize(img, side)), content_hash(data)


def is_candidate(path: Path) -> bool:
    """Files worth trying as images: not hidden, not obviously another kind of file.

    Extensions are not trusted for the format (decode() sniffs the content); this only keeps
    notes, CSVs and OS litter out of a gallery folder.
    """
    return not path.name.startswith(".") and path.suffix.lower() not in NON_IMAGE_SUFFIXES
