"""`facesearch serve`: one gallery over HTTP, for other programs and for the search page.

The endpoints mirror the CLI's commands, with the same JSON keys and error messages
(DESIGN.md): ``POST /v1/query``, ``POST /v1/enroll``, ``GET /v1/identities``,
``DELETE /v1/identities/{identity}``, ``GET /v1/info``, ``GET /healthz``, the page at ``/``
and OpenAPI docs at ``/docs``. The gallery is opened once per worker process and shared by
its requests (Gallery guards its in-memory index and encoder against threads; its file lock
orders writes with a CLI enroll on the same home).

Errors are ``{"error": message}`` with 400 (bad input: a bad image gets the CLI's message),
401 (no or wrong token), 404 (unknown identity), 409 (an empty gallery), 413 (a body over
the upload limit, refused before it is read whole), 503 (the gallery stayed locked) or 500;
a stack trace never reaches a client, it is logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable, Optional

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError

from facesearch.gallery.engine import Gallery
from facesearch.errors import (
    Busy,
    FaceSearchError,
    GalleryError,
    ImageError,
    InputError,
    StorageError,
    UnknownIdentity,
)
from facesearch.gallery.home import ENV_DATABASE_URL

ENV_TOKEN = "FACESEARCH_TOKEN"
PAGE = Path(__file__).with_name("page") / "index.html"
LOCK_WAIT = 30.0
"""Seconds an enroll or remove request waits for another writer (a long CLI enroll) before 503."""

log = logging.getLogger(__name__)


def create_app(gallery: Gallery, token: str | None = None, max_upload_mb: float = 10.0) -> FastAPI:
    """The HTTP app over ``gallery``; ``token``: the bearer token every ``/v1`` call needs
    (None: no token, for loopback use only, which ``serve`` enforces)."""
    app = FastAPI(title="facesearch", summary="Face search over HTTP: query, enroll, list and remove people.")
    app.add_middleware(UploadLimit, max_bytes=int(max_upload_mb * 2**20))
    gallery.sweep_uploads()
    _error_handlers(app)
    authorised = Depends(_bearer(token))

    @app.get("/healthz", summary="Liveness: the process answers and the gallery opens.")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "faces": gallery.counts()[1]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.post("/v1/query", dependencies=[authorised], summary="Who is in this photo? Every face answered.")
    def query(
        file: Annotated[UploadFile, File(description="The photo.")],
        top_k: Annotated[int, Query(ge=1, le=100)] = 5,
        max_faces: Annotated[Optional[int], Query(ge=1)] = None,
        min_face: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        data = file.file.read()
        return gallery.query_bytes(data, _name(file), top_k, max_faces=max_faces, min_face=min_face).to_dict()

    @app.post("/v1/enroll", dependencies=[authorised], summary="Enroll photos of one person.")
    def enroll(
        identity: Annotated[str, Form(description="Whose photos these are.")],
        file: Annotated[list[UploadFile], File(description="One or more photos.")],
    ) -> dict[str, Any]:
        report, saved = gallery.enroll_uploads(identity, [(_name(upload), upload.file.read()) for upload in file])
        return _renamed(report.to_dict(), {str(path): upload for path, upload in saved.items()})

    @app.get("/v1/identities", dependencies=[authorised], summary="Enrolled people and their number of faces.")
    def identities() -> dict[str, Any]:
        return {"identities": gallery.identities()}

    @app.delete("/v1/identities/{identity}", dependencies=[authorised], summary="Delete a person and all their data.")
    def remove(identity: str) -> dict[str, Any]:
        return {"removed": identity, "faces": gallery.remove(identity)}

    @app.get("/v1/info", dependencies=[authorised], summary="The gallery: model, counts, threshold, index.")
    def info() -> dict[str, Any]:
        return gallery.info()

    return app


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


def _bearer(token: str | None) -> Callable[..., None]:
    scheme = HTTPBearer(auto_error=False, description=f"The server's {ENV_TOKEN}.")

    def check(credentials: Optional[HTTPAuthorizationCredentials] = Depends(scheme)) -> None:  # noqa: B008
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer $FACESEARCH_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def _error_handlers(app: FastAPI) -> None:
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


class UploadLimit:
    """Refuse a request body over ``max_bytes`` with 413: at once when its Content-Length says
    so, else as soon as the bytes received pass the limit (nothing more is read)."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable[..., Awaitable[dict]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received, started, exceeded = 0, False, False

        async def counted() -> dict:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            if exceeded:  # the app's own answer to a body cut short (FastAPI: 400) gives way to 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            pass
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Callable[..., Awaitable[None]]) -> None:
        mb = self.max_bytes / 2**20
        response = JSONResponse({"error": f"the upload is over the limit of {mb:g} MB (--max-upload-mb)"}, status_code=413)
        await response({"type": "http"}, _nothing, send)


class _TooLarge(Exception):
    pass


async def _nothing() -> dict:
    return {"type": "http.disconnect"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_from_environment() -> FastAPI:
    """The app of a uvicorn worker process (``--workers N``), configured by ``serve``."""
    gallery = Gallery(os.environ.get("FACESEARCH_HOME"), os.environ.get(ENV_DATABASE_URL), lock_timeout=LOCK_WAIT)
    return create_app(gallery, os.environ.get(ENV_TOKEN) or None, float(os.environ.get("FACESEARCH_MAX_UPLOAD_MB", "10")))


def serve(
    home: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
    max_upload_mb: float = 10.0, database_url: str | None = None,
) -> None:
    """Run the server until interrupted. A host other than loopback needs a token: a face
    gallery is personal data."""
    import uvicorn

    token = os.environ.get(ENV_TOKEN) or None
    if token is None and not is_loopback(host):
        raise InputError(f"--host {host} is reachable from other machines: set {ENV_TOKEN} (the bearer token clients send) first")
    if max_upload_mb <= 0:
        raise InputError("--max-upload-mb must be positive")
    Gallery(home, database_url).close()  # a bad home or database fails here, with the CLI's message, not in a worker
    if home is not None:
        os.environ["FACESEARCH_HOME"] = str(Path(home).expanduser().resolve())
    if database_url is not None:
        os.environ[ENV_DATABASE_URL] = database_url
    os.environ["FACESEARCH_MAX_UPLOAD_MB"] = str(max_upload_mb)
    uvicorn.run("facesearch.serving.service:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="info")
