"""The PCA floor baseline is an ordinary model file whose embeddings are sklearn's PCA coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from facesearch.evaluation.baselines import fit_pca_encoder
from facesearch.embedding.imaging import load_face
from facesearch.models import load_encoder, save_encoder
from facesearch.models.encoder import normalize


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_encoder_embeds_faces_as_their_normalised_pca_coordinates(
    faces_dir: Path, tmp_path: Path, whiten: bool
) -> None:
    encoder, count = fit_pca_encoder(faces_dir, dim=8, whiten=whiten)
    assert count == 24
    images = torch.from_numpy(np.stack([load_face(p, 112)[0] for p in sorted(faces_dir.glob("*/*.jpg"))]))
    grey = torch.nn.functional.avg_pool2d((normalize(images) * torch.tensor([0.299, 0.587, 0.114])[:, None, None])
                                          .sum(1, keepdim=True), 2).flatten(1).double().numpy()
    expected = PCA(8, whiten=whiten, svd_solver="randomized", random_state=0).fit(grey).transform(grey)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = encoder.embed(images).numpy()
    assert np.abs(got - expected).max() < 1e-4
    save_encoder(encoder, tmp_path / "pca.pt")
    loaded, _ = load_encoder(tmp_path / "pca.pt")
    assert torch.equal(loaded.embed(images), encoder.embed(images))
