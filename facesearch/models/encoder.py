"""The face encoder (backbone + embedding head) and its model file.

A model file is a plain ``torch.save`` of a dict of primitives and tensors, so it loads with
``weights_only=True``: opening a model file never runs code from it. It carries the config
needed to rebuild the network and a fingerprint (SHA-256 over config and weights), which
binds a gallery to the exact encoder that produced its embeddings.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesearch.devices import autocast, resolve_device
from facesearch.errors import ModelError
from facesearch.fileio import atomic_write
from facesearch.models.backbones import create_backbone
from facesearch.models.classifier import Classifier
from facesearch.models.heads import create_head
from facesearch.embedding.preprocessing import Preprocessing

FORMAT = "facesearch.encoder"
FORMAT_VERSION = 1
MEAN = 0.5
STD = 0.5


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to rebuild an encoder's network (the weights live beside it)."""

    backbone: str = "litface"
    embedding_dim: int = 512
    input_size: int = 112
    head: str = "gdc"
    dropout: float = 0.0
    drop_path: float = 0.0
    seed: int = 0
    # Test-time augmentation: embed each face and its mirror image, sum, renormalise. It
    # changes every embedding, so it is part of the encoder (and of its fingerprint).
    flip: bool = False
    # How faces are prepared for this network (see facesearch.embedding.preprocessing): every model
    # trained before detection existed saw tight crops.
    alignment: str = "crop"
    detect: bool = False

    def __post_init__(self) -> None:
        Preprocessing(self.input_size, self.alignment, self.detect)  # refuses unknown alignments

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Encoder(nn.Module):
    """Backbone + embedding head. ``forward`` gives raw embeddings (losses normalise them);
    ``embed`` gives what the gallery stores: L2-normalised float32 on the CPU."""

    calibration: dict[str, Any] | None = None  # a model file's meta ``calibration`` (gallery.calibration)

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.backbone = create_backbone(config.backbone, drop_path=config.drop_path)
            channels, height, width = self._feature_shape()
            self.head = create_head(
                config.head, channels, height, width, config.embedding_dim, config.dropout
            )

    def _feature_shape(self) -> tuple[int, int, int]:
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            size = self.config.input_size
            out = self.backbone(torch.zeros(1, 3, size, size))
        self.backbone.train(was_training)
        return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- the runtime-neutral face encoder interface (facesearch.embedding.encoders.FaceEncoder) ---

    @property
    def preprocessing(self) -> Preprocessing:
        return preprocessing_of(self.config)

    @property
    def dim(self) -> int:
        return self.config.embedding_dim

    @property
    def flip(self) -> bool:
        return self.config.flip

    def describe(self) -> dict[str, Any]:
        """What the gallery stores about its encoder."""
        return asdict(self.config)

    def embed_faces(self, images: Any) -> np.ndarray:
        """uint8 (N, 3, S, S) faces (tensor or array) -> L2-normalised float32 (N, D)."""
        return self.embed(torch.as_tensor(images)).numpy()

    @torch.inference_mode()
    def embed(self, images: torch.Tensor, unit: bool = True) -> torch.Tensor:
        """uint8 (N, 3, S, S) face crops -> L2-normalised float32 (N, D) embeddings on CPU
        (``unit=False``: the raw head output, which a phase-1 classifier with a bias needs)."""
        if self.training:
            self.eval()
        device = self.device
        # channels_last pays on CPU too (about 1.5x on this project's CPU benchmark).
        x = normalize(images.to(device, non_blocking=True)).contiguous(
            memory_format=torch.channels_last
        )
        with autocast(device):
            out = self(x)
            if self.config.flip:
                out = out.float() + self(x.flip(3)).float()
        return (F.normalize(out.float(), dim=1) if unit else out.float()).cpu()


def preprocessing_of(config: EncoderConfig) -> Preprocessing:
    """Tight crops or aligned faces, at the network's side; pixels to [-1, 1]."""
    c = config
    return Preprocessing(c.input_size, c.alignment, c.detect, "rgb", (MEAN * 255,) * 3, (STD * 255,) * 3)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB -> float in [-1, 1], the encoder's input range."""
    return (images.float() / 255.0 - MEAN) / STD


def build_encoder(config: EncoderConfig | None = None, device: str | None = None) -> Encoder:
    """A randomly initialised (seeded, so reproducible) encoder, ready for inference."""
    encoder = Encoder(config or EncoderConfig())
    return prepare(encoder, device)


def prepare(encoder: Encoder, device: str | None) -> Encoder:
    target = resolve_device(device)
    return encoder.to(target, memory_format=torch.channels_last).eval()


# Config fields added after the first model files: they enter the fingerprint only when set
# away from their default, so that every existing model keeps its fingerprint.
_LATER_FIELDS = {"flip": False, "alignment": "crop", "detect": False}


def fingerprint(config: EncoderConfig, state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the config and every tensor (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    described = {k: v for k, v in asdict(config).items() if _LATER_FIELDS.get(k, object()) != v}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_fingerprint(encoder: Encoder) -> str:
    return fingerprint(encoder.config, encoder.state_dict())


def save_encoder(
    encoder: Encoder,
    path: str | Path,
    meta: dict[str, Any] | None = None,
    half: bool = False,
    classifier: Classifier | None = None,
) -> str:
    """Write a model file atomically; returns its fingerprint. ``half`` stores fp16 weights;
    ``classifier``, the trained classifier, is kept for classification benchmarks."""
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in encoder.state_dict().items()
    }
    fp = fingerprint(encoder.config, state)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": asdict(encoder.config),
        "state_dict": state,
        "fingerprint": fp,
        "meta": meta or {},
    }
    if classifier is not None:
        payload["classifier"] = classifier.to_payload()
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return fp


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Load and validate a model file's payload, refusing anything that is not ours."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"{path}: not a readable facesearch model file ({_refusal(exc)})") from None
    except Exception as exc:  # torch raises many kinds (zip, runtime) for bad files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a readable facesearch model file ({first_line})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not a facesearch model file")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{path}: written by a newer facesearch (format {payload['format_version']})")
    config = EncoderConfig.from_dict(payload.get("config", {}))
    state = payload.get("state_dict", {})
    if fingerprint(config, state) != payload.get("fingerprint"):
        raise ModelError(f"{path}: model file is corrupt (its weights do not match its fingerprint)")
    payload["config"] = config
    return payload


def _refusal(exc: pickle.UnpicklingError) -> str:
    """Why the safe unpickler refused a file, without torch's advice to load it unsafely."""
    lines = [line.strip() for line in str(exc).splitlines()]
    named = re.search(r"(?:unsupported global:?|unsupported) (GLOBAL \S+)", str(exc), re.IGNORECASE)
    if named:  # an object that is no tensor or primitive: loading it could run code
        return f"it holds a Python object no model file has ({named.group(1)}), not loaded"
    detail = next((line for line in lines if line.startswith("Unsupported operand") or "load key" in line), "")
    return f"not a torch file, or a damaged one{': ' + detail if detail else ''}"


def with_flip(payload: dict[str, Any], flip: bool | None) -> dict[str, Any]:
    """A model file's payload with flip test-time augmentation set (None: as stored); the
    weights are shared, the config and fingerprint are those of the variant."""
    if flip is None or payload["config"].flip == flip:
        return payload
    config = replace(payload["config"], flip=flip)
    return {**payload, "config": config, "fingerprint": fingerprint(config, payload["state_dict"])}


def copy_model_file(source: str | Path, target: str | Path, flip: bool | None = None) -> str:
    """Write ``source`` (or its flip variant) to ``target`` atomically; returns its fingerprint.
    The weights are written as stored (fp16 stays fp16), so the fingerprint is unchanged."""
    payload = with_flip(read_model_file(source), flip)
    with atomic_write(target) as handle:
        torch.save({**payload, "config": asdict(payload["config"])}, handle)
    return payload["fingerprint"]


def load_encoder(path: str | Path, device: str | None = None, flip: bool | None = None) -> tuple[Encoder, str]:
    """Rebuild the encoder from a model file: (encoder ready for inference, fingerprint);
    ``flip`` turns flip test-time augmentation on or off (None: as the file says)."""
    return encoder_from_payload(with_flip(read_model_file(path), flip), path, device)


def encoder_from_payload(payload: dict[str, Any], path: str | Path, device: str | None = None) -> tuple[Encoder, str]:
    """The encoder of an already read (``read_model_file``) payload, and its fingerprint."""
    config: EncoderConfig = payload["config"]
    try:
        encoder = Encoder(config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        encoder.load_state_dict(state)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: weights do not fit the model's config ({exc})") from None
    encoder.calibration = (payload.get("meta") or {}).get("calibration")
    return prepare(encoder, device), payload["fingerprint"]


def load_classifier(path: str | Path, device: str | None = None) -> tuple[Encoder, Classifier]:
    """The encoder (without flip: the classifier was trained on plain embeddings) and the
    classifier of a model file written by ``facesearch train``."""
    payload = read_model_file(path)
    if "classifier" not in payload:
        raise ModelError(f"{path}: has no classifier (only `facesearch train` model files do)")
    classifier = Classifier.from_payload(payload["classifier"], str(path))
    encoder, _ = encoder_from_payload(with_flip(payload, False), path, device)
    if classifier.weight.shape[1] != encoder.config.embedding_dim:
        raise ModelError(f"{path}: its classifier does not fit the encoder's embedding size")
    return encoder, classifier
