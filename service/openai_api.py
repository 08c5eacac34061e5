"""``POST /v1/embeddings`` in the OpenAI request and response shape, so OpenAI-style clients
(the official ``openai`` package: ``client.embeddings.create(model=..., input=[...])``) get the
service's embeddings. ``model`` must name the served model (``/health`` shows it; ``default``
for the embedded MiniLM); token-id input and other ``dimensions`` are refused with a message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.engine import Engine
from service.errors import Rejected
from service.limits import Limits
from service.schemas import EmbeddingsRequest, EmbeddingsResponse
from service.vectors import encode_vectors

router = APIRouter()


@router.post("/v1/embeddings", response_model=EmbeddingsResponse,
             summary="OpenAI-compatible embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    limits: Limits = request.app.state.limits
    texts = _texts(body.input)
    if body.model != engine.encoder.label:
        raise Rejected(404, f"model {body.model!r} is not served here; this server serves "
                       f"{engine.encoder.label!r}", "model")
    if body.dimensions is not None and body.dimensions != engine.encoder.dimension:
        raise Rejected(422, f"dimensions is {body.dimensions}, but model {body.model!r} makes "
                       f"{engine.encoder.dimension}-dimensional vectors only; leave it out",
                       "dimensions")
    limits.check_texts(texts, "input")
    vectors = await engine.encode(texts)
    tokens = engine.tokens(texts)
    return JSONResponse({  # the shape of EmbeddingsResponse, built without validating it again
        "object": "list", "model": engine.encoder.label,
        "data": [{"object": "embedding", "index": i, "embedding": e}
                 for i, e in enumerate(encode_vectors(vectors, body.encoding_format))],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _texts(value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    """The input as a list of texts; token ids and an empty list are refused."""
    if isinstance(value, str):
        return [value]
    if not value:
        raise Rejected(422, "input is an empty list; give at least one text", "input")
    if not all(isinstance(v, str) for v in value):
        raise Rejected(422, "input holds token ids; this server embeds text only: send the "
                       "texts as strings", "input")
    return list(value)  # type: ignore[arg-type]
