"""The ASGI app: the service's endpoints over one :class:`service.engine.Engine`.

Responses are built as JSON directly (the schemas in :mod:`service.schemas` document them):
validating a search's hits a second time would cost more than the HTTP round trip.

``POST /encode``, ``/search``, ``/rerank`` and the OpenAI-shaped ``/v1/embeddings``
(:mod:`service.openai_api`); ``GET /health``; ``GET /metrics`` (Prometheus text); the OpenAPI
spec at ``/openapi.json`` and its docs at ``/docs``. Build it with :func:`create_app`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import adrecall
from service.auth import ApiKeyMiddleware
from service.body_limit import BodyLimitMiddleware
from service.engine import Engine
from service.errors import install_error_handlers
from service.limits import Limits
from service.metrics import Metrics
from service.openai_api import router as openai_router
from service.schemas import (
    EncodeRequest,
    EncodeResponse,
    HealthResponse,
    RerankRequest,
    RerankResponse,
    SearchRequest,
    SearchResponse,
)
from service.vectors import encode_vectors

_ERRORS = {code: {"description": text, "content": {"application/json": {}}} for code, text in {
    400: "malformed JSON", 401: "missing or wrong API key", 413: "too many or too long texts",
    422: "a value the API refuses (the message names it)", 429: "queue full, retry later"}.items()}


def create_app(engine: Engine, *, limits: Limits | None = None,
               api_key: str | None = None) -> FastAPI:
    """The service's app over ``engine`` with ``limits`` (default :class:`Limits`());
    ``api_key`` (when given) guards every endpoint but ``/health`` and the docs. Closing the
    app (lifespan shutdown) closes the engine."""
    limits = limits or Limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.close()  # uvicorn has let the requests in flight finish by now

    app = FastAPI(title="adrecall", version=adrecall.__version__, lifespan=lifespan,
                  description="Find the ads whose meaning matches a search query: encode, "
                  "search, rerank, OpenAI-style embeddings.", responses=_ERRORS)
    app.state.engine, app.state.limits = engine, limits
    install_error_handlers(app)
    _add_routes(app, engine, limits)
    app.include_router(openai_router)
    app.add_middleware(_MetricsMiddleware, metrics=engine.metrics)
    if api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)
        _document_api_key(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    return app


def _add_routes(app: FastAPI, engine: Engine, limits: Limits) -> None:
    @app.post("/encode", response_model=EncodeResponse, summary="Embed texts (Encoder.encode)")
    async def encode(body: EncodeRequest) -> JSONResponse:
        limits.check_texts(body.texts, "texts")
        vectors = await engine.encode(body.texts, normalize=body.normalize)
        return JSONResponse({"model": engine.encoder.label, "dimension": engine.encoder.dimension,
                             "embeddings": encode_vectors(vectors, body.encoding_format)})

    @app.post("/search", response_model=SearchResponse,
              summary="Top-k ads per query (Retriever.search)")
    async def search(body: SearchRequest) -> JSONResponse:
        queries = [body.queries] if isinstance(body.queries, str) else body.queries
        limits.check_texts(queries, "queries")
        limits.check_k(body.k)
        results = await engine.search(queries, body.k, body.mode or engine.default_mode)
        return JSONResponse({"results": [{"query": q, "hits": [h.to_dict() for h in hits]}
                                         for q, hits in zip(queries, results)]})

    @app.post("/rerank", response_model=RerankResponse,
              summary="Score texts against a query with BertSim, best first (BertSim.rank)")
    async def rerank(body: RerankRequest) -> JSONResponse:
        limits.check_texts([body.query], "query")
        limits.check_texts(body.texts, "texts")
        scores = await engine.rerank(body.query, body.texts)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:body.top_k]
        return JSONResponse({"model": engine.reranker_name or "", "hits": [
            {"corpus_id": i, "score": float(scores[i]), "text": body.texts[i]} for i in order]})

    @app.get("/health", response_model=HealthResponse, summary="Liveness and what is loaded")
    async def health() -> HealthResponse:
        return HealthResponse(status="ok", limits={
            "max_texts": limits.max_texts, "max_text_chars": limits.max_text_chars,
            "max_k": limits.max_k, "max_queue": limits.max_queue}, **engine.describe())

    @app.get("/metrics", summary="Prometheus metrics (text exposition format)",
             response_class=Response)
    async def metrics() -> Response:
        return Response(engine.metrics.render(), media_type=engine.metrics.content_type)


class _MetricsMiddleware:
    """Counts and times every request under its route template (unknown paths as 'other');
    plain ASGI, so it adds no task or copy per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        self.metrics.request_started()
        status = 500  # unless a response starts: the error handler answers and logs

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:  # the router has put the matched route into the scope
            endpoint = getattr(scope.get("route"), "path", "other")
            self.metrics.observe_request(endpoint, scope["method"], status,
                                         time.perf_counter() - started)


def _document_api_key(app: FastAPI) -> None:
    """Add the API key to the OpenAPI spec: a bearer token on every guarded endpoint."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
            for path, operations in spec["paths"].items():
                if path != "/health":
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
