"""Torch datasets over image files, so decoding (and face finding) runs in DataLoader
worker processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from facesearch.errors import ImageError
from facesearch.face_finding.base import Face
from facesearch.face_finding.prepare import FacePreparer
from facesearch.imaging import content_hash, decode, read_bytes, to_tensor
from facesearch.preprocessing import Preprocessing


@dataclass
class DecodedBatch:
    """A batch of decode results: good images stacked, failures kept with their reason.

    ``faces[i]`` is the detected face that ``images[i]`` shows (None: the whole image) and
    ``found[i]`` how many faces its photo had (None: no detection; 0: none, whole image).
    """

    positions: list[int]
    images: torch.Tensor | None
    hashes: list[str]
    failures: list[tuple[int, str]]
    faces: list[Face | None] = field(default_factory=list)
    found: list[int | None] = field(default_factory=list)


Item = tuple[int, "torch.Tensor | None", str, "str | None", "Face | None", "int | None"]


class FaceFiles(Dataset):
    """Decodes photos into their largest face; a bad file yields its error instead of
    killing the loader."""

    def __init__(self, paths: Sequence[Path], preparer: FacePreparer) -> None:
        self.paths = list(paths)
        self.preparer = preparer

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> Item:
        path = self.paths[position]
        try:
            data = read_bytes(path)
            image = decode(data, path, draft_side=self.preparer.draft_side)
            face, found = self.preparer.largest(image, path)
            return position, to_tensor(face.pixels), content_hash(data), None, face.face, found
        except ImageError as exc:
            return position, None, "", exc.reason, None, None


def collate(items: list[Item]) -> DecodedBatch:
    good = [item for item in items if item[1] is not None]
    return DecodedBatch(
        positions=[item[0] for item in good],
        images=torch.stack([item[1] for item in good]) if good else None,
        hashes=[item[2] for item in good],
        failures=[(item[0], item[3]) for item in items if item[1] is None and item[3] is not None],
        faces=[item[4] for item in good],
        found=[item[5] for item in good],
    )


def default_workers(count: int, batch_size: int, detecting: bool = False) -> int:
    """Half the cores decode, the rest run the encoder; with face detection as many workers
    as cores, since a photo then costs its worker about what its face costs the encoder
    (raw-photo enroll of 300 photos, SFace + YuNet on 2 cores, measured ad hoc: 50.9 photos/s
    with 2 workers, 40.9 with 1; benchmarks/photos.py's enroll_photos stage measures the default).
    Workers pay off only beyond a couple of batches (starting one costs more than decoding
    a few images)."""
    if count < 2 * batch_size:
        return 0
    cores = os.cpu_count() or 1
    return max(1, min(8, cores if detecting else cores // 2))


def face_loader(
    paths: Sequence[Path],
    side: int | FacePreparer = 112,
    batch_size: int = 64,
    workers: int | None = None,
) -> DataLoader:
    """Batches of decoded faces in input order (failures included, see DecodedBatch);
    ``side``: a crop side (tight crops) or the preparer of an encoder's faces."""
    preparer = side if isinstance(side, FacePreparer) else FacePreparer(Preprocessing(input_size=side))
    workers = default_workers(len(paths), batch_size, preparer.detects) if workers is None else workers
    return DataLoader(
        FaceFiles(paths, preparer),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
    )
