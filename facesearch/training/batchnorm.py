"""Re-estimating BatchNorm statistics with the current weights (before validation and export)."""

from __future__ import annotations

import torch
from torch import nn

from facesearch.devices import autocast
from facesearch.models.encoder import Encoder, normalize
from facesearch.training.face_sets import FaceSet

CALIBRATION_IMAGES = 1024


def calibration_images(train: FaceSet, seed: int, workers: int | None) -> torch.Tensor:
    """A fixed, seeded sample of training crops for ``recalibrate_batchnorm``."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:CALIBRATION_IMAGES]
    if train.images is not None:
        return train.images[order]
    return FaceSet.decode([train.paths[i] for i in order.tolist()], train.side, workers).images  # type: ignore[return-value]


@torch.no_grad()
def recalibrate_batchnorm(encoder: Encoder, images: torch.Tensor, batch_size: int = 128) -> None:
    """Re-estimate every BatchNorm's running statistics with the current weights.

    During training they are a moving average over the last few dozen batches, taken while
    the weights were still moving; after a short or fast-changing run they no longer match
    the network, and in eval mode its outputs collapse (every face looks alike). A pass over
    a fixed sample of training crops with a cumulative average fixes this before each
    validation and export. Training itself never reads these statistics.
    """
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(images) < 2:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    encoder.train()
    device = encoder.device
    with torch.random.fork_rng(devices=[]):  # stochastic depth draws: keep the run's RNG as is
        for i in range(0, len(images) - 1, batch_size):
            x = normalize(images[i : i + batch_size].to(device)).contiguous(memory_format=torch.channels_last)
            if len(x) > 1:
                with autocast(device):
                    encoder(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    encoder.eval()
