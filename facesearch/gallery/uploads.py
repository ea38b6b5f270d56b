"""Photos enrolled over HTTP, kept in the home as the source of their faces.

A gallery keeps a source file for every face, so that ``enroll --reembed`` works and removing
a person removes their photos. Photos that reach ``serve`` have no file of their own, so they
are kept here (``uploads/<identity>/<sha256><suffix>``, owner-only), and only while a face
comes from them: an upload that enrolled nothing (a bad file, no face, a duplicate) is
deleted at once, and one left behind by a server killed mid-request is swept at the next
start. Every change happens under the gallery lock that enroll holds.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from facesearch.embedding.imaging import content_hash
from facesearch.fileio import atomic_write
from facesearch.gallery.home import Home
from facesearch.gallery.locking import GalleryLock
from facesearch.gallery.store import Store

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")

Upload = tuple[str, bytes]
"""(the name the client gave the file, its bytes)."""


class Uploads:
    """The upload files of the gallery in ``home``."""

    def __init__(self, home: Home, store: Store, lock: GalleryLock) -> None:
        self.home, self.store, self.lock = home, store, lock

    def keep(self, identity: str, files: Sequence[Upload]) -> dict[Path, str]:
        """Write each upload into the person's folder (the caller holds the lock); the suffix
        is only a hint, the format is sniffed when it is decoded. Returns {file: upload name}."""
        folder = self.home.upload_folder(identity)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        saved: dict[Path, str] = {}
        for name, data in files:
            suffix = Path(name).suffix.lower()
            path = folder / f"{content_hash(data)}{suffix if suffix in IMAGE_SUFFIXES else '.img'}"
            if not path.exists():
                with atomic_write(path) as handle:
                    handle.write(data)
            saved[path] = name
        return saved

    def forget_unused(self, saved: Sequence[Path]) -> None:
        """Delete those of ``saved`` that are no face's source: a person's photo is kept only
        while it is enrolled."""
        used = self.store.stored_sources(str(path.resolve()) for path in saved)
        for path in saved:
            if str(path.resolve()) not in used:
                path.unlink(missing_ok=True)
        for folder in {path.parent for path in saved}:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def sweep(self) -> int:
        """Delete the uploads no face comes from (a server killed between keeping and
        enrolling them). Only when the lock is free at once: another writer (a long CLI
        enroll) may have uploads in flight, and the next start sweeps. Returns how many."""
        root = self.home.uploads
        if not root.is_dir() or not self.lock.acquire(blocking=False):
            return 0
        try:
            files = [path for path in root.glob("*/*") if path.is_file()]
            used = self.store.stored_sources(str(path.resolve()) for path in files)
            orphans = [path for path in files if str(path.resolve()) not in used]
            self.forget_unused(orphans)
        finally:
            self.lock.release()
        if orphans:
            log.warning("deleted %d uploads that no enrolled face comes from (a server stopped mid-enroll)", len(orphans))
        return len(orphans)

    def forget_person(self, identity: str) -> None:
        """A removed person's uploads go with them (nothing of theirs stays)."""
        try:
            folder = self.home.upload_folder(identity)
        except ValueError:
            return
        if folder.is_dir():
            shutil.rmtree(folder)
