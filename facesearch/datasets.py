"""Torch datasets over image files, so decoding runs in DataLoader worker processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from facesearch.errors import ImageError
from facesearch.imaging import load_face


@dataclass
class DecodedBatch:
    """A batch of decode results: good images stacked, failures kept with their reason."""

    positions: list[int]
    images: torch.Tensor | None
    hashes: list[str]
    failures: list[tuple[int, str]]


class FaceFiles(Dataset):
    """Decodes face crops; a bad file yields its error instead of killing the loader."""

    def __init__(self, paths: Sequence[Path], side: int = 112) -> None:
        self.paths = list(paths)
        self.side = side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor | None, str, str | None]:
        try:
            tensor, digest = load_face(self.paths[position], self.side)
            return position, tensor, digest, None
        except ImageError as exc:
            return position, None, "", exc.reason


def collate(items: list[tuple[int, torch.Tensor | None, str, str | None]]) -> DecodedBatch:
    good = [(pos, t, h) for pos, t, h, err in items if t is not None]
    return DecodedBatch(
        positions=[pos for pos, _, _ in good],
        images=torch.stack([t for _, t, _ in good]) if good else None,
        hashes=[h for _, _, h in good],
        failures=[(pos, err) for pos, t, _, err in items if t is None and err is not None],
    )


def default_workers(count: int, batch_size: int) -> int:
    """Half the cores decode, the rest run the encoder; workers pay off only beyond a
    couple of batches (starting one costs more than decoding a few images)."""
    if count < 2 * batch_size:
        return 0
    return max(1, min(8, (os.cpu_count() or 1) // 2))


def face_loader(
    paths: Sequence[Path], side: int = 112, batch_size: int = 64, workers: int | None = None
) -> DataLoader:
    """Batches of decoded faces in input order (failures included, see DecodedBatch)."""
    workers = default_workers(len(paths), batch_size) if workers is None else workers
    return DataLoader(
        FaceFiles(paths, side),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
    )
