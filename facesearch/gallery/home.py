"""The home folder: gallery database, index file, model files and the lock, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "FACESEARCH_HOME"
ENV_DATABASE_URL = "FACESEARCH_DATABASE_URL"

# A face gallery holds biometric data: the home and everything in it are its owner's only,
# whatever the umask (files: os.open with PRIVATE_FILE, or mkstemp, which makes 0600).
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only if it does not exist (SQLite then gives its WAL
    and shared-memory files the database file's permissions)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        os.chmod(path, PRIVATE_FILE)
    except FileExistsError:
        pass


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> "Home":
        """An explicit folder, else $FACESEARCH_HOME, else ~/.facesearch."""
        chosen = home or os.environ.get(ENV_HOME) or Path.home() / ".facesearch"
        return cls(Path(chosen).expanduser().resolve())

    def create(self) -> None:
        """Make the folder (and its parents); a clear error when the path is a file or
        cannot be made, rather than a traceback."""
        from facesearch.errors import GalleryError

        if self.root.exists() and not self.root.is_dir():
            raise GalleryError(f"{self.root}: not a folder (the home, --home or FACESEARCH_HOME, must be a folder)")
        try:
            if not self.root.exists():
                self.root.mkdir(parents=True, mode=PRIVATE_FOLDER)
                os.chmod(self.root, PRIVATE_FOLDER)  # whatever the umask let mkdir keep
        except FileExistsError:  # another process made it first
            pass
        except OSError as exc:
            raise GalleryError(f"{self.root}: cannot create the home folder ({exc.strerror or exc})") from None

    def exposed(self) -> list[str]:
        """What in an existing home others than its owner can read (a home made by an older
        facesearch, or by hand): a face gallery is personal data, so ``info`` warns."""
        found = []
        if self.root.is_dir() and self.root.stat().st_mode & 0o077:
            found.append(f"{self.root} is open to others (mode {self.root.stat().st_mode & 0o777:o}; chmod 700 it)")
        for path in sorted(self.root.rglob("*")) if self.root.is_dir() else []:
            if path.is_file() and path.stat().st_mode & 0o077:
                found.append(f"{path} is readable by others (mode {path.stat().st_mode & 0o777:o}; chmod 600 it)")
        return found

    @property
    def database(self) -> Path:
        return self.root / "gallery.db"

    @property
    def index(self) -> Path:
        return self.root / "index.faiss"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def uploads(self) -> Path:
        """Photos enrolled over HTTP (serve): the gallery keeps a source for every face, so
        that `enroll --reembed` works and `remove` can delete them."""
        return self.root / "uploads"

    def upload_folder(self, identity: str) -> Path:
        """A person's uploads, never outside ``uploads`` whatever the name."""
        folder = (self.uploads / identity).resolve()
        if folder.parent != self.uploads.resolve():
            raise ValueError(f"identity {identity!r} does not name a folder of {self.uploads}")
        return folder

    @property
    def lock(self) -> Path:
        return self.root / "gallery.lock"

    def model_file(self, fingerprint: str) -> Path:
        """The gallery's copy of its model file: ``<fingerprint>.pt``, or ``.onnx`` (with its
        sidecar) for an ONNX encoder; the ``.pt`` name when neither exists yet."""
        onnx = self.models / f"{fingerprint}.onnx"
        return onnx if onnx.exists() else self.models / f"{fingerprint}.pt"

    def database_url(self) -> str:
        """$FACESEARCH_DATABASE_URL if set (any SQLAlchemy URL), else SQLite in the home."""
        return os.environ.get(ENV_DATABASE_URL) or f"sqlite:///{self.database}"
