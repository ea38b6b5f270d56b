"""Fuzzing the parsers of untrusted input (Hypothesis): mutated image bytes into the decoder,
mutated model files into the model loader, random pairs files and label CSVs into their
parsers. Every input ends in a result or the project's own error, within a time bound (each
example's deadline), never another exception. Example counts stay small so the suite is
fast; ``--hypothesis-profile=long`` (see conftest) runs 20x more."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facesearch.evaluation.hw2p2 import read_labels
from facesearch.errors import FaceSearchError
from facesearch.embedding.imaging import DecodeLimits, decode, square_resize, to_chw
from facesearch.models.encoder import read_model_file
from facesearch.evaluation.verification import read_pairs

FAST = settings(deadline=2000, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile
LIMITS = DecodeLimits(max_pixels=4_000_000)  # a mutated header may claim any size: bounded here


def _sample(format: str) -> bytes:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


SAMPLES = {fmt: _sample(fmt) for fmt in ("JPEG", "PNG", "GIF", "TIFF", "WEBP")}


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Flipped bytes, a cut, or an inserted run: the damage real files show."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_mutated_images_decode_or_fail_cleanly(fmt: str) -> None:
    @FAST
    @given(mutated(SAMPLES[fmt]))
    def check(data: bytes) -> None:
        try:
            image = decode(data, f"fuzz.{fmt.lower()}", LIMITS)
        except FaceSearchError:
            return
        face = to_chw(square_resize(image, 32))
        assert face.shape == (3, 32, 32)

    check()


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from facesearch.models.encoder import EncoderConfig, build_encoder, save_encoder

    path = tmp_path_factory.mktemp("fuzz") / "m.pt"
    save_encoder(build_encoder(EncoderConfig(backbone="grey_pixels", head="linear", embedding_dim=8, input_size=32)), path)
    return path.read_bytes()


def test_mutated_model_files_load_or_fail_cleanly(model_bytes: bytes) -> None:
    folder = Path(tempfile.mkdtemp())
    try:

        @FAST
        @given(mutated(model_bytes))
        def check(data: bytes) -> None:
            path = folder / "m.pt"
            path.write_bytes(data)
            try:
                read_model_file(path)
            except FaceSearchError:
                pass

        check()
    finally:
        shutil.rmtree(folder)


LINE = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
    st.builds(lambda *f: "\t".join(f), st.sampled_from(["p0", "p1", "x"]), st.sampled_from(["1", "2", "-1", "0001", "zz"]),
              st.sampled_from(["1", "2", "p1", ""]), st.sampled_from(["", "1", "2"])),
)


@pytest.fixture(scope="module")
def pairs_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs-images")
    for person in ("p0", "p1"):
        (root / person).mkdir()
        for n in (1, 2):
            (root / person / f"{person}_{n:04d}.jpg").write_bytes(SAMPLES["JPEG"])
    return root


def test_random_pairs_files_parse_or_fail_cleanly(pairs_images: Path) -> None:
    folder = Path(tempfile.mkdtemp())
    try:

        @FAST
        @given(st.lists(LINE, max_size=12), st.binary(max_size=16))
        def check(lines: list[str], junk: bytes) -> None:
            path = folder / "pairs.txt"
            path.write_bytes("\n".join(["2\t1", *lines]).encode() + junk)
            try:
                pairs = read_pairs(path, pairs_images)
            except FaceSearchError:
                return
            assert len(pairs.left) == len(pairs.right) == len(pairs.same)

        check()
    finally:
        shutil.rmtree(folder)


def test_random_label_csvs_parse_or_fail_cleanly(tmp_path: Path) -> None:
    files = [tmp_path / f"{i:06d}.jpg" for i in range(3)]
    cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
    folder = Path(tempfile.mkdtemp())
    try:

        @FAST
        @given(st.lists(st.lists(cell, max_size=4), max_size=6), st.sampled_from(["id,label", "label", "", "id"]),
               st.binary(max_size=8))
        def check(rows: list[list[str]], header: str, junk: bytes) -> None:
            path = folder / "labels.csv"
            body = "\n".join([header, *(",".join(r) for r in rows)])
            path.write_bytes(body.encode() + junk)
            try:
                labels = read_labels(path, files)
            except FaceSearchError:
                return
            assert set(labels) == set(files) and all(isinstance(v, str) for v in labels.values())

        check()
    finally:
        shutil.rmtree(folder)
