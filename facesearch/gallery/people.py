"""People nobody has named yet: grouping the unnamed faces, naming groups, merging, moving
and splitting, and showing a face. ``Gallery`` delegates its people operations here; the
rows are ``people_records``'; the grouping itself is ``facesearch.people.clustering``.

Every change runs under the gallery lock, as enroll and remove do. Naming, renaming and
moving change whose a face is, never its vector: the index keeps its vectors, and an answer
reads whose each one is from the database.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from facesearch.gallery.layouts import check_identity
from facesearch.gallery.locking import GalleryLock
from facesearch.gallery.people_records import PeopleRecords, no_group, no_person
from facesearch.gallery.store import Store
from facesearch.index.base import SearchIndex, found_ids

GROUPING_THRESHOLD = 0.2
"""``cluster``'s average-linkage threshold: on all 3,481 cfp-dev photos with SFace, BCubed F
0.941 in one pass and 0.936 in two (benchmarks/results/clustering.md; chosen there)."""
QUALITY_GATE = 0.05
"""Faces of lower quality (facesearch.embedding.quality) are left out of groups: only faces
poor on two counts at once (a turned-away face, 0.1 on pose alone, that is also small or
blurred). Measured on all of cfp-dev (benchmarks/results/quality.md): with SFace, BCubed F
0.9414 ungated, 0.9401 at 0.05 (4 faces gated), 0.8845 at 0.1 (234: the profiles the
encoder groups well) and 0.7466 at 0.2; with the shipped student 0.6333, 0.6336, 0.6311,
0.6369. A gate that costs a good encoder little and keeps the worst faces out."""
THUMBNAIL_MARGIN = 0.2
"""A face's picture shows its box and this share of its size around it."""


class People:
    """The people operations of one gallery (its store and lock)."""

    def __init__(self, store: Store, lock: GalleryLock) -> None:
        self.store = store
        self.records = PeopleRecords(store)
        self.lock = lock

    def cluster(self, full: bool = False, threshold: float | None = None, min_quality: float | None = None) -> dict[str, Any]:
        """Group the unnamed faces into people (average linkage on their nearest
        neighbours). Incremental: faces already grouped keep their groups, which are never
        renumbered, split or merged; new faces join them or form new ones. ``full``: regroup
        everything (new group numbers). Faces below ``min_quality`` stay ungrouped and are
        counted. One run at a time (the gallery lock)."""
        from facesearch.people.clustering import extend

        threshold = GROUPING_THRESHOLD if threshold is None else threshold
        min_quality = QUALITY_GATE if min_quality is None else min_quality
        start = time.perf_counter()
        with self.lock:
            rows = self.records.unnamed_faces()
            eligible = [(face, None if full else group) for face, group, quality in rows
                        if quality is None or quality >= min_quality]
            eligible.sort(key=lambda row: (row[1] is None, row[0]))  # grouped faces first, as extend wants
            faces = [face for face, _ in eligible]
            old = np.array([group for _, group in eligible if group is not None], np.int64)
            labels: list[int] = []
            if faces:
                _, vectors = self.store.embeddings(faces)
                labels = extend(vectors, old, threshold).tolist()
            self.records.assign_groups(faces, labels, {int(g) for g in old}, full)
        groups = self.records.groups()
        grouped = sum(count for _, count in groups)
        return {"groups": [{"id": group, "faces": count} for group, count in groups if count],
                "ungrouped": len(rows) - grouped, "seconds": round(time.perf_counter() - start, 3)}

    def people(self) -> list[dict[str, Any]]:
        """Named people and unnamed groups, ``{person, group, faces, face}``."""
        return self.records.people()

    def name_group(self, group: int, name: str) -> dict[str, Any]:
        """Name a group: its faces become ``name``'s (who is created, or joined if they exist),
        and answer queries as that person from now on. ``n000000`` is refused."""
        name = check_identity(name)
        with self.lock:
            named = self.records.name_group(group, name)
        return {"person": name, "faces": named[0]}

    def rename(self, old: str, new: str) -> dict[str, Any]:
        """Rename a person; when ``new`` is someone already, the two become one (a merge)."""
        new = check_identity(new)
        with self.lock:
            renamed = self.records.rename_identity(old, new)
        return {"person": new, "faces": renamed[0]}

    def move(self, face_id: int, person: str, create: bool = False) -> dict[str, Any]:
        """Give one face to ``person`` (who must exist, unless ``create``)."""
        person = check_identity(person)
        with self.lock:
            moved = self.records.move_face(face_id, person, create)
        return {"face": face_id, "person": person, "faces": moved[0]}

    def split(self, group: int, faces: Sequence[int]) -> dict[str, Any]:
        """Take some faces of a group into a new group (two people grouped as one): the new
        group's ``{group, faces}``. Faces not in the group, or all of its faces: refused."""
        with self.lock:
            split = self.records.split_group(group, faces)
        return {"group": split[0], "faces": split[1]}

    def merge(self, group: int, into: int) -> dict[str, Any]:
        """One person grouped twice: ``group``'s faces join group ``into`` (which keeps its
        number), without naming either: ``{group, faces}`` of the merged group."""
        with self.lock:
            merged = self.records.merge_groups(group, into)
        return {"group": into, "faces": merged}

    def faces(self, person: str | None = None, group: int | None = None, unnamed: bool = False) -> list[dict[str, Any]]:
        """The gallery's faces, ``{id, person, group, path, box, quality}``: all of them, or
        one person's, one group's, or the unnamed ones (an unknown person or group: an error)."""
        if person is not None and not self.store.has_identity(person):
            raise no_person(person)
        if group is not None and not self.records.has_group(group):
            raise no_group(group)
        return self.records.list_faces(person, group, unnamed)

    def face_image(self, face_id: int, side: int = 160) -> bytes:
        """A JPEG of one face, cut from its photo (its box and a margin) and at most ``side``
        px: what a person sees to name a group. Read from the photo each time: nothing of
        the face is kept besides its vector, so a removed face leaves no picture behind."""
        from PIL import Image

        from facesearch.embedding.imaging import decode, read_bytes

        path, box = self.records.face_source(face_id)
        image = decode(read_bytes(path), path)  # a photo moved or deleted since: ImageError
        if box is not None:
            left, top, right, bottom = box
            pad = THUMBNAIL_MARGIN * max(right - left, bottom - top)
            image = image.crop((max(0, int(left - pad)), max(0, int(top - pad)),
                                min(image.width, int(right + pad)), min(image.height, int(bottom + pad))))
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue()

    def seen_groups(self, index: SearchIndex, vectors: np.ndarray, threshold: float) -> list[dict[str, int] | None]:
        """For faces nobody named: the unnamed group of their nearest grouped face at or above
        the threshold, as ``{id, photos}`` ("seen before, in N photos"), else None."""
        if not self.records.any_grouped():
            return [None] * len(vectors)
        scores, ids = index.search(vectors, min(16, max(index.ntotal, 1)))
        grouped = self.records.face_groups(found_ids(ids).tolist())
        out: list[dict[str, int] | None] = []
        for row_scores, row_ids in zip(scores, ids):
            hit = next((grouped[int(i)] for s, i in zip(row_scores, row_ids) if int(i) in grouped and s >= threshold), None)
            out.append(None if hit is None else {"id": hit, "photos": self.records.group_photos(hit)})
        return out
