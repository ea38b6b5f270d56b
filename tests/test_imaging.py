"""Safe decoding: every bad input of docs/design.md gets a clear ImageError, awkward modes decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.errors import ImageError
from facesearch.embedding.imaging import DecodeLimits, decode, load_face, read_bytes, square_resize, to_rgb
from tests import badfiles


def test_face_crop_becomes_uint8_112(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(badfiles.face_jpeg_bytes(size=250))
    tensor, digest = load_face(path)
    assert tensor.shape == (3, 112, 112) and tensor.dtype == np.uint8
    assert len(digest) == 64


@pytest.mark.parametrize("size", [(300, 100), (100, 300), (17, 900), (1000, 1000)])
def test_any_aspect_ratio_gives_the_centred_square(size: tuple[int, int]) -> None:
    img = Image.new("RGB", size, (0, 0, 0))
    w, h = size
    s = min(w, h)
    img.paste((255, 255, 255), ((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    out = np.asarray(square_resize(img, 112))
    assert out.shape == (112, 112, 3)
    assert out[2:-2, 2:-2].min() > 200  # only the white centre square remains


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        (badfiles.truncated_jpeg, "truncated"),
        (badfiles.not_an_image, "not an image"),
        (badfiles.empty_file, "empty"),
        (badfiles.png_bomb, "decompression bomb"),
        (badfiles.tiny_png, "too small"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(tmp_path: Path, writer, reason: str) -> None:
    path = writer(tmp_path / "bad.jpg")
    with pytest.raises(ImageError) as err:
        load_face(path)
    assert reason in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_bytes(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        read_bytes(tmp_path)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(badfiles.face_jpeg_bytes())
    with pytest.raises(ImageError, match="over the limit"):
        read_bytes(path, DecodeLimits(max_bytes=100))


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    img = decode(badfiles.sixteen_bit_png(tmp_path / "x.png").read_bytes())
    arr = np.asarray(img)
    assert img.mode == "RGB"
    # Clipping 16-bit values to 8 bits would make nearly every pixel 255.
    assert 40 < arr.mean() < 220 and (arr < 250).mean() > 0.9


@pytest.mark.parametrize(
    "writer",
    [badfiles.cmyk_jpeg, badfiles.palette_png_with_transparency, badfiles.rgba_png, badfiles.png_named_jpg],
)
def test_awkward_modes_and_lying_extensions_decode_to_rgb(tmp_path: Path, writer) -> None:
    path = writer(tmp_path / "face.jpg")
    tensor, _ = load_face(path)
    assert tensor.shape == (3, 112, 112)
    assert 20 < tensor.mean() < 235


def test_alpha_is_flattened_onto_grey(tmp_path: Path) -> None:
    img = decode(badfiles.rgba_png(tmp_path / "a.png").read_bytes())
    assert tuple(np.asarray(img)[5, 5]) == (128, 128, 128)


def test_transparency_has_one_rule_opaque_alpha_changes_nothing(tmp_path: Path) -> None:
    """Alpha is flattened in one place (imaging.to_rgb) onto mid-grey, the encoder's zero:
    an opaque alpha channel gives exactly the RGB photo's encoder input, a transparent pixel
    is grey whatever colour it hides, a half-transparent one is the mix."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    alpha = np.full((64, 64, 1), 255, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(tmp_path / "opaque.png")
    assert np.array_equal(load_face(tmp_path / "rgb.png")[0], load_face(tmp_path / "opaque.png")[0])
    alpha[:8] = 0
    alpha[8:16] = 128
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(tmp_path / "holes.png")
    flat = np.asarray(decode((tmp_path / "holes.png").read_bytes())).astype(int)
    assert (flat[:8] == 128).all()
    mix = (rgb[8:16].astype(int) * 128 + 128 * 127) / 255
    assert np.abs(flat[8:16] - mix).max() <= 1


@pytest.mark.parametrize("mode", ["L", "LA", "1", "I", "F", "P", "YCbCr"])
def test_every_mode_converts_to_rgb(mode: str) -> None:
    img = Image.new("RGB", (32, 32), (90, 140, 200)).convert(mode)
    assert to_rgb(img).mode == "RGB"


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = decode(badfiles.exif_rotated_jpeg(tmp_path / "r.jpg").read_bytes())
    assert img.size == (120, 160)  # stored 160x120 landscape, shown upright as portrait


def test_format_is_sniffed_from_content_not_extension(tmp_path: Path) -> None:
    jpeg = tmp_path / "face.png"
    jpeg.write_bytes(badfiles.face_jpeg_bytes())
    assert decode(jpeg.read_bytes()).size == (112, 112)
