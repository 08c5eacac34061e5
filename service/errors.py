"""Errors as JSON: every refusal is a 4xx whose body names the problem and how to fix it.

The body has the OpenAI error shape, ``{"error": {"message", "type", "param", "code"}}``, so
OpenAI-style clients show the message too. Malformed JSON is 400, a body that is not JSON
415, a value the schema refuses 422, a request over a limit 413, a missing or wrong API key
401, a full queue 429.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("adrecall.service")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "request_too_large", 415: "invalid_request_error",
          422: "invalid_request_error",
          429: "rate_limit_error"}


class Rejected(Exception):
    """A request the service refuses: ``status`` (4xx), a message saying what to change, and
    the request field at fault (``param``)."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers


def error_response(status: int, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every refusal uses."""
    body = {"error": {"message": message, "type": _TYPES.get(status, "server_error"),
                      "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Turn validation errors, HTTP errors, :class:`Rejected` and the library's own
    ``ValueError``/``TypeError`` into JSON error bodies; anything else is logged and is a 500."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = errors[0].get("ctx", {}).get("error", "")
            return error_response(400, f"the request body is not valid JSON ({detail}); send "
                                  "a JSON object with Content-Type: application/json")
        whole = [e for e in errors if tuple(e.get("loc", ())) == ("body",)]
        if whole and isinstance(whole[0].get("input"), bytes):  # a body FastAPI did not parse
            return error_response(415, "the body is not JSON (Content-Type "
                                  f"{request.headers.get('content-type')!r}); send a JSON object "
                                  "with Content-Type: application/json")
        if whole:
            return error_response(422, "the request body must be a JSON object with the "
                                  f"endpoint's fields (see /docs); got {_shown(whole[0])}")
        return error_response(422, "; ".join(_describe(e) for e in errors[:5]),
                              _location(errors[0]))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = (f"no endpoint {request.method} {request.url.path}; the endpoints are "
                       "listed at /docs")
        elif exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; see /docs"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.headers)

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log "
                              "has the traceback")


def _location(error: dict[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ()) if p != "body"]
    return ".".join(parts) or "body"


def _describe(error: dict[str, Any]) -> str:
    return f"{_location(error)}: {error.get('msg', 'invalid')} (got {_shown(error)})"


def _shown(error: dict[str, Any]) -> str:
    """The value an error is about, cut to 60 characters."""
    value = repr(error.get("input"))
    return value if len(value) <= 60 else value[:57] + "..."
