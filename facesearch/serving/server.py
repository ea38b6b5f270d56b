"""Running the HTTP server (``facesearch serve``): uvicorn with one gallery per worker process,
refusing to listen beyond loopback without a token (a face gallery is personal data)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from fastapi import FastAPI

from facesearch.errors import InputError
from facesearch.gallery.engine import Gallery
from facesearch.gallery.home import ENV_DATABASE_URL
from facesearch.serving.app import ENV_TOKEN, LOCK_WAIT, create_app


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
    uvicorn.run("facesearch.serving.server:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="info")
