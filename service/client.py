"""A Python client of ``adrecall serve``, in the spirit of bert-as-service's ``BertClient``.

    from adrecall import Client
    client = Client("http://127.0.0.1:8000")           # api_key=... or $ADRECALL_API_KEY
    client.encode(["cheap flights", "hotel in Paris"])  # np.ndarray float32 (2, 384)
    client.search("cheap way to get to Tokyo", k=5)     # [SearchHit(rank=1, ad_id=...), ...]
    client.rerank("running shoes", ["trail shoes", "car insurance"])  # [RerankHit(...), ...]

Results equal the in-process API (``Encoder.encode``, ``Retriever.search``, ``BertSim.rank``).
Every call has a timeout; a refused connection, a timeout, 429 and 503 are retried a bounded
number of times with growing pauses; then :class:`ServiceUnavailable`. A request the server
refuses raises :class:`RequestRejected` with its status and message (never retried). Needs
only httpx and numpy. Safe to share between threads.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, overload

import httpx
import numpy as np

from service.vectors import decode_vectors

API_KEY_ENV = "ADRECALL_API_KEY"
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_MAX_PAUSE_S = 5.0


class ServiceError(Exception):
    """The service could not answer a call; ``status`` is the HTTP status (``None`` when no
    response came)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class ServiceUnavailable(ServiceError):
    """No answer: the server is down, unreachable, timing out or overloaded, after retries."""


class RequestRejected(ServiceError):
    """The server refused the request (4xx): the message says what to change."""


@dataclass(frozen=True)
class SearchHit:
    """One ad a search found: the fields of ``retrieval.Hit``."""

    rank: int
    ad_id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None
    rerank_score: float | None = None
    lexical_score: float | None = None
    sources: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RerankHit:
    """One reranked text: its position in the request, its BertSim score (0–2), the text."""

    corpus_id: int
    score: float
    text: str


class Client:
    """Calls one adrecall service at ``url``.

    ``timeout``: seconds per attempt; ``retries``: further attempts after a failed one
    (connection refused or reset, timeout, 429, 502–504), pausing ``backoff`` × 2^attempt
    seconds (or the server's Retry-After), at most 5 s.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 30.0, retries: int = 2, backoff: float = 0.2) -> None:
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        self.url = url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def encode(self, texts: str | list[str], *, normalize: bool = True) -> np.ndarray:
        """Float32 ``(len(texts), dimension)`` vectors, as ``Encoder.encode`` (exact bytes:
        they travel as base64 float32)."""
        body = self._post("/encode", {"texts": [texts] if isinstance(texts, str) else texts,
                                      "normalize": normalize, "encoding_format": "base64"})
        return decode_vectors(body["embeddings"], body["dimension"])

    @overload
    def search(self, queries: str, k: int = 10, *, mode: str | None = None) -> list[SearchHit]: ...

    @overload
    def search(self, queries: list[str], k: int = 10, *,
               mode: str | None = None) -> list[list[SearchHit]]: ...

    def search(self, queries: str | list[str], k: int = 10, *,
               mode: str | None = None) -> list[SearchHit] | list[list[SearchHit]]:
        """Top-``k`` hits: a list for one query, a list of lists for a list of queries, as
        ``Retriever.search``. ``mode`` defaults to the server's."""
        payload: dict[str, Any] = {"queries": queries, "k": k}
        if mode is not None:
            payload["mode"] = mode
        results = [[SearchHit(**hit) for hit in r["hits"]]
                   for r in self._post("/search", payload)["results"]]
        return results[0] if isinstance(queries, str) else results

    def rerank(self, query: str, texts: list[str], *, top_k: int | None = None) -> list[RerankHit]:
        """``texts`` scored against ``query`` by the server's BertSim, best first (ties keep
        input order), as ``BertSim.rank``."""
        payload: dict[str, Any] = {"query": query, "texts": texts}
        if top_k is not None:
            payload["top_k"] = top_k
        return [RerankHit(**hit) for hit in self._post("/rerank", payload)["hits"]]

    def health(self) -> dict[str, Any]:
        """What the server has loaded and its settings (``GET /health``)."""
        return self._call("GET", "/health", None)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, payload)

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """One call with bounded retries; the JSON body, or a :class:`ServiceError`."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, json=payload)
            except httpx.TimeoutException as exc:
                problem = f"did not answer within {self._http.timeout.read} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"cannot be reached ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 400:
                    return response.json()
                message = _error_message(response)
                if response.status_code not in _RETRY_STATUSES:
                    error = RequestRejected if response.status_code < 500 else ServiceError
                    raise error(f"{method} {path}: {response.status_code}: {message}",
                                response.status_code)
                if last:
                    raise ServiceUnavailable(
                        f"{method} {path}: {response.status_code} after {attempt + 1} tries: "
                        f"{message}", response.status_code)
                time.sleep(self._pause(attempt, response.headers.get("retry-after")))
                continue
            if last:
                raise ServiceUnavailable(
                    f"the adrecall service at {self.url} {problem}, after {attempt + 1} tries; "
                    "is it running? (start it with `adrecall serve IDX`)")
            time.sleep(self._pause(attempt, None))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.replace(".", "", 1).isdigit():
            return min(float(retry_after), _MAX_PAUSE_S)
        return min(self.backoff * 2 ** attempt, _MAX_PAUSE_S)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300] or response.reason_phrase
