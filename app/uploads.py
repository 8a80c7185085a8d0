"""Upload size limits, enforced while the body is read so no request can make the server buffer more."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_CHUNK = 64 * 1024


class UploadTooLargeError(ValueError):
    """An uploaded file or request body over its limit."""


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The file's bytes, refusing (without reading further) once more than `limit` bytes have arrived."""
    chunks, size = [], 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(f"file '{safe_name(upload)}' is over the upload limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def safe_name(upload: UploadFile) -> str:
    """The client's filename for messages only (never as a path), shortened and stripped of control characters."""
    name = "".join(ch for ch in (upload.filename or "upload") if ch.isprintable())
    return name[:80]


class BodyLimitMiddleware:
    """Answers 413 as soon as a request declares or sends more body than its path allows.

    A declared Content-Length over the limit is refused before any byte is read; a chunked body is counted as it
    streams and cut off at the limit. The application then sees a disconnect and whatever it answers is dropped.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await reject(send, limit)
            return

        received = 0
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, responded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not responded:
                    responded = True
                    await reject(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not responded:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def reject(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body is over the limit of {limit:,} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
