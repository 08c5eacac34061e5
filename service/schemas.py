"""Request and response bodies of the service's endpoints (they make the OpenAPI spec).

Types are strict: a number where a text belongs, a float or a boolean where ``k`` belongs, is
refused rather than coerced. Limits that the server's options set (texts per request, text
length, largest ``k``) are checked in :mod:`service.limits`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Texts = Annotated[list[StrictStr], Field(min_length=1)]
EncodingFormat = Literal["float", "base64"]
Mode = Literal["dense", "lexical", "hybrid"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncodeRequest(_Body):
    texts: Texts = Field(description="texts to embed, one vector each", examples=[["cheap flights"]])
    normalize: StrictBool = Field(True, description="L2-normalise the vectors (as Encoder.encode)")
    encoding_format: EncodingFormat = Field(
        "float", description="'float': lists of numbers; 'base64': each vector's little-endian "
        "float32 bytes, base64-encoded (exact and 4x smaller)")


class EncodeResponse(BaseModel):
    model: str
    dimension: int
    embeddings: list[list[float]] | list[str]


class SearchRequest(_Body):
    queries: StrictStr | Texts = Field(description="one query, or a list of queries",
                                       examples=["cheap way to get to Tokyo"])
    k: StrictInt = Field(10, ge=1, description="hits per query")
    mode: Mode | None = Field(None, description="first stage; default: the server's --mode")


class HitBody(BaseModel):
    rank: int
    ad_id: str
    score: float
    dense_score: float | None
    lexical_score: float | None
    rerank_score: float | None
    sources: dict[str, int]
    text: str
    metadata: dict[str, Any]


class QueryHits(BaseModel):
    query: str
    hits: list[HitBody]


class SearchResponse(BaseModel):
    results: list[QueryHits]


class RerankRequest(_Body):
    query: StrictStr = Field(examples=["running shoes"])
    texts: Texts = Field(description="candidate texts to score against the query",
                         examples=[["trail shoes sale", "car insurance"]])
    top_k: StrictInt | None = Field(None, ge=1, description="keep the best top_k (default all)")


class RerankHitBody(BaseModel):
    corpus_id: int = Field(description="position of the text in the request's texts")
    score: float = Field(description="BertSim relevance, 0 (unrelated) to 2 (highly relevant)")
    text: str


class RerankResponse(BaseModel):
    model: str
    hits: list[RerankHitBody]


class EmbeddingsRequest(_Body):
    """The OpenAI embeddings request; token-id input is not supported (send strings)."""

    model_config = ConfigDict(extra="ignore")  # OpenAI clients may send fields of later APIs
    input: StrictStr | Texts | list[StrictInt] | list[list[StrictInt]]
    model: StrictStr
    encoding_format: EncodingFormat = "float"
    dimensions: StrictInt | None = Field(None, ge=1)
    user: StrictStr | None = None


class EmbeddingBody(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingBody]
    model: str
    usage: Usage


class HealthResponse(BaseModel):
    status: Literal["ok"]
    index: str | None
    ads: int
    model: str
    dimension: int
    reranker: str | None
    modes: list[str]
    batching: dict[str, Any]
    limits: dict[str, int]
