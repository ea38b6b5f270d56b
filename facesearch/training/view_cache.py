"""K augmented views of each training face, embedded by the teacher once (``--teacher-views
cached``): function matching at the price of fixed targets.

A view is not stored as pixels (60k faces x 4 views of 112x112 would be 9 GB) but as a seed:
view ``k`` of the face at ``position`` is the training transform run under the global RNG
seeded with ``view_seed(seed, position, k, K)``, so the data loader draws the very pixels the
teacher embedded, bit for bit, every time. Only the teacher's embeddings are kept, as float16
(60k x 4 x 128 dims: 62 MB), in the run's folder, stamped with what made them, and saved as
they are computed, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facesearch.embedding.encoders import FaceEncoder
from facesearch.fileio import atomic_write
from facesearch.progress import Progress, quiet
from facesearch.training.teacher_views import pixels

log = logging.getLogger(__name__)

FORMAT = "facesearch-teacher-views"
SAVE_SECONDS = 60.0  # of the teacher's work at most lost when a build is cut (a save rewrites the file)
BATCH = 256


def view_seed(seed: int, position: int, view: int, views: int) -> int:
    """The RNG seed that makes view ``view`` (of ``views``) of the face at ``position``."""
    return (seed * 1_000_003 + position * views + view) % (2**63 - 1)


def seeded_view(image: torch.Tensor, transform: Callable, mirror: bool, seed: int) -> torch.Tensor:
    """``transform`` of the uint8 crop (mirrored half of the time when ``mirror``) under the
    global RNG seeded with ``seed``; the RNG's state outside is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if mirror and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        return transform(image)


class EveryView(Dataset):
    """Item ``i``: view ``i % K`` of face ``i // K``, and ``i``. The teacher embeds these, and
    the training loader draws its views from this same dataset, so the two cannot differ."""

    def __init__(self, images: torch.Tensor, transform: Callable, mirror: bool, views: int, seed: int) -> None:
        self.images, self.transform, self.mirror, self.views, self.seed = images, transform, mirror, views, seed

    def __len__(self) -> int:
        return len(self.images) * self.views

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        position, view = divmod(item, self.views)
        seed = view_seed(self.seed, position, view, self.views)
        return seeded_view(self.images[position], self.transform, self.mirror, seed), item


def stamp(images: torch.Tensor, teacher: str, augment: str, mirror: bool, views: int, seed: int) -> str:
    """What the stored embeddings depend on: the faces (their pixels), the teacher, the
    augmentations, the number of views and the seed."""
    digest = hashlib.sha256()
    digest.update(json.dumps([teacher, augment, mirror, views, seed, list(images.shape)]).encode())
    digest.update(images.flatten()[::4099].numpy().tobytes())  # a sample of the pixels: cheap, and a re-cut shows
    return digest.hexdigest()[:20]


def embed_views(
    images: torch.Tensor,
    transform: Callable,
    mirror: bool,
    views: int,
    seed: int,
    teacher: FaceEncoder,
    path: Path,
    key: str,
    workers: int = 0,
    progress: Progress = quiet,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The teacher's unit embeddings (N, K, D) float16 of every face's K views, read from
    ``path`` when it holds them for ``key`` and computed (the missing ones) otherwise.
    Returns them with ``{"file", "bytes", "seconds"}`` (seconds: the teacher's, all builds)."""
    stored = _read(path, key)
    dim = int(teacher.dim)
    targets = stored["targets"] if stored else torch.full((len(images), views, dim), float("nan"), dtype=torch.float16)
    seconds = float(stored["seconds"]) if stored else 0.0
    flat = targets.view(-1, dim)
    todo = torch.nonzero(torch.isnan(flat[:, 0])).flatten()
    if len(todo):
        log.info("the teacher embeds %d views (%d faces x %d, %d done before)", len(todo), len(images), views,
                 len(flat) - len(todo))
        loader = DataLoader(
            torch.utils.data.Subset(EveryView(images, transform, mirror, views, seed), todo.tolist()),
            batch_size=BATCH, num_workers=workers, persistent_workers=False,
        )
        done, start = 0, time.perf_counter()
        saved = start
        for pictures, items in loader:
            flat[items] = torch.from_numpy(np.asarray(teacher.embed_faces(pixels(pictures)), np.float32)).half()
            done += len(items)
            progress("teacher views", done, len(todo), "")
            now = time.perf_counter()
            if now - saved >= SAVE_SECONDS or done == len(todo):
                _write(path, key, targets, seconds + now - start)
                saved = now
        seconds += time.perf_counter() - start
    return targets, {"file": path.name, "bytes": path.stat().st_size, "seconds": round(seconds, 1)}


def _read(path: Path, key: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (a torn or foreign file is rebuilt, not trusted)
        log.warning("%s: unreadable (%s); the teacher's views are computed again", path, exc)
        return None
    if stored.get("format") != FORMAT or stored.get("key") != key:
        log.info("%s holds other views (another teacher, faces or augmentations): computed again", path)
        return None
    return stored


def _write(path: Path, key: str, targets: torch.Tensor, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        torch.save({"format": FORMAT, "key": key, "targets": targets, "seconds": seconds}, handle)
