"""`facesearch serve`'s app: one gallery over HTTP, for other programs and for the search page.

The endpoints mirror the CLI's commands, with the same JSON keys and error messages (the
design doc): ``POST /v1/query``, ``POST /v1/enroll``, ``GET /v1/identities``,
``DELETE /v1/identities/{identity}``, ``GET /v1/info`` (``routes``), ``GET /healthz``, the page
at ``/`` and OpenAPI docs at ``/docs``. The gallery is opened once per worker process and
shared by its requests (Gallery guards its in-memory index and encoder against threads; its
file lock orders writes with a CLI enroll on the same home). Failures: ``errors``; the upload
limit: ``limits``; running it: ``server``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facesearch.gallery.engine import Gallery
from facesearch.serving import people_routes, routes
from facesearch.serving.errors import install_error_handlers
from facesearch.serving.limits import UploadLimit

ENV_TOKEN = "FACESEARCH_TOKEN"
PAGE = Path(__file__).with_name("page") / "index.html"
LOCK_WAIT = 30.0
"""Seconds an enroll or remove request waits for another writer (a long CLI enroll) before 503."""


def create_app(gallery: Gallery, token: str | None = None, max_upload_mb: float = 10.0) -> FastAPI:
    """The HTTP app over ``gallery``; ``token``: the bearer token every ``/v1`` call needs
    (None: no token, for loopback use only, which ``serve`` enforces)."""
    app = FastAPI(title="facesearch", summary="Face search over HTTP: query, enroll, list and remove people.")
    app.state.gallery = gallery
    app.add_middleware(UploadLimit, max_bytes=int(max_upload_mb * 2**20))
    gallery.sweep_uploads()
    install_error_handlers(app)
    app.include_router(routes.router, dependencies=[Depends(_bearer(token))])
    app.include_router(people_routes.router, dependencies=[Depends(_bearer(token))])

    @app.get("/healthz", summary="Liveness: the process answers and the gallery opens.")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "faces": gallery.counts()[1]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    return app


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
