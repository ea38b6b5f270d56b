"""The home folder: gallery database, index file, model files and the lock, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "FACESEARCH_HOME"
ENV_DATABASE_URL = "FACESEARCH_DATABASE_URL"


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
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"{self.root}: cannot create the home folder ({exc.strerror or exc})") from None

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
