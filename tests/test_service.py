"""The service end to end on loopback: every endpoint through the client (and the official
openai client), results equal to the in-process API, micro-batching, metrics, client errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from adrecall import Client, RequestRejected, RerankHit, SearchHit, ServiceUnavailable
from retrieval import Encoder, Retriever
from service.batching import BatchSettings
from service.vectors import decode_vectors
from tests.test_service_support import running_service, service_index

QUERIES = ["cheap way to get to Tokyo", "my car makes a noise when I brake", "孩子学编程",
           "learn a language before my trip"]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Retriever:
    return Retriever.load(service_index(tmp_path_factory, encoder), model=encoder)


@pytest.fixture(scope="module")
def url(retriever: Retriever):  # type: ignore[no-untyped-def]
    with running_service(retriever, batching=BatchSettings(max_wait_ms=20)) as address:
        yield address


@pytest.fixture(scope="module")
def client(url: str):  # type: ignore[no-untyped-def]
    with Client(url, timeout=60) as c:
        yield c


def _as_hits(hits: list) -> list[SearchHit]:
    return [SearchHit(**h.to_dict()) for h in hits]


def test_encode_equals_encoder(client: Client, encoder: Encoder) -> None:
    texts = ["cheap flights to Tokyo", "特价机票", "a" * 3000]
    vectors = client.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_array_equal(vectors, encoder.encode(texts))  # alone in its call: exact
    np.testing.assert_array_equal(client.encode(texts, normalize=False),
                                  encoder.encode(texts, normalize=False))
    assert client.encode("one text").shape == (1, 384)


def test_search_equals_retriever(client: Client, retriever: Retriever) -> None:
    assert client.search(QUERIES[0], k=5) == _as_hits(retriever.search(QUERIES[0], k=5))
    for mode in ("dense", "lexical", "hybrid"):
        got = client.search(QUERIES, k=7, mode=mode)
        want = retriever.search(QUERIES, k=7, mode=mode)
        assert got == [_as_hits(hits) for hits in want], mode
    assert got[0][0].metadata["industry"] and isinstance(got[0][0], SearchHit)


def test_concurrent_requests_share_model_calls(client: Client, url: str, encoder: Encoder,
                                               retriever: Retriever) -> None:
    texts = [f"ad number {i}: cheap flights and hotels" for i in range(16)]
    encoded: dict[int, np.ndarray] = {}
    searched: dict[int, list[SearchHit]] = {}

    def call(i: int) -> None:
        encoded[i] = client.encode([texts[i]])[0]
        searched[i] = client.search(QUERIES[i % 4], k=3)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.stack([encoded[i] for i in range(16)]), encoder.encode(texts),
                               atol=1e-5)  # padding to another text's length moves the last bits
    for i in range(16):
        want = _as_hits(retriever.search(QUERIES[i % 4], k=3))
        assert [h.ad_id for h in searched[i]] == [h.ad_id for h in want]
        np.testing.assert_allclose([h.score for h in searched[i]], [h.score for h in want],
                                   atol=1e-5)
    metrics = Client(url)._http.get("/metrics").text
    shared = _histogram_sum(metrics, "adrecall_batch_requests", "encode")
    calls = _histogram_count(metrics, "adrecall_batch_requests", "encode")
    assert shared > calls, "16 concurrent encode requests never shared a model call"


def test_openai_client_gets_encoder_embeddings(url: str, encoder: Encoder) -> None:
    openai = pytest.importorskip("openai")
    api = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    texts = ["cheap flights to Tokyo", "family dentist near me"]
    response = api.embeddings.create(model="default", input=texts, encoding_format="float")
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    np.testing.assert_array_equal(got, encoder.encode(texts))
    assert [d.index for d in response.data] == [0, 1] and response.usage.prompt_tokens > 4
    raw = api.embeddings.create(model="default", input=texts, encoding_format="base64")
    np.testing.assert_array_equal(decode_vectors([d.embedding for d in raw.data], 384),
                                  encoder.encode(texts))  # asked for, the client passes it on
    default = api.embeddings.create(model="default", input="one text")  # base64, decoded
    np.testing.assert_array_equal(np.float32(default.data[0].embedding),
                                  encoder.encode("one text")[0])
    with pytest.raises(openai.NotFoundError, match="is not served here"):
        api.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.UnprocessableEntityError, match="token ids"):
        api.embeddings.create(model="default", input=[[1, 2, 3]])


def test_health_metrics_and_docs(client: Client, url: str) -> None:
    health = client.health()
    assert health["status"] == "ok" and health["ads"] == 150 and health["dimension"] == 384
    assert health["modes"] == ["dense", "lexical", "hybrid"] and health["batching"]["enabled"]
    http = Client(url)._http
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'adrecall_requests_total{endpoint="/health",method="GET",status="200"}' in metrics.text
    assert "adrecall_model_call_duration_seconds_bucket" in metrics.text
    spec = http.get("/openapi.json").json()
    assert {"/encode", "/search", "/rerank", "/v1/embeddings", "/health", "/metrics"} <= set(
        spec["paths"])
    assert http.get("/docs").status_code == 200


def test_rerank_equals_bertsim(retriever: Retriever, tiny_model_dir: Path,
                               tmp_path: Path) -> None:
    from rerank import BertSim

    BertSim.from_encoder(tiny_model_dir, max_length=16).save(tmp_path / "bertsim")
    bertsim = BertSim.load(tmp_path / "bertsim")
    reranked = Retriever(retriever.index, retriever.ads, retriever.manifest, retriever.encoder,
                         reranker=bertsim, candidates=10, lexical=retriever.lexical)
    texts = ["red shoes sale", "cheap car insurance", "blue phone", "fast pizza"]
    with running_service(reranked, reranker_name="bertsim") as address, Client(address) as c:
        got = c.rerank("cheap shoes", texts)
        want = [RerankHit(**r) for r in bertsim.rank("cheap shoes", texts)]
        assert [h.corpus_id for h in got] == [h.corpus_id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-6)
        assert len(c.rerank("cheap shoes", texts, top_k=2)) == 2
        hits = c.search(QUERIES[0], k=12)  # /search reranks the top 10, as in-process
        assert hits == _as_hits(reranked.search(QUERIES[0], k=12))
        assert hits[0].rerank_score is not None and hits[11].rerank_score is None
        assert c.health()["reranker"] == "bertsim"


def test_rerank_without_reranker_is_refused(client: Client) -> None:
    with pytest.raises(RequestRejected, match="--reranker") as error:
        client.rerank("q", ["a"])
    assert error.value.status == 404


def test_client_names_a_refusal(client: Client) -> None:
    with pytest.raises(RequestRejected, match="k: Input should be greater than or equal to 1"):
        client.search("q", k=0)
    with pytest.raises(RequestRejected, match="row 1 is empty"):
        client.encode(["fine", "   "])


def test_client_says_when_the_server_is_down() -> None:
    from service.server import bind, url_of

    sock = bind(port=0)
    address = url_of(sock)
    sock.close()  # nothing listens there now
    with pytest.raises(ServiceUnavailable, match="after 3 tries; is it running"):
        Client(address, retries=2, backoff=0.01, timeout=2).encode(["x"])


def _histogram_sum(metrics: str, name: str, model: str) -> float:
    return _sample(metrics, f'{name}_sum{{model="{model}"}}')


def _histogram_count(metrics: str, name: str, model: str) -> float:
    return _sample(metrics, f'{name}_count{{model="{model}"}}')


def _sample(metrics: str, prefix: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith(prefix + " "))
