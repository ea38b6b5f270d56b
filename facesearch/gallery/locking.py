"""One writer at a time per gallery, across processes.

SQLite serialises its own writes, but the index file and the database must change in step:
every write to the gallery (insert + revision bump + index update + index save) holds this
lock, so two `enroll` processes interleave their batches safely instead of racing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType

from facesearch.errors import Busy


class GalleryLock:
    """An exclusive file lock, re-entrant in the thread that holds it; other threads of the
    process (serve's requests) wait for it as other processes do."""

    def __init__(self, path: Path, timeout: float = 600.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0
        self._threads = threading.RLock()

    def acquire(self, blocking: bool = True) -> bool:
        if not self._threads.acquire(blocking, self.timeout if blocking else -1):
            if blocking:
                raise Busy(f"{self.path} was held by another request for over {self.timeout:.0f} s")
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            locked = self._lock_file(blocking)
        except BaseException:
            self._threads.release()
            raise
        if not locked:
            self._threads.release()
        return locked

    def _lock_file(self, blocking: bool) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # the home's files are private
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not blocking:
                    os.close(fd)
                    return False
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise Busy(
                        f"another facesearch process has held {self.path} for over "
                        f"{self.timeout:.0f} s; try again when it has finished"
                    ) from None
                time.sleep(0.05)
        self._fd, self._depth = fd, 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._threads.release()

    def __enter__(self) -> "GalleryLock":
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
