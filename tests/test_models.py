"""Encoder: every backbone embeds 112x112 crops; model files round-trip and refuse bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facesearch.errors import ModelError
from facesearch.models import EncoderConfig, build_encoder, encoder_fingerprint, list_backbones
from facesearch.models.encoder import load_encoder, save_encoder

BATCH = torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8)


def test_registry_has_the_promised_backbones() -> None:
    assert {"resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_large",
            "convnext_tiny", "litface", "litface_relu"} <= set(list_backbones())


@pytest.mark.parametrize(
    ("backbone", "head"),
    [(name, "gdc") for name in list_backbones()] + [("litface", "fc"), ("litface", "avg"), ("grey_pixels", "linear")],
)
def test_every_backbone_gives_normalised_512d_embeddings(backbone: str, head: str) -> None:
    encoder = build_encoder(EncoderConfig(backbone=backbone, head=head))
    out = encoder.embed(BATCH)
    assert out.shape == (2, 512) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_backbones_end_at_7x7_for_112_crops() -> None:
    for name in ("resnet18", "mobilenet_v2", "convnext_tiny", "litface"):
        encoder = build_encoder(EncoderConfig(backbone=name))
        with torch.no_grad():
            fmap = encoder.backbone(torch.zeros(1, 3, 112, 112))
        assert fmap.shape[-2:] == (7, 7), name


def test_seeded_random_encoder_is_reproducible() -> None:
    a, b = build_encoder(EncoderConfig(seed=3)), build_encoder(EncoderConfig(seed=3))
    c = build_encoder(EncoderConfig(seed=4))
    assert encoder_fingerprint(a) == encoder_fingerprint(b) != encoder_fingerprint(c)
    assert torch.equal(a.embed(BATCH), b.embed(BATCH))


def test_model_file_round_trip(tmp_path: Path) -> None:
    encoder = build_encoder(EncoderConfig(backbone="litface", seed=5))
    fp = save_encoder(encoder, tmp_path / "m.pt", meta={"epochs": 0})
    loaded, loaded_fp = load_encoder(tmp_path / "m.pt")
    assert loaded_fp == fp == encoder_fingerprint(encoder)
    assert torch.allclose(loaded.embed(BATCH), encoder.embed(BATCH), atol=1e-6)
    # weights_only=True: the file holds only tensors and primitives
    torch.load(tmp_path / "m.pt", weights_only=True)


def test_half_precision_model_file(tmp_path: Path) -> None:
    encoder = build_encoder()
    save_encoder(encoder, tmp_path / "full.pt")
    save_encoder(encoder, tmp_path / "half.pt", half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    loaded, _ = load_encoder(tmp_path / "half.pt")
    assert torch.nn.functional.cosine_similarity(loaded.embed(BATCH), encoder.embed(BATCH)).min() > 0.99


def test_missing_truncated_foreign_and_tampered_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_encoder(tmp_path / "none.pt")
    good = tmp_path / "good.pt"
    save_encoder(build_encoder(), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a readable facesearch model"):
        load_encoder(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelError, match="not a facesearch model"):
        load_encoder(foreign)
    payload = torch.load(good, weights_only=True)
    first = next(iter(payload["state_dict"]))
    payload["state_dict"][first] = payload["state_dict"][first] + 1
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(ModelError, match="corrupt"):
        load_encoder(tampered)


def test_unknown_backbone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build_encoder(EncoderConfig(backbone="vgg"))


def test_flip_tta_is_mirror_invariant_and_enters_only_its_own_fingerprints(tmp_path: Path) -> None:
    import hashlib
    import json
    from dataclasses import asdict

    from facesearch.models.encoder import copy_model_file, fingerprint

    plain = build_encoder(EncoderConfig())
    images = torch.randint(0, 256, (3, 3, 112, 112), dtype=torch.uint8)
    # Models written before flip existed keep their fingerprint: the format-1 formula.
    later = {"flip", "alignment", "detect"}  # fields added since format 1, at their defaults
    digest = hashlib.sha256(json.dumps({k: v for k, v in asdict(plain.config).items() if k not in later},
                                       sort_keys=True).encode())
    for name, tensor in sorted(plain.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    assert encoder_fingerprint(plain) == digest.hexdigest()

    save_encoder(plain, tmp_path / "m.pt", half=True)
    flipped, fp = load_encoder(tmp_path / "m.pt", flip=True)
    assert flipped.config.flip and fp not in (encoder_fingerprint(plain), load_encoder(tmp_path / "m.pt")[1])
    both = flipped.embed(images)
    assert torch.allclose(both, flipped.embed(images.flip(3)), atol=1e-5)  # a face and its mirror: one embedding
    stored = load_encoder(tmp_path / "m.pt")[0]  # the same fp16-rounded weights, without flip
    raw_sum = stored.embed(images, unit=False) + stored.embed(images.flip(3), unit=False)
    expected = torch.nn.functional.normalize(raw_sum)
    assert torch.allclose(both, expected, atol=1e-4)
    assert not torch.allclose(both, stored.embed(images), atol=1e-3)
    # The flip variant's file: same fp16 weights, flip in its config, its own fingerprint.
    assert copy_model_file(tmp_path / "m.pt", tmp_path / "f.pt", flip=True) == fp
    again, again_fp = load_encoder(tmp_path / "f.pt")
    stored_weights = torch.load(tmp_path / "f.pt")["state_dict"]
    assert again.config.flip and again_fp == fp == fingerprint(again.config, stored_weights)
