"""The body-size limit of each path, enforced as an ASGI middleware before the application reads a byte, so no
request can make the server buffer more than its path allows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import send_json


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The body's size when the request frames it by Content-Length alone (the server then passes on exactly that
    many bytes); None for a chunked body, or a Content-Length that is not a plain number."""
    length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
    return length


@dataclass(frozen=True)
class BodyLimit:
    """The most body bytes a path takes, and the setting that says so."""

    size: int
    setting: str


class BodyLimitMiddleware:
    """Answers 413 as soon as a request declares or sends more body than its path allows.

    A declared Content-Length over the limit is refused before any byte is read, one within it passes untouched (the
    server never passes on more than was declared); any other body is counted as it streams and cut off at the
    limit. The application then sees a disconnect and whatever it answers is dropped.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], BodyLimit], error_key: Callable[[str], str]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.error_key = error_key  # the JSON key of a path's error body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = declared_length(scope["headers"])
        if declared is not None:
            if declared > limit.size:
                await reject(send, limit, self.error_key(scope["path"]))
            else:  # no wrapping: it cost two closures and an extra await on every message of every upload
                await self.app(scope, receive, send)
            return

        received = 0
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, responded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.size and not responded:
                    responded = True
                    await reject(send, limit, self.error_key(scope["path"]))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not responded:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def reject(send: Send, limit: BodyLimit, key: str) -> None:
    message = f"request body is over the limit of {limit.size:,} bytes ({limit.setting})"
    await send_json(send, 413, {key: message}, [(b"connection", b"close")])
