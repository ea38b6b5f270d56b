"""The people of a gallery in its database: faces with or without a person, the groups of
unnamed faces, and the changes that name, merge, move and split them.

Beside ``Store`` (which owns the schema, the connection and every other table's rows): these
are the queries of ``facesearch.gallery.people``, over the same sessions. Each change that
alters whose a face is bumps the gallery's revision, as every change to the faces does. A
change asked of a group, face or person that is not there raises the library's error inside
its transaction, so nothing of it is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update

from facesearch.errors import InputError, UnknownFace, UnknownIdentity
from facesearch.gallery.store import Face, Group, Identity, Store, chunks


def no_group(group: int) -> UnknownFace:
    return UnknownFace(f"no group {group} in the gallery (facesearch people lists them)")


def no_face(face_id: int) -> UnknownFace:
    return UnknownFace(f"no face {face_id} in the gallery (facesearch faces lists them)")


def no_person(name: str, hint: str = "") -> UnknownIdentity:
    return UnknownIdentity(f"no identity {name!r} in the gallery{hint}")


class PeopleRecords:
    """The people queries of one gallery database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list_faces(
        self, person: str | None = None, group: int | None = None, unnamed: bool = False,
    ) -> list[dict[str, Any]]:
        """Faces in id order, each ``{id, person, group, path, box, quality}`` (person and group
        None when none): all of them, or one person's, one group's, or the unnamed ones."""
        query = (
            select(Face.id, Identity.name, Face.group_id, Face.source_path, Face.box, Face.quality)
            .outerjoin(Identity, Face.identity_id == Identity.id)
            .order_by(Face.id)
        )
        if person is not None:
            query = query.where(Identity.name == person)
        if group is not None:
            query = query.where(Face.group_id == group)
        if unnamed:
            query = query.where(Face.identity_id.is_(None))
        with self.store.session() as session:
            return [
                {"id": face_id, "person": name, "group": group_id, "path": path,
                 "box": json.loads(box) if box else None, "quality": quality}
                for face_id, name, group_id, path, box, quality in session.execute(query)
            ]

    def unnamed_faces(self) -> list[tuple[int, int | None, float | None]]:
        """(id, group, quality) of every face with no person, in id order."""
        with self.store.session() as session:
            rows = session.execute(
                select(Face.id, Face.group_id, Face.quality).where(Face.identity_id.is_(None)).order_by(Face.id)
            )
            return [(face_id, group, quality) for face_id, group, quality in rows]

    def assign_groups(self, faces: Sequence[int], labels: Sequence[int], existing: set[int], full: bool) -> dict[int, int]:
        """One transaction: each face's group from ``labels`` (a label in ``existing`` is that
        group; any other label >= 0 is a new group, made here; -1: none); with ``full``, the
        groups there were are dropped first. Returns {label: group id}."""
        with self.store.session() as session:
            self.store.writing(session)
            if full:
                session.execute(update(Face).values(group_id=None))
                session.execute(delete(Group))
            made: dict[int, int] = {label: label for label in existing}
            for label in sorted({int(x) for x in labels if x >= 0} - set(existing)):
                row = Group()
                session.add(row)
                session.flush()
                made[label] = row.id
            by_group: dict[int | None, list[int]] = {}
            for face, label in zip(faces, labels):
                by_group.setdefault(made[int(label)] if label >= 0 else None, []).append(int(face))
            for group, members in by_group.items():
                for chunk in chunks(members, 900):
                    session.execute(update(Face).where(Face.id.in_(list(chunk))).values(group_id=group))
            return made

    def groups(self) -> list[tuple[int, int]]:
        """(group id, faces) of every group, in id order."""
        with self.store.session() as session:
            rows = session.execute(
                select(Group.id, func.count(Face.id)).outerjoin(Face, Face.group_id == Group.id).group_by(Group.id).order_by(Group.id)
            )
            return [(group, count) for group, count in rows]

    def people(self) -> list[dict[str, Any]]:
        """Named people, then unnamed groups: ``{person, group, faces, face}`` (``face``: the
        id of the best-quality face, to show; person or group None where it does not apply)."""
        with self.store.session() as session:
            best: dict[tuple[str, int], tuple[float, int]] = {}
            counts: dict[tuple[str, int], int] = {}
            rows = session.execute(select(Face.id, Face.identity_id, Face.group_id, Face.quality).where(
                (Face.identity_id.is_not(None)) | (Face.group_id.is_not(None))))
            for face_id, person, group, quality in rows:
                key = ("person", person) if person is not None else ("group", group)
                counts[key] = counts.get(key, 0) + 1
                score = (quality if quality is not None else -1.0, -face_id)
                if key not in best or score > best[key]:
                    best[key] = score
            names = {ident: name for ident, name in session.execute(select(Identity.id, Identity.name))}
        listed = [{"person": names[i], "group": None, "faces": counts.get(("person", i), 0),
                   "face": -best[("person", i)][1] if ("person", i) in best else None}
                  for i in sorted(names, key=lambda i: names[i])]
        listed += [{"person": None, "group": g, "faces": n, "face": -best[("group", g)][1]}
                   for (kind, g), n in sorted(counts.items(), key=lambda item: item[0][1]) if kind == "group"]
        return listed

    def name_group(self, group: int, name: str) -> tuple[int, int]:
        """Give a group's faces to the person ``name`` (made if new), and drop the group:
        (the person's faces now, new revision)."""
        with self.store.session() as session:
            self.store.writing(session)
            if session.get(Group, int(group)) is None:
                raise no_group(group)
            person = self.store.identity_ids(session, {name})[name]
            session.execute(update(Face).where(Face.group_id == int(group)).values(identity_id=person, group_id=None))
            session.execute(delete(Group).where(Group.id == int(group)))
            revision = self.store.bump(session)
            faces = session.scalar(select(func.count(Face.id)).where(Face.identity_id == person)) or 0
            return faces, revision

    def rename_identity(self, old: str, new: str) -> tuple[int, int]:
        """``old``'s faces become ``new``'s (a rename, or a merge when ``new`` exists):
        (``new``'s faces now, new revision)."""
        with self.store.session() as session:
            self.store.writing(session)
            source = session.scalar(select(Identity.id).where(Identity.name == old))
            if source is None:
                raise no_person(old)
            target = session.scalar(select(Identity.id).where(Identity.name == new))
            if target is None:
                session.execute(update(Identity).where(Identity.id == source).values(name=new))
                target = source
            else:
                session.execute(update(Face).where(Face.identity_id == source).values(identity_id=target))
                session.execute(delete(Identity).where(Identity.id == source))
            revision = self.store.bump(session)
            return session.scalar(select(func.count(Face.id)).where(Face.identity_id == target)) or 0, revision

    def move_face(self, face_id: int, person: str, create: bool) -> tuple[int, int]:
        """Give one face to ``person`` (out of its group, if any): (``person``'s faces now, new
        revision). A person is made only with ``create``."""
        with self.store.session() as session:
            self.store.writing(session)
            if session.get(Face, int(face_id)) is None:
                raise no_face(face_id)
            exists = session.scalar(select(Identity.id).where(Identity.name == person)) is not None
            if not exists and not create:
                raise no_person(person, " (add --create to make them)")
            target = self.store.identity_ids(session, {person})[person]
            session.execute(update(Face).where(Face.id == int(face_id)).values(identity_id=target, group_id=None))
            revision = self.store.bump(session)
            return session.scalar(select(func.count(Face.id)).where(Face.identity_id == target)) or 0, revision

    def face_groups(self, ids: Sequence[int]) -> dict[int, int]:
        """{face id: group} of the given faces that are in a group of unnamed faces."""
        found: dict[int, int] = {}
        with self.store.session() as session:
            for chunk in chunks([int(i) for i in ids], 900):
                found.update((face_id, group) for face_id, group in session.execute(
                    select(Face.id, Face.group_id).where(Face.id.in_(chunk), Face.group_id.is_not(None))))
        return found

    def group_photos(self, group: int) -> int:
        """How many photos a group's faces come from."""
        with self.store.session() as session:
            return session.scalar(select(func.count(func.distinct(Face.content_hash))).where(Face.group_id == group)) or 0

    def any_grouped(self) -> bool:
        with self.store.session() as session:
            return session.scalar(select(Face.id).where(Face.group_id.is_not(None)).limit(1)) is not None

    def has_group(self, group: int) -> bool:
        with self.store.session() as session:
            return session.get(Group, int(group)) is not None

    def split_group(self, group: int, faces: Sequence[int]) -> tuple[int, int]:
        """Take some of a group's faces into a new group of their own (the rest stay):
        (the new group's id, its faces). A face not in the group, or all of them (nothing
        would be left to split from): refused."""
        wanted = {int(f) for f in faces}
        with self.store.session() as session:
            self.store.writing(session)
            if session.get(Group, int(group)) is None:
                raise no_group(group)
            members = set(session.scalars(select(Face.id).where(Face.group_id == int(group))))
            if not wanted or not wanted <= members or wanted == members:
                raise InputError(f"split takes some, not all, of group {group}'s faces (facesearch faces --group {group})")
            row = Group()
            session.add(row)
            session.flush()
            for chunk in chunks(sorted(wanted), 900):
                session.execute(update(Face).where(Face.id.in_(list(chunk))).values(group_id=row.id))
            return row.id, len(wanted)  # whose each face is did not change: no new revision

    def merge_groups(self, group: int, into: int) -> int:
        """Give all of ``group``'s faces to group ``into`` and drop ``group``: ``into``'s faces
        now."""
        with self.store.session() as session:
            self.store.writing(session)
            for which in (group, into):
                if session.get(Group, int(which)) is None:
                    raise no_group(which)
            if int(group) == int(into):
                raise InputError(f"group {group} cannot be merged into itself")
            session.execute(update(Face).where(Face.group_id == int(group)).values(group_id=int(into)))
            session.execute(delete(Group).where(Group.id == int(group)))
            return session.scalar(select(func.count(Face.id)).where(Face.group_id == int(into))) or 0

    def face_source(self, face_id: int) -> tuple[str, list[float] | None]:
        """(photo path, box) of one face."""
        with self.store.session() as session:
            row = session.execute(select(Face.source_path, Face.box).where(Face.id == int(face_id))).first()
        if row is None:
            raise no_face(face_id)
        return row[0], json.loads(row[1]) if row[1] else None
