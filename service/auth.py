"""The optional API key: ``--api-key`` or the ``ADRECALL_API_KEY`` environment variable.

A request proves it holds the key with ``Authorization: Bearer <key>`` (what OpenAI clients
send) or ``X-API-Key: <key>``. The comparison takes the same time whatever the guess
(:func:`hmac.compare_digest`), so timing reveals nothing of the key. ``/health`` and the
API docs stay open, for load balancers' probes and for reading the API.
"""

from __future__ import annotations

import hmac
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

API_KEY_ENV = "ADRECALL_API_KEY"
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def resolve_api_key(given: str | None) -> str | None:
    """The key the server requires: ``given``, else ``$ADRECALL_API_KEY``, else none."""
    key = given if given is not None else os.environ.get(API_KEY_ENV)
    if key is not None and not key.strip():
        raise ValueError(f"the API key is empty (--api-key or ${API_KEY_ENV}); give a real key "
                         "or leave both unset for no key")
    return key


def key_matches(expected: str, presented: str | None) -> bool:
    """Whether ``presented`` (a header's text, decoded as Latin-1 like every HTTP header) is
    ``expected``, compared in constant time on the bytes."""
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("latin-1"))


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a request carries (``Authorization: Bearer`` first, then ``X-API-Key``)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key")


class ApiKeyMiddleware:
    """Refuses (401) every request to a non-open path that lacks the key, before the body is
    read."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app, self.api_key = app, api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        key = presented_key(headers)
        if not key_matches(self.api_key, key):
            problem = "has no API key" if key is None else "has a wrong API key"
            response = error_response(
                401, f"the request {problem}; send it as 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>' (the server's --api-key / $ADRECALL_API_KEY)",
                headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
