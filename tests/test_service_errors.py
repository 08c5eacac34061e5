"""Bad requests get a 4xx whose JSON names the problem (never a 500 or a hang), and the API
key guards every endpoint but /health, on a service with small limits."""

from __future__ import annotations

import httpx
import pytest

from adrecall import Client, RequestRejected
from retrieval import Encoder, Retriever
from service.auth import resolve_api_key
from service.limits import Limits
from tests.test_service_support import running_service, service_index

KEY = "s3cret-kéy"  # not ASCII: compared as bytes
LIMITS = Limits(max_texts=8, max_text_chars=200, max_k=50)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder):  # type: ignore[no-untyped-def]
    retriever = Retriever.load(service_index(tmp_path_factory, encoder), model=encoder)
    with running_service(retriever, limits=LIMITS, api_key=KEY) as address:
        yield address


@pytest.fixture(scope="module")
def http(url: str):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {KEY}".encode()}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as c:  # type: ignore[arg-type]
        yield c


BAD_REQUESTS = [  # path, body (str: sent as is), status, words the message must hold
    ("/encode", '{"texts": ["a"', 400, "not valid JSON"),
    ("/encode", "[1, 2]", 422, "must be a JSON object"),
    ("/encode", "", 422, "must be a JSON object"),
    ("/encode", {"texts": []}, 422, "texts: List should have at least 1 item"),
    ("/encode", {"texts": "one"}, 422, "texts: Input should be a valid list"),
    ("/encode", {"texts": [1, 2]}, 422, "texts.0: Input should be a valid string"),
    ("/encode", {"texts": ["a", None]}, 422, "texts.1"),
    ("/encode", {"texts": ["ok", " "]}, 422, "row 1 is empty"),
    ("/encode", {"texts": ["a"] * 9}, 413, "9 texts; at most 8"),
    ("/encode", {"texts": ["a" * 201]}, 413, "201 characters long; at most 200"),
    ("/encode", {"texts": ["a"], "normalize": "yes"}, 422, "normalize"),
    ("/encode", {"texts": ["a"], "colour": 1}, 422, "colour: Extra inputs are not permitted"),
    ("/search", {"queries": ["a"], "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ("/search", {"queries": ["a"], "k": -3}, 422, "greater than or equal to 1"),
    ("/search", {"queries": ["a"], "k": 2.5}, 422, "k: Input should be a valid integer"),
    ("/search", {"queries": ["a"], "k": True}, 422, "k: Input should be a valid integer"),
    ("/search", {"queries": ["a"], "k": 51}, 422, "k is 51; at most 50"),
    ("/search", {"queries": []}, 422, "at least 1 item"),
    ("/search", {"queries": "a", "mode": "fuzzy"}, 422, "mode: Input should be 'dense'"),
    ("/search", {"k": 3}, 422, "queries: Field required"),
    ("/search", {"queries": ["x"] * 9}, 413, "9 texts; at most 8"),
    ("/rerank", {"query": "a", "texts": []}, 422, "at least 1 item"),
    ("/rerank", {"query": "a", "texts": ["b"]}, 404, "no reranker"),
    ("/v1/embeddings", {"input": "a"}, 422, "model: Field required"),
    ("/v1/embeddings", {"input": [], "model": "default"}, 422, "input is an empty list"),
    ("/v1/embeddings", {"input": [[1, 2]], "model": "default"}, 422, "token ids"),
    ("/v1/embeddings", {"input": "a", "model": "ada"}, 404, "'ada' is not served here"),
    ("/v1/embeddings", {"input": "a", "model": "default", "dimensions": 8}, 422, "dimensions"),
    ("/nowhere", {}, 404, "no endpoint POST /nowhere"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD_REQUESTS)
def test_bad_request_gets_a_4xx_naming_the_problem(http: httpx.Client, path: str,
                                                   body: object, status: int, words: str) -> None:
    if isinstance(body, str):
        response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = http.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["code"] == status


def test_a_body_that_is_not_json_or_too_big(http: httpx.Client) -> None:
    form = http.post("/encode", content="texts=a",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "Content-Type: application/json" in form.text
    big = http.post("/encode", content=b"x" * (LIMITS.max_body_bytes + 1),
                    headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and "reads at most" in big.json()["error"]["message"]
    assert http.get("/encode").status_code == 405


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"X-API-Key": "s3cret-k"}, {"Authorization": "Basic xyz"}])
def test_missing_or_wrong_api_key_gets_401(url: str, headers: dict[str, str]) -> None:
    for method, path in [("POST", "/encode"), ("POST", "/search"), ("GET", "/metrics"),
                         ("POST", "/v1/embeddings")]:
        response = httpx.request(method, url + path, json={"texts": ["a"]}, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert "API key" in response.json()["error"]["message"]
    assert httpx.get(url + "/health").status_code == 200  # probes need no key


def test_the_right_key_in_either_header(url: str) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        raw = {k: v.encode() for k, v in headers.items()}
        assert httpx.post(url + "/encode", json={"texts": ["a"]},
                          headers=raw).status_code == 200  # type: ignore[arg-type]
    with pytest.raises(RequestRejected, match="wrong API key"):
        Client(url, api_key="nope").search("a")


def test_openai_client_needs_the_key(url: str) -> None:
    openai = pytest.importorskip("openai")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).embeddings.create(
            model="default", input="x")


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADRECALL_API_KEY", "from-env")
    assert resolve_api_key(None) == "from-env" and resolve_api_key("given") == "given"
    with pytest.raises(ValueError, match="the API key is empty"):
        resolve_api_key("  ")
    monkeypatch.delenv("ADRECALL_API_KEY")
    assert resolve_api_key(None) is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_k must be a positive integer, got 0"):
        Limits(max_k=0)
