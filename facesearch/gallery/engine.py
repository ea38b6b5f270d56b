"""The gallery: enroll, query, remove; the one object the CLI (and any script) talks to.

Invariants kept here (see docs/design.md):

* SQLite is the truth; the FAISS index is reconciled against it by face id whenever its stamp
  does not describe the database state (a crash after a commit, a deleted, truncated or
  foreign index file, another process's writes). Reconciling adds only what is missing and
  drops only what is gone, so repairing a big gallery after a crash costs little.
* Every write holds the gallery lock across "commit rows + bump revision + update index", so
  concurrent enrolls interleave by batch and the index never silently disagrees.
* A gallery is bound to one encoder fingerprint; another encoder is refused.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.gallery import calibration, scoring
from facesearch.gallery.answers import (
    Conflict,
    EnrollReport,
    FaceAnswer,
    QueryResult,
    SeveralFaces,
    decide,
)
from facesearch.embedding.loader import face_loader
from facesearch.devices import runtime_device
from facesearch.gallery.binding import EncoderBinding
from facesearch.embedding.encoders import FaceEncoder
from facesearch.errors import GalleryError, ImageError, InputError, UnknownFace, UnknownIdentity
from facesearch.embedding.face_finding.prepare import FacePreparer, preparer_for
from facesearch.gallery.home import Home
from facesearch.embedding.imaging import content_hash, read_bytes
from facesearch.gallery.indexing import GalleryIndex
from facesearch import UNKNOWN
from facesearch.index.spec import IndexSpec
from facesearch.gallery.layouts import LabelledImage, Problem, check_identity, gallery_images, unnamed_images
from facesearch.gallery.locking import GalleryLock
from facesearch.gallery.people import People
from facesearch.migrations import stored_revision
from facesearch.gallery.store import DEFAULT_THRESHOLD, GalleryState, NewFace, Store
from facesearch.gallery.uploads import Upload, Uploads
from facesearch.progress import Progress, quiet
from facesearch.embedding.photo_faces import EmbeddedFace, Verdict, cosine, embed_photo, pick
from facesearch.models.reference import default_model

log = logging.getLogger(__name__)


class Gallery:
    """A face gallery in a home folder (database, index, model files).

    >>> with Gallery("~/.facesearch") as gallery:          # doctest: +SKIP
    ...     gallery.enroll("known/")
    ...     gallery.query("face.jpg").identity
    """

    def __init__(
        self,
        home: str | Path | None = None,
        database_url: str | None = None,
        device: str | None = None,
        gpu_index: bool | None = None,
        detector: str | None = None,
        lock_timeout: float = 600.0,
    ) -> None:
        """``detector``: ``mtcnn``, ``yunet:PATH`` or ``none`` instead of what the encoder
        and the gallery say (see ``preparer``). ``lock_timeout``: how long a write waits for
        another writer before giving up (``Busy``)."""
        self.home = Home.resolve(home)
        self.home.create()
        self.lock = GalleryLock(self.home.lock, lock_timeout)
        self.store = Store(database_url or self.home.database_url())
        self.device = device
        self.detector = detector
        self.index = GalleryIndex(self.home, self.store, self.lock, gpu_index)
        self.binding = EncoderBinding(self.home, self.store, self.lock, self.index, device)
        self._uploads = Uploads(self.home, self.store, self.lock)
        self._people = People(self.store, self.lock)
        self._preparers = threading.local()
        self._strangers: tuple[tuple[Any, str], np.ndarray] | None = None  # see _stranger_scores
        with self.lock:
            self.store.migrate()

    def close(self) -> None:
        self.index.close()
        self.store.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- encoder binding (facesearch.gallery.binding) -----------------------------------------------

    def encoder(self, model: str | Path | None = None) -> FaceEncoder:
        """The encoder for queries: the gallery's own, or ``model`` if it is that same one."""
        return self.binding.for_queries(model)

    def bind_encoder(self, model: str | Path | None = None, flip: bool | None = None) -> FaceEncoder:
        """The encoder enroll uses (see ``EncoderBinding.for_enroll``)."""
        return self.binding.for_enroll(model, flip)

    def enrolled_with(self) -> tuple[Path, str | None]:
        """The gallery's own model file (its copy in HOME/models/) and the detector its photos
        were enrolled with (None: as the encoder says), to prepare faces another way."""
        return self.binding.model_file(), self.store.gallery().detector

    def preparer(
        self, encoder: FaceEncoder, fallback: bool = False, min_face: int = 0, max_faces: int | None = None
    ) -> FacePreparer:
        """How this gallery's photos become ``encoder``'s inputs: the encoder's preprocessing,
        with the detector given to the gallery (``none`` switches detection off, any other
        switches it on), else the choice its photos were enrolled with (see preparer_for).
        Kept per thread (a detector costs tens of ms to build and is not thread-safe)."""
        chosen = preparer_for(
            encoder.preprocessing, self.detector, self.store.gallery().detector,
            min_face=min_face, max_faces=max_faces, fallback=fallback,
        )
        cache = self._preparers.__dict__
        key = (chosen.preprocessing, chosen.detector_spec, min_face, max_faces, fallback)
        if key not in cache:
            cache.clear()
            cache[key] = chosen
        return cache[key]

    def reembed(
        self,
        model: str | Path,
        batch_size: int = 64,
        workers: int | None = None,
        progress: Progress = quiet,
        flip: bool | None = None,
    ) -> int:
        """Re-embed every face from its source file with another encoder, and bind to it.

        All or nothing: if any source file is missing, unreadable or no longer the content
        that was enrolled, nothing changes. Returns the number of faces re-embedded.
        """
        encoder, fp = self.binding.load(model, flip)
        with self.lock:
            sources = self.store.sources()
            photos = sorted({path for _, path, _, _ in sources})
            row_of = {(path, number): row for row, (_, path, _, number) in enumerate(sources)}
            hash_of = {path: digest for _, path, digest, _ in sources}
            vectors = np.zeros((len(sources), encoder.dim), np.float32)
            filled = np.zeros(len(sources), bool)
            problems: list[str] = []
            done = 0
            several = any(number > 0 for _, _, _, number in sources)  # unnamed photos: every face
            loader = face_loader([Path(p) for p in photos], self.preparer(encoder), batch_size, workers, every_face=several)
            for batch in loader:
                problems += [f"{photos[pos]}: {err}" for pos, err in batch.failures]
                problems += sorted({
                    f"{photos[pos]}: content changed since it was enrolled"
                    for pos, digest in zip(batch.positions, batch.hashes) if digest != hash_of[photos[pos]]
                })
                if batch.images is not None:
                    wanted = [(i, row_of[(photos[pos], number)]) for i, (pos, number)
                              in enumerate(zip(batch.positions, batch.face_numbers)) if (photos[pos], number) in row_of]
                    if wanted:
                        embedded = encoder.embed_faces(batch.images[[i for i, _ in wanted]])
                        vectors[[row for _, row in wanted]] = embedded
                        filled[[row for _, row in wanted]] = True
                done += len(set(batch.positions)) + len(batch.failures)
                progress("re-embedding", done, len(photos))
            if not problems:  # a photo that failed is named once, not again for each face it held
                problems += [f"{sources[row][1]}: face {sources[row][3]} is no longer found" for row in np.flatnonzero(~filled)]
            if problems:
                more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
                raise GalleryError(
                    f"cannot re-embed, nothing was changed: {'; '.join(problems[:3])}{more}"
                )
            self.binding.install(Path(model), fp, flip)
            ids = [face_id for face_id, _, _, _ in sources]
            self.store.rebind(fp, encoder.describe(), encoder.dim, ids, vectors)
            self.index.reset()
            self._calibrate(encoder, changed=True)  # a stated or estimated threshold was the old encoder's
        return len(sources)

    # --- enroll -------------------------------------------------------------------------

    def enroll(
        self,
        source: str | Path | list[LabelledImage],
        model: str | Path | None = None,
        batch_size: int = 64,
        workers: int | None = None,
        commit_every: int = 2048,
        progress: Progress = quiet,
        flip: bool | None = None,
        unnamed: bool = False,
    ) -> EnrollReport:
        """Embed and store every new image of a gallery folder (or of images already listed
        with their identities: serve's uploads); already-enrolled content (by SHA-256 of the
        file) is skipped, bad files are reported and the rest goes on. A named photo gives its
        largest face; ``unnamed``: every image below the folder, at any depth, gives every
        face it holds, with no person (to be grouped and named later)."""
        if isinstance(source, (str, Path)):
            images, problems = unnamed_images(source) if unnamed else gallery_images(source)
        else:
            images, problems = list(source), []
        start = time.perf_counter()
        report = EnrollReport(failed=list(problems))
        encoder = self.bind_encoder(model, flip)
        preparer = self.preparer(encoder)
        if self.detector is not None:  # later queries prepare faces the same way
            self.store.set_detector(preparer.detector_spec if preparer.detects else "none")
        with report.timed("hash"):
            todo = self._new_images(images, report, progress)
        pending: list[NewFace] = []
        done = 0
        loader = iter(face_loader([i.path for i in todo], preparer, batch_size, workers, every_face=unnamed))
        while True:
            with report.timed("decode"):
                batch = next(loader, None)
            if batch is None:
                break
            report.failed.extend(Problem(todo[pos].path, err) for pos, err in batch.failures)
            if not unnamed:
                report.several_faces.extend(
                    SeveralFaces(todo[pos].path, found, face)
                    for pos, found, face in zip(batch.positions, batch.found, batch.faces)
                    if found and found > 1 and face is not None
                )
            if batch.images is not None:
                with report.timed("embed"):
                    vectors = encoder.embed_faces(batch.images)
                pending.extend(
                    NewFace(todo[pos].identity, str(todo[pos].path.resolve()), digest, vector, number,
                            face.to_dict() if face is not None else None, quality)
                    for pos, digest, vector, number, face, quality in zip(
                        batch.positions, batch.hashes, vectors, batch.face_numbers, batch.faces, batch.qualities)
                )
            if len(pending) >= commit_every:
                self._commit(pending, report)
                pending = []
            done += len(batch.positions) + len(batch.failures)
            progress("embedding", done, len(todo))
        self._commit(pending, report)
        with report.timed("index"):
            self.index.save()
        if report.enrolled:
            self._calibrate(encoder)
        report.identities, report.faces = self.store.counts()
        report.timings["total"] = time.perf_counter() - start
        return report

    def enroll_uploads(self, identity: str, files: Sequence[Upload]) -> tuple[EnrollReport, dict[Path, str]]:
        """Enroll photos that came as bytes (serve): each is kept in the home as its face's
        source (``facesearch.gallery.uploads``), and only while a face comes from it. Returns
        the report and {kept file: the upload's name}, to name files as the client did."""
        name = check_identity(identity)
        with self.lock:  # two requests with the same photo: one keeps it, neither loses it
            saved = self._uploads.keep(name, files)
            try:
                report = self.enroll([LabelledImage(name, path) for path in saved])
            finally:
                self._uploads.forget_unused(list(saved))
        return report, saved

    def sweep_uploads(self) -> int:
        """Delete uploads that no face comes from (left by a server killed mid-enroll)."""
        return self._uploads.sweep()

    def _new_images(
        self, images: list[LabelledImage], report: EnrollReport, progress: Progress
    ) -> list[LabelledImage]:
        """Hash every file (threads: this is I/O) and keep those not enrolled before."""

        def digest(item: LabelledImage) -> str | ImageError:
            try:
                return content_hash(read_bytes(item.path))
            except ImageError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=8) as pool:
            digests = []
            for done, result in enumerate(pool.map(digest, images), start=1):
                digests.append(result)
                if done % 256 == 0 or done == len(images):
                    progress("hashing", done, len(images))
        known = self.store.known_hashes(d for d in digests if isinstance(d, str))
        claims: dict[str, list[LabelledImage]] = {}
        for item, result in zip(images, digests):
            if isinstance(result, ImageError):
                report.failed.append(Problem(item.path, result.reason))
            else:
                claims.setdefault(result, []).append(item)
        todo: list[LabelledImage] = []
        for digest, items in claims.items():
            before = known.get(digest)  # a photo enrolled before: under a name, or unnamed (None)
            names = sorted({i.identity for i in items if i.identity is not None} | ({before} if before else set()))
            if len(names) > 1:  # one photo, two people: the user decides, not the file order
                report.conflicts.append(Conflict([i.path for i in items], names, before))
            elif digest in known:
                report.skipped += len(items)
            else:
                todo.append(items[0])
                report.skipped += len(items) - 1
        return todo

    def _commit(self, faces: list[NewFace], report: EnrollReport) -> None:
        """One transaction of new faces, and the same faces into the index, under the lock.

        Content that a concurrent enroll stored meanwhile is counted as skipped.
        """
        if not faces:
            return
        with self.lock:
            with report.timed("index"):
                index = self.index.synced()
            with report.timed("database"):
                ids, kept, revision = self.store.add_faces(faces)
            if ids:
                with report.timed("index"):
                    self.index.added(index, ids, np.stack([f.embedding for f in kept]), revision)
        report.enrolled += len(ids)
        report.unnamed += sum(1 for face in kept if face.identity is None)
        report.skipped += len(faces) - len(ids)

    def set_index(self, kind: str, **params: Any) -> IndexSpec:
        """Choose the gallery's index kind and search effort (see GalleryIndex.choose)."""
        return self.index.choose(kind, **params)

    # --- query --------------------------------------------------------------------------

    def query(
        self,
        image: str | Path,
        top_k: int = 5,
        model: str | Path | None = None,
        max_faces: int | None = None,
        min_face: int = 0,
    ) -> QueryResult:
        """Who is in this photo? Every face (at most ``max_faces``, each at least ``min_face``
        px) answered with its best identity, or n000000 below the gallery's threshold; the
        result itself is the largest face's."""
        return self.query_bytes(read_bytes(image), image, top_k, model, max_faces, min_face)

    def query_bytes(
        self,
        data: bytes,
        source: str | Path = "<upload>",
        top_k: int = 5,
        model: str | Path | None = None,
        max_faces: int | None = None,
        min_face: int = 0,
    ) -> QueryResult:
        """``query`` of a photo's bytes (an upload); ``source`` names it in errors."""
        with self.store.one_read():
            encoder = self.encoder(model)
            preparer = self.preparer(encoder, min_face=min_face, max_faces=max_faces)
            found = embed_photo(encoder, preparer, data, source)  # no face: an ImageError saying so
            answers = self.search(np.stack([f.embedding for f in found]), top_k)
        faces = [FaceAnswer(f.box, f.face, a.identity, a.score, a.matches, a.group) for f, a in zip(found, answers)]
        return replace(answers[0], faces=faces)

    def query_embeddings(self, vectors: np.ndarray, top_k: int = 5) -> QueryResult:
        """``query --embedding``: answers for vectors the gallery's encoder made elsewhere
        (``facesearch embed``), checked first (``photo_faces.read_embeddings``); the result is
        the first vector's, every vector's in ``faces`` (no box: there is no photo)."""
        answers = self.search(vectors, top_k)
        faces = [FaceAnswer((0.0, 0.0, 0.0, 0.0), None, a.identity, a.score, a.matches, a.group) for a in answers]
        return replace(answers[0], faces=faces)

    def embedding_dim(self) -> int:
        """The size of the gallery's embeddings (an error on a gallery with no encoder yet)."""
        dim = self.store.state().dim
        if dim is None:
            raise GalleryError(f"the gallery in {self.home.root} is empty: run `facesearch enroll` first")
        return dim

    def embed(self, photo: str | Path, model: str | Path | None = None) -> tuple[str, list[EmbeddedFace]]:
        """Every face of ``photo`` with its embedding, and the encoder's fingerprint: the
        gallery's encoder, or ``model`` (any encoder; nothing is bound), or, for a gallery
        with none yet, the default one."""
        encoder, fingerprint = self._encoder_for(model)
        return fingerprint, embed_photo(encoder, self.preparer(encoder), photo)

    def verify(
        self, first: str | Path, second: str | Path, model: str | Path | None = None,
        threshold: float | None = None, faces: tuple[int, int] = (0, 0),
    ) -> Verdict:
        """1:1: the same person or not? The largest face of each photo (``faces``: others, by
        size, 0 the largest) through the same encoder as ``embed``, at ``threshold``, else the
        gallery's (when the encoder is the gallery's), else the encoder's stated one, else the
        default; the verdict says which."""
        encoder, fingerprint = self._encoder_for(model)
        preparer = self.preparer(encoder)
        a = pick(embed_photo(encoder, preparer, first), faces[0], first)
        b = pick(embed_photo(encoder, preparer, second), faces[1], second)
        value, source = self._threshold_for(encoder, fingerprint, threshold)
        return Verdict(cosine(a.embedding, b.embedding), value, source, (a, b))

    def _encoder_for(self, model: str | Path | None) -> tuple[FaceEncoder, str]:
        """The encoder 1:1 and embed use: ``model``, else the gallery's, else the default."""
        bound = self.store.state().fingerprint
        if model is None and bound is not None:
            return self.encoder(), bound
        return self.binding.load(model if model is not None else default_model())

    def _threshold_for(self, encoder: FaceEncoder, fingerprint: str, given: float | None) -> tuple[float, str]:
        if given is not None:
            if not math.isfinite(given) or not -1.0 <= given <= 1.0:
                raise InputError(f"threshold {given} is not a cosine similarity in [-1, 1]")
            return float(given), "given"
        if fingerprint == self.store.state().fingerprint:
            row = self.store.gallery()
            return row.threshold, row.threshold_source
        stated = calibration.encoder_threshold(getattr(encoder, "calibration", None), "nearest", encoder.flip)
        return (stated, "encoder") if stated is not None else (DEFAULT_THRESHOLD, "default")

    def search(self, vectors: np.ndarray, top_k: int = 5) -> list[QueryResult]:
        """Answer many query embeddings at once (L2-normalised float32, N x D)."""
        if top_k < 1:
            raise InputError("--top-k must be at least 1")
        row = self.store.gallery()
        threshold = row.threshold
        with self.index.memory:  # an enroll in another thread may be adding to this index
            index = self.index.for_query()
            if index.ntotal == 0:
                raise GalleryError(f"the gallery in {self.home.root} is empty: run `facesearch enroll` first")
            vectors = np.asarray(vectors, dtype=np.float32)
            ranked = scoring.rank(index, self.store, vectors, top_k, row.scoring)
            results = [QueryResult(*decide(matches, threshold), threshold, matches) for matches in ranked]
            unknown = [n for n, r in enumerate(results) if r.identity == UNKNOWN]
            if unknown:
                for n, group in zip(unknown, self._people.seen_groups(index, vectors[unknown], threshold)):
                    if group is not None:
                        results[n] = replace(results[n], group=group)
        return results

    # --- removal and settings -----------------------------------------------------------

    def remove(self, identity: str) -> int:
        """Delete a person: their rows, embeddings and index vectors. Returns faces removed."""
        ids = self._delete(lambda: self.store.remove_identity(identity),
                           UnknownIdentity(f"no identity {identity!r} in the gallery"))
        self._uploads.forget_person(identity)
        return len(ids)

    def remove_face(self, face_id: int) -> int:
        """Delete one face: its row, embedding and index vector, leaving no copy in the
        database files (as ``remove`` does for a person). Returns the id removed."""
        return self._delete(lambda: self.store.remove_face(face_id),
                            UnknownFace(f"no face {face_id} in the gallery (facesearch faces lists them)"))[0]

    def _delete(self, removal: Callable[[], tuple[list[int], int] | None], missing: Exception) -> list[int]:
        """Run a store removal under the lock and take its faces out of the index (``missing``
        is raised when there was nothing to remove). Returns the face ids removed."""
        with self.lock:
            index = self.index.synced() if self.store.state().dim is not None else None
            removed = removal()
            if removed is None:
                raise missing
            ids, revision = removed
            if index is not None:
                self.index.removed(index, ids, revision)
            return ids

    # --- people (facesearch.gallery.people) ------------------------------------------------

    def cluster(self, full: bool = False, threshold: float | None = None, min_quality: float | None = None) -> dict[str, Any]:
        """Group the unnamed faces into people, incrementally (see ``People.cluster``;
        None: the measured defaults, ``GROUPING_THRESHOLD`` and ``QUALITY_GATE``)."""
        return self._people.cluster(full, threshold, min_quality)

    def people(self) -> list[dict[str, Any]]:
        """Named people and unnamed groups, ``{person, group, faces, face}``."""
        return self._people.people()

    def name_group(self, group: int, name: str) -> dict[str, Any]:
        """Name a group: its faces become ``name``'s (joining them if they exist)."""
        return self._people.name_group(group, name)

    def rename(self, old: str, new: str) -> dict[str, Any]:
        """Rename a person; a merge when ``new`` exists."""
        return self._people.rename(old, new)

    def move(self, face_id: int, person: str, create: bool = False) -> dict[str, Any]:
        """Give one face to ``person`` (who must exist, unless ``create``)."""
        return self._people.move(face_id, person, create)

    def split(self, group: int, faces: Sequence[int]) -> dict[str, Any]:
        """Take some faces of a group into a new group of their own."""
        return self._people.split(group, faces)

    def merge(self, group: int, into: int) -> dict[str, Any]:
        """One person grouped twice: ``group``'s faces join group ``into``."""
        return self._people.merge(group, into)

    def faces(self, person: str | None = None, group: int | None = None, unnamed: bool = False) -> list[dict[str, Any]]:
        """The gallery's faces, ``{id, person, group, path, box, quality}``."""
        return self._people.faces(person, group, unnamed)

    def face_image(self, face_id: int, side: int = 160) -> bytes:
        """A JPEG of one face, cut from its photo, at most ``side`` px."""
        return self._people.face_image(face_id, side)

    def _calibrate(self, encoder: FaceEncoder, changed: bool = False) -> None:
        """A gallery nobody has set a threshold for decides at its encoder's stated one, or,
        for an encoder that states none, at the label-free estimate from its own photos once
        it has two people (``facesearch.gallery.calibration``); until then at the default. A
        threshold set at a rate (``fpir``) is estimated again once the number of people has
        changed by a tenth: it follows the gallery, whose strangers score higher the more
        people it holds. ``changed``: the encoder or the scoring rule has just changed, so a
        stated threshold, or one estimated at a rate nobody remembers (galleries before schema
        0006), is stale and starts again; one at a known rate is estimated again at it; one
        tuned or set by hand stays."""
        row = self.store.gallery()
        known_rate = row.threshold_source == "fpir" and row.threshold_fpir is not None
        if changed and not known_rate and row.threshold_source in ("encoder", "fpir"):
            self.store.set_threshold(DEFAULT_THRESHOLD, "default")
            row = self.store.gallery()
        people = self.store.counts()[0]
        if known_rate:
            if people >= 2 and (changed or calibration.stale(row.threshold_people, people)):
                self.set_threshold_at_fpir(row.threshold_fpir)  # type: ignore[arg-type]
            return
        if row.threshold_source != "default":
            return
        stated = calibration.encoder_threshold(getattr(encoder, "calibration", None), row.scoring, encoder.flip)
        if stated is not None:
            self.store.set_threshold(stated, "encoder")
        elif people >= 2:
            self.set_threshold_at_fpir(calibration.DEFAULT_FPIR)

    def estimate_threshold(self, rate: float) -> calibration.Estimate:
        """The threshold at which ``rate`` of strangers would get a name, from the gallery's
        own photos (no labels; see ``facesearch.gallery.calibration``). Changes nothing."""
        calibration.check_rate(rate)
        return calibration.estimate(self._stranger_scores(self.store.gallery().scoring), rate)

    def _stranger_scores(self, rule: str) -> np.ndarray:
        """``calibration.stranger_scores``, answered once for each state of the gallery (its
        faces, their people, its encoder) and rule: up to ``calibration.SAMPLE`` searches that
        ``threshold --fpir`` (estimate, then report), an enroll's calibration and serve's
        ``GET /v1/threshold`` would otherwise repeat on the same faces."""
        key = (self.store.state(), rule)  # read first: a change made meanwhile misses next time
        known = self._strangers
        if known is not None and known[0] == key:
            return known[1]
        with self.index.memory:
            scores = calibration.stranger_scores(self.index.for_query(), self.store, rule)
        scores.flags.writeable = False  # shared by every caller until the gallery changes
        self._strangers = (key, scores)
        return scores

    def set_threshold_at_fpir(self, rate: float) -> calibration.Estimate:
        """``threshold --fpir RATE``: estimate as ``estimate_threshold`` and keep it."""
        found = self.estimate_threshold(rate)
        self.store.set_threshold(found.threshold, "fpir", found.fpir, self.store.counts()[0])
        return found

    def threshold_report(self) -> dict[str, Any]:
        """The threshold in force, where it came from (with ``fpir``, the rate it holds, when
        it was set at one), and what it means on this gallery's own photos, estimated without
        labels: ``estimated_fpir``, the share of strangers it would name (from
        ``estimated_from`` stranger queries; absent under two people). A threshold the
        encoder states was measured on other photos (cfp-dev); where this gallery's strangers
        would be named far more often than it states, ``note`` says so and how to set one
        from the gallery's photos."""
        row = self.store.gallery()
        report: dict[str, Any] = {"threshold": row.threshold, "threshold_source": row.threshold_source}
        if row.threshold_fpir is not None:
            report["fpir"] = row.threshold_fpir
        if self.store.counts()[0] < 2:
            return report
        found = calibration.share_named(self._stranger_scores(row.scoring), row.threshold)
        report.update(estimated_fpir=round(found.fpir, 4), estimated_from=found.estimated_from)
        stated = (getattr(self.encoder(), "calibration", None) or {}).get("fpir") if row.threshold_source == "encoder" else None
        if isinstance(stated, (int, float)) and calibration.unlike_calibration(stated, found.fpir):
            report["note"] = (f"the encoder states FPIR {stated} for its threshold on the photos it was calibrated on; "
                              f"on this gallery's photos it would name about {found.fpir:.0%} of strangers: "
                              f"`facesearch threshold --fpir {stated}` sets one from them")
        return report

    def set_threshold(self, value: float, source: str = "manual") -> None:
        if not math.isfinite(value) or not -1.0 <= value <= 1.0:
            raise InputError(f"threshold {value} is not a cosine similarity in [-1, 1]")
        self.store.set_threshold(float(value), source)

    def decision(self) -> dict[str, Any]:
        """How a query decides, from one read: the scoring rule and the threshold (with where
        it came from: a threshold ``tuned`` under one rule is stale under another)."""
        row = self.store.gallery()
        return {"scoring": row.scoring, "threshold": row.threshold, "threshold_source": row.threshold_source}

    def set_scoring(self, rule: str) -> None:
        """Score people by ``rule`` (facesearch.gallery.scoring). A threshold tuned or set by
        hand stays as it is (one tuned under another rule wants `bench --tune` again: the CLI
        says so); one the encoder stated or the gallery estimated is found again for the rule."""
        self.store.set_scoring(scoring.check_rule(rule))
        if self.store.state().fingerprint:
            self._calibrate(self.encoder(), changed=True)  # stated or estimated under the old rule

    def counts(self) -> tuple[int, int]:
        """(people, faces) enrolled."""
        return self.store.counts()

    def stored_embeddings(self) -> tuple[np.ndarray, list[str]]:
        """Every named person's face: unit embedding (N x D, face id order) and whose it is:
        the database's vectors, for evaluation that compares against all of them."""
        state, ids = self.store.snapshot_ids()
        if not len(ids):
            return np.zeros((0, state.dim or 0), np.float32), []
        ids, vectors = self.store.embeddings(ids, state.dim)
        records = self.store.faces(ids.tolist())  # named people's faces only
        named = np.array([int(i) in records for i in ids], bool)
        return vectors[named], [records[int(i)].identity for i in ids[named]]

    def identities(self) -> list[dict[str, Any]]:
        return [{"identity": name, "faces": faces} for name, faces in self.store.identities()]

    def info(self) -> dict[str, Any]:
        row = self.store.gallery()
        state = self.store.state()
        identities, faces = self.store.counts()
        model = None
        if row.encoder_fingerprint:
            model = {
                "fingerprint": row.encoder_fingerprint,
                "file": str(self.home.model_file(row.encoder_fingerprint)),
                **json.loads(row.encoder_config or "{}"),
            }
        return {
            "home": str(self.home.root),
            "database": self.store.safe_url,
            "schema": stored_revision(self.store.engine),
            "model": model,
            "identities": identities,
            "faces": faces,
            "unnamed": self.store.unnamed_count(),
            "threshold": row.threshold,
            "threshold_source": row.threshold_source,
            "scoring": row.scoring,
            "index": self.index.info(state),
            "detector": row.detector,
            "device": runtime_device(self.device),
            "warnings": self.home.exposed(),
        }

    def index_info(self, state: GalleryState | None = None) -> dict[str, Any]:
        """The index's kind, search parameters and whether its file is up to date."""
        return self.index.info(state)
