"""Training faces prepared once: detected, aligned, and embedded by a teacher, cached on disk.

Detecting and aligning a photo costs more than a training step on its crop, and a teacher's
embedding of it costs about as much again; an epoch that paid for both would be several
times slower than one that did not. So every training (and validation) photo is prepared
once, as the student's preprocessing says, and kept in one cache file:

- rows keyed by the photo's content hash (a file renamed or copied is not prepared again);
- per row, the prepared uint8 crop and ``found``, the faces detected (0: none was found and
  the whole photo stands in, which validation may use and training does not);
- per teacher (by its fingerprint), its unit embeddings of each crop and of its mirror image,
  so a horizontally flipped training view has its own exact target.

A cache is made for one preprocessing and one detector, written in its header; opening it for
another is refused, so crops of two preparations are never mixed. Targets of two teachers
live side by side under their fingerprints and are never mixed either. The file is a plain
``torch.save`` of tensors and strings (read with ``weights_only=True``), written atomically,
and can be carried to another machine whole (a GPU box) with the training run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesearch.embedding.loader import face_loader
from facesearch.embedding.encoders import FaceEncoder
from facesearch.errors import ImageError, InputError
from facesearch.embedding.face_finding.detectors import detector_key
from facesearch.embedding.face_finding.prepare import FacePreparer
from facesearch.fileio import atomic_write
from facesearch.embedding.imaging import content_hash, read_bytes
from facesearch.embedding.preprocessing import Preprocessing
from facesearch.progress import Progress, quiet

log = logging.getLogger(__name__)

FORMAT = "facesearch.training-faces"
FORMAT_VERSION = 1
TEACHER_BATCH = 64

def preparation_key(preprocessing: Preprocessing, detector: str) -> dict[str, Any]:
    """What makes two preparations of one photo the same crop (the detector named as
    ``detector_key`` names it, so that the key holds on another machine)."""
    spec = detector_key(detector) if preprocessing.detect else "none"
    return {
        "input_size": preprocessing.input_size,
        "alignment": preprocessing.alignment,
        "detect": preprocessing.detect,
        "detector": spec,
    }


def default_cache_path(key: dict[str, Any], folder: str | Path) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"faces-{key['alignment']}-{key['input_size']}-{digest}.pt"


@dataclass
class Rows:
    """Where a list of files sits in the cache: ``rows[i]`` for ``files[i]`` (None: it could
    not be read or decoded, with the reason in ``skipped``)."""

    rows: list[int | None]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def kept(self) -> list[int]:
        return [r for r in self.rows if r is not None]


class FaceCache:
    """Prepared crops and teacher targets, by content hash (see the module docstring)."""

    def __init__(self, key: dict[str, Any], path: Path | None = None) -> None:
        self.key = key
        self.path = path
        self.hashes: list[str] = []
        self.index: dict[str, int] = {}
        side = int(key["input_size"])
        self.images = torch.empty((0, 3, side, side), dtype=torch.uint8)
        self.found = torch.empty(0, dtype=torch.int16)
        self.targets: dict[str, dict[str, torch.Tensor]] = {}
        self.seconds = {"prepare": 0.0, "teacher": 0.0}
        self.changed = False

    def __len__(self) -> int:
        return len(self.hashes)

    # --- the file ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, key: dict[str, Any]) -> "FaceCache":
        """The cache at ``path`` (empty when there is none yet); refuses one made for another
        preparation, or a file that is not a cache."""
        path = Path(path)
        cache = cls(key, path)
        if not path.exists():
            return cache
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a file that is not its own
            raise InputError(f"{path}: not a readable training-faces cache ({type(exc).__name__}); delete it") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InputError(f"{path}: not a facesearch training-faces cache")
        if payload.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{path}: written by a newer facesearch")
        if payload["key"] != key:
            raise InputError(
                f"{path}: made for other faces ({_describe(payload['key'])}; this run: {_describe(key)}); "
                "use another --face-cache"
            )
        cache.hashes = list(payload["hashes"])
        cache.index = {h: i for i, h in enumerate(cache.hashes)}
        cache.images, cache.found = payload["images"], payload["found"]
        cache.targets = payload["targets"]
        cache.seconds = dict(payload.get("seconds", cache.seconds))
        for fingerprint, targets in cache.targets.items():
            if any(len(t) != len(cache) for t in targets.values()):
                raise InputError(f"{path}: teacher {fingerprint[:12]}'s targets do not match its rows; delete it")
        return cache

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "key": self.key,
            "hashes": self.hashes,
            "images": self.images,
            "found": self.found,
            "targets": self.targets,
            "seconds": self.seconds,
        }
        with atomic_write(self.path) as handle:
            torch.save(payload, handle)
        self.changed = False

    def size_on_disk(self) -> int:
        return self.path.stat().st_size if self.path is not None and self.path.exists() else 0

    # --- faces ------------------------------------------------------------------------

    def add_files(
        self,
        files: Sequence[Path],
        preparer: FacePreparer,
        workers: int | None = None,
        progress: Progress = quiet,
    ) -> Rows:
        """The rows of ``files``, preparing (in DataLoader workers) those not cached yet."""
        hashes: list[str | None] = []
        result = Rows([])
        for path in files:
            try:
                hashes.append(content_hash(read_bytes(path)))
            except ImageError as exc:
                hashes.append(None)
                result.skipped.append((Path(path), exc.reason))
        missing = {h for h in hashes if h is not None and h not in self.index}
        wanted = {}
        for path, digest in zip(files, hashes):
            if digest in missing and digest not in wanted:
                wanted[digest] = Path(path)
        failed = self._prepare(wanted, preparer, workers, progress) if wanted else {}
        for path, digest in zip(files, hashes):
            if digest is not None and digest in failed:
                result.skipped.append((Path(path), failed[digest]))
        result.rows = [None if h is None or h in failed else self.index[h] for h in hashes]
        return result

    def _prepare(
        self, wanted: dict[str, Path], preparer: FacePreparer, workers: int | None, progress: Progress
    ) -> dict[str, str]:
        """Prepare the files of ``wanted`` ({content hash: file}, hashed already) and append
        them; returns {content hash: reason} of the failures."""
        paths = list(wanted.values())
        if preparer.size != self.images.shape[-1]:
            raise InputError(f"this cache holds {self.images.shape[-1]} px faces, not {preparer.size} px")
        start = time.perf_counter()
        images, found, hashes, failed = [], [], [], {}
        done = 0
        digests = {path: digest for digest, path in wanted.items()}
        for batch in face_loader(paths, preparer, batch_size=64, workers=workers):
            for position, reason in batch.failures:
                failed[digests[paths[position]]] = reason
            if batch.images is not None:
                images.append(torch.from_numpy(batch.images))
                found.extend(-1 if f is None else f for f in batch.found)
                hashes.extend(batch.hashes)
            done += len(batch.positions) + len(batch.failures)
            progress("preparing faces", done, len(paths), "")
        self._append(hashes, images, found)
        self.seconds["prepare"] += time.perf_counter() - start
        return failed

    def _append(self, hashes: list[str], images: list[torch.Tensor], found: list[int]) -> None:
        fresh = [i for i, h in enumerate(hashes) if h not in self.index]
        if not fresh:
            return
        stacked = torch.cat(images)[fresh]
        first = len(self.hashes)
        for offset, i in enumerate(fresh):
            self.index[hashes[i]] = first + offset
            self.hashes.append(hashes[i])
        self.images = torch.cat([self.images, stacked])
        self.found = torch.cat([self.found, torch.tensor([found[i] for i in fresh], dtype=torch.int16)])
        for targets in self.targets.values():  # rows a teacher has not embedded yet: NaN
            for view, values in targets.items():
                pad = torch.full((len(fresh), values.shape[1]), float("nan"), dtype=values.dtype)
                targets[view] = torch.cat([values, pad])
        self.changed = True

    # --- teacher targets ----------------------------------------------------------------

    def teacher_targets(
        self, teacher: FaceEncoder, fingerprint: str, rows: Sequence[int], progress: Progress = quiet
    ) -> dict[str, torch.Tensor]:
        """{"clean", "flipped"}: the teacher's unit embeddings of every cached row (computed
        for the ``rows`` that lack them, in batches)."""
        dim = int(teacher.dim)
        targets = self.targets.setdefault(
            fingerprint,
            {view: torch.full((len(self), dim), float("nan")) for view in ("clean", "flipped")},
        )
        if targets["clean"].shape[1] != dim:
            raise InputError(f"{self.path}: teacher {fingerprint[:12]}'s cached targets have another size")
        missing = torch.isnan(targets["clean"][:, 0])
        todo = [r for r in sorted(set(rows)) if missing[r]]
        start = time.perf_counter()
        for i in range(0, len(todo), TEACHER_BATCH):
            chunk = torch.tensor(todo[i : i + TEACHER_BATCH])
            faces = self.images[chunk]
            targets["clean"][chunk] = torch.from_numpy(np.asarray(teacher.embed_faces(faces), dtype=np.float32))
            targets["flipped"][chunk] = torch.from_numpy(
                np.asarray(teacher.embed_faces(faces.flip(3).contiguous()), dtype=np.float32)
            )
            progress("teacher embeddings", min(i + TEACHER_BATCH, len(todo)), len(todo), "")
            self.changed = True
        if todo:
            self.seconds["teacher"] += time.perf_counter() - start
        return targets


def _describe(key: dict[str, Any]) -> str:
    detector = key["detector"] if key["detect"] else "no detection"
    return f"{key['alignment']} {key['input_size']} px, {detector}"
