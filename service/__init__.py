"""The adrecall retrieval service (``adrecall serve``) and its client.

An ASGI app (FastAPI + uvicorn) in front of one loaded index: ``/encode``, ``/search``,
``/rerank``, the OpenAI-shaped ``/v1/embeddings``, ``/health`` and Prometheus ``/metrics``.
Concurrent requests are micro-batched into one model call (:mod:`service.batching`).

    from adrecall import Client          # or: from service.client import Client
    client = Client("http://127.0.0.1:8000")
    client.encode(["cheap flights"])     # np.ndarray (1, 384), as Encoder.encode

Only :mod:`service.client` is needed on the client side (httpx and numpy); the server modules
import FastAPI and the models.
"""

import adrecall  # noqa: F401  (first: idle OpenMP threads sleep; adrecall.idle_threads)
