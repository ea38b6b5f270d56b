"""Batches of faces decoded from photo files, in input order, in worker threads.

Decoding (Pillow), detection and warping (OpenCV) release the GIL for their heavy parts, so
threads overlap them with each other and with the encoder, without the start-up cost of
processes or a dependency on torch: enroll, query and bench run on numpy alone. A thread
gets its own face preparer (an OpenCV network is not safe for concurrent calls).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facesearch.errors import ImageError
from facesearch.embedding.face_finding.base import Face
from facesearch.embedding.face_finding.prepare import FacePreparer
from facesearch.embedding.imaging import content_hash, decode, read_bytes, to_chw
from facesearch.embedding.preprocessing import Preprocessing
from facesearch.embedding.quality import face_quality


@dataclass
class DecodedBatch:
    """A batch of decode results: good images stacked, failures kept with their reason.

    ``images``: uint8 (N, 3, S, S). ``faces[i]`` is the detected face that ``images[i]``
    shows (None: the whole image) and ``found[i]`` how many faces its photo had (None: no
    detection; 0: none, whole image).
    """

    positions: list[int]
    images: np.ndarray | None
    hashes: list[str]
    failures: list[tuple[int, str]]
    faces: list[Face | None] = field(default_factory=list)
    found: list[int | None] = field(default_factory=list)
    face_numbers: list[int] = field(default_factory=list)  # which face of its photo (0: the largest)
    qualities: list[float] = field(default_factory=list)  # facesearch.embedding.quality


def decode_batch(
    paths: Sequence[Path], positions: Sequence[int], preparer: FacePreparer, every_face: bool = False,
) -> DecodedBatch:
    """Decode ``paths[p]`` for each position into its largest face (``every_face``: into each
    of its faces, largest first, one entry a face); a bad file becomes a failure with its
    reason instead of stopping the batch."""
    batch = DecodedBatch([], None, [], [])
    pixels = []
    for position in positions:
        path = paths[position]
        try:
            data = read_bytes(path)
            image = decode(data, path, draft_side=preparer.draft_side)
            photo = preparer.prepare(image, path)
        except ImageError as exc:
            batch.failures.append((position, exc.reason))
            continue
        digest = content_hash(data)
        for number, face in enumerate(photo.faces if every_face else photo.faces[:1]):
            pixels.append(to_chw(face.pixels))
            batch.positions.append(position)
            batch.hashes.append(digest)
            batch.faces.append(face.face)
            batch.found.append(photo.found)
            batch.face_numbers.append(number)
            batch.qualities.append(face_quality(face.pixels, face.face, preparer.size))
    if pixels:
        batch.images = np.stack(pixels)
    return batch


def default_workers(count: int, batch_size: int, detecting: bool = False) -> int:
    """Half the cores decode, the rest run the encoder; with face detection as many workers
    as cores, since a photo then costs its worker about what its face costs the encoder
    (benchmarks/photos.py's enroll_photos stage measures the default). Workers pay off
    only beyond a couple of batches."""
    if count < 2 * batch_size:
        return 0
    cores = os.cpu_count() or 1
    return max(1, min(8, cores if detecting else cores // 2))


def face_loader(
    paths: Sequence[Path],
    side: int | FacePreparer = 112,
    batch_size: int = 64,
    workers: int | None = None,
    every_face: bool = False,
) -> Iterator[DecodedBatch]:
    """Batches of decoded faces in input order (failures included, see DecodedBatch);
    ``side``: a crop side (tight crops) or the preparer of an encoder's faces. At most
    two batches per worker are decoded ahead of the consumer, so memory stays bounded."""
    preparer = side if isinstance(side, FacePreparer) else FacePreparer(Preprocessing(input_size=side))
    paths = list(paths)
    chunks = [range(start, min(start + batch_size, len(paths))) for start in range(0, len(paths), batch_size)]
    workers = default_workers(len(paths), batch_size, preparer.detects) if workers is None else workers
    if workers <= 0:
        return (decode_batch(paths, chunk, preparer, every_face) for chunk in chunks)
    return _threaded(paths, chunks, preparer, workers, every_face)


def _threaded(
    paths: list[Path], chunks: list[range], preparer: FacePreparer, workers: int, every_face: bool = False,
) -> Iterator[DecodedBatch]:
    local = threading.local()

    def run(chunk: range) -> DecodedBatch:
        if not hasattr(local, "preparer"):
            local.preparer = preparer.fresh()
        return decode_batch(paths, chunk, local.preparer, every_face)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="facesearch-decode")
    pending: deque[Future[DecodedBatch]] = deque()
    waiting = iter(chunks)
    try:
        for chunk in waiting:
            pending.append(pool.submit(run, chunk))
            if len(pending) >= 2 * workers:
                break
        while pending:
            batch = pending.popleft().result()
            chunk = next(waiting, None)
            if chunk is not None:
                pending.append(pool.submit(run, chunk))
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
