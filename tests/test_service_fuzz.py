"""Schemathesis fuzzes every endpoint from the service's own OpenAPI spec: no input it makes
(valid or not) gets a 5xx, and every refusal is a JSON error with a message. Bounded: 30
examples per endpoint and method, small limits so that model calls stay short."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval import Encoder, Retriever
from service.limits import Limits
from tests.test_service_support import running_service, service_index


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder):  # type: ignore[no-untyped-def]
    retriever = Retriever.load(service_index(tmp_path_factory, encoder), model=encoder)
    with running_service(retriever, limits=Limits(max_texts=4, max_text_chars=64,
                                                  max_k=20)) as address:
        yield address


def test_no_input_makes_a_server_error(url: str) -> None:
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 6  # /encode /search /rerank /v1/embeddings /health /metrics

    for operation in operations:
        cases = st.one_of(operation.as_strategy(mode) for mode in schemathesis.GenerationMode)

        @given(case=cases)  # schema-valid inputs and schema-breaking ones
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, timeout=30)
            assert response.status_code < 500, (case.method, case.path, case.body,
                                                response.text)
            if response.status_code >= 400:
                assert response.json()["error"]["message"]

        call()
