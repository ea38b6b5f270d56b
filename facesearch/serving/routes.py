"""The gallery's endpoints under ``/v1``: they mirror the CLI's commands, with the same JSON keys
and error messages (the design doc): query, enroll, identities, remove, info, threshold. Each gets the
gallery through a dependency (``current_gallery``), so a router knows nothing of how the app is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from facesearch.gallery.engine import Gallery


def current_gallery(request: Request) -> Gallery:
    """The worker's one gallery (opened by ``create_app``, shared by its requests)."""
    return request.app.state.gallery


Served = Annotated[Gallery, Depends(current_gallery)]
router = APIRouter(prefix="/v1")


@router.post("/query", summary="Who is in this photo? Every face answered.")
def query(
    gallery: Served,
    file: Annotated[UploadFile, File(description="The photo.")],
    top_k: Annotated[int, Query(ge=1, le=100)] = 5,
    max_faces: Annotated[Optional[int], Query(ge=1)] = None,
    min_face: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    data = file.file.read()
    return gallery.query_bytes(data, _name(file), top_k, max_faces=max_faces, min_face=min_face).to_dict()


@router.post("/enroll", summary="Enroll photos of one person.")
def enroll(
    gallery: Served,
    identity: Annotated[str, Form(description="Whose photos these are.")],
    file: Annotated[list[UploadFile], File(description="One or more photos.")],
) -> dict[str, Any]:
    report, saved = gallery.enroll_uploads(identity, [(_name(upload), upload.file.read()) for upload in file])
    return _renamed(report.to_dict(), {str(path): upload for path, upload in saved.items()})


@router.get("/identities", summary="Enrolled people and their number of faces.")
def identities(gallery: Served) -> dict[str, Any]:
    return {"identities": gallery.identities()}


@router.delete("/identities/{identity}", summary="Delete a person and all their data.")
def remove(identity: str, gallery: Served) -> dict[str, Any]:
    return {"removed": identity, "faces": gallery.remove(identity)}


@router.get("/info", summary="The gallery: model, counts, threshold, index.")
def info(gallery: Served) -> dict[str, Any]:
    return gallery.info()


@router.get("/threshold", summary="The threshold, where it came from, and the share of strangers it names here.")
def threshold(gallery: Served) -> dict[str, Any]:
    return gallery.threshold_report()


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """The report with the kept files named as the client named its uploads."""
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


def _name(upload: UploadFile) -> str:
    """How an upload is named in messages: its file name, never a path of the client's."""
    return Path(upload.filename or "upload").name or "upload"
