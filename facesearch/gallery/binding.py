"""A gallery's one encoder: which it is, where its file is, and the refusal of any other.

Embeddings of two encoders cannot be compared, so a gallery is bound to one (the database
holds its fingerprint and config; HOME/models holds a copy of its file, so that queries need
no ``--model``). This module is that binding; ``Gallery`` asks it for the encoder to enroll or
query with. The loaded network is kept once per process and shared by threads (``serve``
answers from several), because loading it costs more than a query.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from facesearch.embedding.encoders import FaceEncoder, copy_model, load_model, model_copy_name
from facesearch.errors import GalleryError, ModelError
from facesearch.gallery.indexing import GalleryIndex
from facesearch.gallery.home import Home
from facesearch.gallery.locking import GalleryLock
from facesearch.models.reference import default_model
from facesearch.gallery.store import Store


class EncoderBinding:
    """The encoder a gallery is bound to, loaded on first use."""

    def __init__(self, home: Home, store: Store, lock: GalleryLock, index: GalleryIndex, device: str | None) -> None:
        self.home = home
        self.store = store
        self.lock = lock
        self.index = index
        self.device = device
        self._loaded: tuple[str, FaceEncoder] | None = None
        self._memory = threading.RLock()  # the loaded encoder, against concurrent threads (serve)

    def for_queries(self, model: str | Path | None = None) -> FaceEncoder:
        """The gallery's own encoder, or ``model`` if it is that same one."""
        fp = self._fingerprint()
        if model is not None:  # with the gallery's flip setting: the same weights match
            encoder, loaded = self.load(model, self.config().get("flip", False))
            check(loaded, fp, model)
            return encoder
        return self._bound(fp)

    def for_enroll(self, model: str | Path | None = None, flip: bool | None = None) -> FaceEncoder:
        """The gallery's own encoder; or, while the gallery has no faces, ``model`` (or the
        default: $FACESEARCH_MODEL, else the shipped reference), which it then becomes bound
        to. ``flip`` sets flip test-time augmentation (None: as the model file, or the
        gallery, has it)."""
        state = self.store.state()
        if model is None:
            if state.fingerprint is None:
                model = default_model()
            elif flip is None:
                return self._bound(state.fingerprint)
            else:
                model = self._file(state.fingerprint)  # the gallery's weights, flip changed
        encoder, fp = self.load(model, flip)
        if state.fingerprint not in (None, fp) and self.store.counts()[1]:
            check(fp, state.fingerprint, model)
        if state.fingerprint != fp:
            self.install(Path(model), fp, flip)
            with self.lock:
                self.store.bind_encoder(fp, encoder.describe(), encoder.dim)
            self.index.forget()
        return encoder

    def config(self) -> dict[str, Any]:
        """The bound encoder's config as stored (empty before the first enroll)."""
        return json.loads(self.store.gallery().encoder_config or "{}")

    def model_file(self) -> Path:
        """The gallery's own model file (its copy in HOME/models/), to load it another way."""
        return self._file(self._fingerprint())

    def load(self, model: str | Path, flip: bool | None = None) -> tuple[FaceEncoder, str]:
        """Load ``model`` (and keep it as the loaded one: the next use is most likely it)."""
        encoder, fp = load_model(model, self.device, flip)
        with self._memory:
            self._loaded = (fp, encoder)
        return encoder, fp

    def install(self, source: Path, fp: str, flip: bool | None) -> None:
        """Copy the model file into the home (once), so the gallery answers without it."""
        target = self.home.models / model_copy_name(source, fp)
        if not target.exists():
            copy_model(source, target, flip)

    def _fingerprint(self) -> str:
        fp = self.store.state().fingerprint
        if fp is None:
            raise GalleryError(f"the gallery in {self.home.root} is empty: run `facesearch enroll` first")
        return fp

    def _file(self, fp: str) -> Path:
        path = self.home.model_file(fp)
        if not path.exists():
            raise ModelError(
                f"the gallery's encoder file {path} is missing; pass --model with the model "
                f"file the gallery was enrolled with (fingerprint {fp[:12]})"
            )
        return path

    def _bound(self, fp: str) -> FaceEncoder:
        with self._memory:  # concurrent first queries load it once
            if self._loaded is not None and self._loaded[0] == fp:
                return self._loaded[1]
            path = self._file(fp)
            encoder, loaded = self.load(path)
        if loaded != fp:
            raise ModelError(f"{path}: holds encoder {loaded[:12]}, not the gallery's {fp[:12]}")
        return encoder


def check(fp: str, bound: str, model: str | Path) -> None:
    """Refuse an encoder other than the gallery's, saying what the user can do instead."""
    if fp != bound:
        raise ModelError(
            f"{model}: encoder {fp[:12]} is not the one this gallery was enrolled with "
            f"({bound[:12]}); embeddings of different encoders cannot be compared. Use the "
            "gallery's model, re-embed the gallery with this one (enroll --reembed), or "
            "use a new home (--home)"
        )
