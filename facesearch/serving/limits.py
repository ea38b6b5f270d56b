"""The upload limit: a request body over ``--max-upload-mb`` is refused with 413, at once when
its Content-Length says so, else as soon as the bytes received pass the limit."""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi.responses import JSONResponse


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
