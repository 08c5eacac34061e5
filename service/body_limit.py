"""Refuse a request body over a size limit (413) before it is read into memory: by its
``Content-Length``, or, for a chunked body, as soon as the bytes received pass the limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


class BodyTooLarge(Exception):
    """The body passed the limit while it was being received."""


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes`` (:attr:`service.limits.Limits.max_body_bytes`)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send, length.decode("latin-1"))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send, f"more than {received}")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        response = error_response(
            413, f"the request body is {size} bytes; this server reads at most {self.max_bytes} "
            "(send fewer or shorter texts per request)")
        await response(scope, receive, send)
