"""Baseline encoders that are fitted, not trained: the floor a trained encoder must beat.

Each is an ordinary ``Encoder`` saved as an ordinary model file, so ``facesearch bench``
measures it with exactly the protocol used for trained encoders (benchmarks/pca_baseline.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facesearch.embedding.loader import face_loader
from facesearch.gallery.layouts import gallery_images
from facesearch.models import Encoder, EncoderConfig, build_encoder
from facesearch.models.encoder import normalize


def fit_pca_encoder(
    data: str | Path, dim: int = 128, whiten: bool = False, batch_size: int = 256
) -> tuple[Encoder, int]:
    """PCA on grey pixels fitted on every decodable face of ``data``: (encoder, faces used).

    The ``grey_pixels`` backbone (luminance at 56x56) feeds the ``linear`` head, which holds
    weights = the top ``dim`` components (divided by their standard deviations with
    ``whiten``) and bias = -weights @ mean: an embedding is the centred face's coordinates.
    """
    from sklearn.decomposition import PCA

    encoder = build_encoder(EncoderConfig(backbone="grey_pixels", head="linear", embedding_dim=dim), "cpu")
    images, _ = gallery_images(data)
    rows = []
    with torch.inference_mode():
        for batch in face_loader([i.path for i in images], 112, batch_size):
            if batch.images is not None:
                rows.append(encoder.backbone(normalize(torch.from_numpy(batch.images))).flatten(1).double().numpy())
    pixels = np.concatenate(rows)
    pca = PCA(n_components=dim, whiten=whiten, svd_solver="randomized", random_state=0).fit(pixels)
    weight = pca.components_
    if whiten:
        weight = weight / np.sqrt(pca.explained_variance_)[:, None]
    linear = encoder.head[1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(-weight @ pca.mean_))
    return encoder, len(pixels)
