"""What the service tests share (no tests here): a small real index of the sample catalogue,
built once per test run, and a service over it running on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from retrieval import Encoder, Retriever

CATALOGUE = Path(__file__).resolve().parents[1] / "index_build" / "sample_catalogue" / "ads.csv"


def service_index(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """Every 20th ad of the sample catalogue (75 English, 75 Chinese) with its lexical side,
    embedded by the real default model; built on the first call of the run."""
    from index_build import build_index

    root = tmp_path_factory.getbasetemp() / "service-index"
    if not (root / "idx" / "manifest.json").is_file():
        root.mkdir(exist_ok=True)
        pd.read_csv(CATALOGUE).iloc[::20].to_csv(root / "ads.csv", index=False)
        build_index(root / "ads.csv", root / "idx", model=encoder, lexical=True, progress=False)
    return root / "idx"


@contextmanager
def running_service(retriever: Retriever, **options: object) -> Iterator[str]:
    """The service over ``retriever`` on a free loopback port: its URL. ``options`` go to
    :class:`service.engine.Engine` (``batching``, ``reranker_name``) or to
    :func:`service.app.create_app` (``limits``, ``api_key``)."""
    from service.app import create_app
    from service.engine import Engine
    from service.server import serve_in_thread

    app_keys = {"limits", "api_key"}
    engine = Engine(retriever, **{k: v for k, v in options.items() if k not in app_keys})
    app = create_app(engine, **{k: v for k, v in options.items() if k in app_keys})
    with serve_in_thread(app) as url:
        yield url
