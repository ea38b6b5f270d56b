"""Face encoder networks: backbones (registry), embedding heads, the encoder and its file."""

from facesearch.models.backbones import create_backbone, list_backbones, register
from facesearch.models.encoder import (
    Encoder,
    EncoderConfig,
    build_encoder,
    copy_model_file,
    encoder_fingerprint,
    load_encoder,
    save_encoder,
)

__all__ = [
    "Encoder",
    "EncoderConfig",
    "build_encoder",
    "copy_model_file",
    "create_backbone",
    "encoder_fingerprint",
    "list_backbones",
    "load_encoder",
    "register",
    "save_encoder",
]
