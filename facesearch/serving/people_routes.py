"""People nobody has named yet, and 1:1, under ``/v1``: the CLI's faces, cluster, people,
name, split, merge, rename, move, verify and embed commands, with the same JSON keys and error
messages; and each face's picture, for the page's People view."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from facesearch.errors import ImageError
from facesearch.serving.routes import Served, _name

router = APIRouter(prefix="/v1")


@router.get("/faces", summary="The gallery's faces: all, one person's, one group's, or the unnamed ones.")
def faces(
    gallery: Served, person: Optional[str] = None, group: Optional[int] = None, unnamed: bool = False,
) -> dict[str, Any]:
    return {"faces": gallery.faces(person, group, unnamed)}


@router.get("/faces/{face}/image", summary="A JPEG of one face, cut from its photo.", response_class=Response)
def face_image(face: int, gallery: Served, side: Annotated[int, Query(ge=16, le=512)] = 160) -> Response:
    return Response(gallery.face_image(face, side), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.delete("/faces/{face}", summary="Delete one face, leaving no copy of it.")
def remove_face(face: int, gallery: Served) -> dict[str, Any]:
    return {"removed_face": gallery.remove_face(face)}


@router.post("/faces/{face}/move", summary="Give one face to a person.")
def move(
    face: int, gallery: Served, person: Annotated[str, Form()], create: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    return gallery.move(face, person, create)


@router.post("/cluster", summary="Group the unnamed faces into people (incremental).")
def cluster(
    gallery: Served, full: bool = False, threshold: Annotated[Optional[float], Query()] = None,
    min_quality: Annotated[Optional[float], Query()] = None,
) -> dict[str, Any]:
    return gallery.cluster(full, threshold, min_quality)


@router.get("/people", summary="Named people and the groups of unnamed faces.")
def people(gallery: Served) -> dict[str, Any]:
    return {"people": gallery.people()}


@router.post("/groups/{group}/name", summary="Name a group: its faces become that person's.")
def name(group: int, gallery: Served, person: Annotated[str, Form()]) -> dict[str, Any]:
    return gallery.name_group(group, person)


@router.post("/groups/{group}/split", summary="Take some faces of a group into a new group.")
def split(group: int, gallery: Served, faces: Annotated[list[int], Form()]) -> dict[str, Any]:
    return gallery.split(group, faces)


@router.post("/groups/{group}/merge", summary="One person grouped twice: the group's faces join another group.")
def merge(group: int, gallery: Served, into: Annotated[int, Form()]) -> dict[str, Any]:
    return gallery.merge(group, into)


@router.post("/identities/{identity}/rename", summary="Rename a person (a merge when the new name exists).")
def rename(identity: str, gallery: Served, new: Annotated[str, Form()]) -> dict[str, Any]:
    return gallery.rename(identity, new)


@router.post("/verify", summary="1:1: is the largest face of the two photos the same person?")
def verify(
    gallery: Served,
    first: Annotated[UploadFile, File(description="A photo.")],
    second: Annotated[UploadFile, File(description="Another photo.")],
    threshold: Annotated[Optional[float], Query()] = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="facesearch-verify-") as folder:
        a, b = _kept(first, Path(folder), "a"), _kept(second, Path(folder), "b")
        with _named({str(a): _name(first), str(b): _name(second)}):
            return gallery.verify(a, b, threshold=threshold).to_dict()


@router.post("/embed", summary="Every face of a photo: box, landmarks and embedding.")
def embed(gallery: Served, file: Annotated[UploadFile, File(description="The photo.")]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="facesearch-embed-") as folder:
        kept = _kept(file, Path(folder), "photo")
        with _named({str(kept): _name(file)}):
            fingerprint, found = gallery.embed(kept)
    return {"model": {"fingerprint": fingerprint, "dim": len(found[0].embedding)}, "faces": [f.to_dict() for f in found]}


def _kept(upload: UploadFile, folder: Path, stem: str) -> Path:
    """The upload as a file for as long as the request lasts (a photo compared or embedded
    is not kept: nothing of it stays in the home)."""
    path = folder / f"{stem}{Path(_name(upload)).suffix.lower() or '.img'}"
    path.write_bytes(upload.file.read())
    return path


@contextmanager
def _named(names: dict[str, str]) -> Iterator[None]:
    """A bad photo's error names the upload as the client named it, not the request's file."""
    try:
        yield
    except ImageError as exc:
        raise ImageError(names.get(exc.path, exc.path), exc.reason) from None
