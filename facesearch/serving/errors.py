"""How the HTTP API answers a failure: ``{"error": message}`` with a status that matches the
CLI's exit code (one error hierarchy, ``facesearch.errors``): 400 bad input, 401 no or wrong
token, 404 unknown identity, 409 an empty gallery, 503 a busy gallery or database, 507 a full
disk, 500 anything else (a stack trace never reaches a client, it is logged).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from facesearch.errors import (
    Busy,
    FaceSearchError,
    GalleryError,
    ImageError,
    InputError,
    StorageError,
    UnknownIdentity,
)

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Every failure as ``{"error": message}`` with its status; a bug as a bare 500."""

    def answer(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return answer(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(400, "; ".join(_describe(e) for e in exc.errors()))

    @app.exception_handler(FaceSearchError)
    async def refused(_: Request, exc: FaceSearchError) -> JSONResponse:
        return answer(status_of(exc), str(exc))

    @app.exception_handler(OperationalError)
    async def database(_: Request, exc: OperationalError) -> JSONResponse:
        return answer(503, f"the gallery database is busy, try again ({exc.orig})")

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(500, "internal error (the server has logged it)")


def status_of(exc: FaceSearchError) -> int:
    """The HTTP status of a failure the CLI reports with exit 1."""
    if isinstance(exc, Busy):
        return 503
    if isinstance(exc, UnknownIdentity):
        return 404
    if isinstance(exc, StorageError):
        return 507
    if isinstance(exc, (ImageError, InputError)):
        return 400
    if isinstance(exc, GalleryError):
        return 409
    return 500  # a model file that is missing or corrupt: the server's fault, said plainly


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
    if error.get("type") == "missing" and where == "file":
        return "no file: send the photo as multipart field 'file'"
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"
