"""Crash-safe file writes: temporary file in the same folder, fsync, rename, fsync folder.

A reader sees either the old file or the new one, never a half-written one, whatever moment
the writer dies at.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        full = _disk_full(exc, path.parent)
        if full:
            raise full from None
        raise


LOW_SPACE = 16 * 2**20


def _disk_full(exc: BaseException, folder: Path) -> Exception | None:
    """A write that failed for want of space, as one clear error. OSError says so itself;
    torch and FAISS writers raise a RuntimeError that does not, so with those the disk's
    free space decides (the temporary file is already gone)."""
    from facesearch.errors import StorageError

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"{folder}: no space left on the device; free some and run the command again")
    if isinstance(exc, RuntimeError):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            if free < LOW_SPACE:
                return StorageError(
                    f"{folder}: the disk is full ({free // 1024} KiB free); free some and run the command again"
                )
    return None


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder entry (not possible on every platform)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_text(path: str | Path) -> str:
    """A small text input (pairs file, labels CSV) as UTF-8; a file that is not text is the
    caller's clear error, not a decoding traceback."""
    from facesearch.errors import InputError

    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None
