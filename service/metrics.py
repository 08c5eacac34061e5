"""Prometheus metrics of one service instance (``GET /metrics``, text exposition format).

Requests by endpoint and status, their latency, and per model call: items and requests it
served and its duration; the queue depth of each batcher. The registry belongs to the app, so
two apps in one process (tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The service's counters, histograms and gauges in their own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("adrecall_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("adrecall_request_duration_seconds",
                                 "HTTP request latency by endpoint", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_items = Histogram("adrecall_batch_items", "items (texts, queries, pairs) "
                                     "per model call", ["model"], buckets=_SIZE_BUCKETS,
                                     registry=self.registry)
        self.batch_requests = Histogram("adrecall_batch_requests", "requests served by one "
                                        "model call", ["model"], buckets=_SIZE_BUCKETS,
                                        registry=self.registry)
        self.model_seconds = Histogram("adrecall_model_call_duration_seconds",
                                       "duration of one model call", ["model"],
                                       buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("adrecall_requests_in_flight", "HTTP requests being handled",
                               registry=self.registry)
        self.active = 0
        """Requests being handled now (the gauge's value, readable without a lock: one event
        loop changes it)."""
        self.queue_depth = Gauge("adrecall_queue_depth", "requests waiting for a model call",
                                 ["model"], registry=self.registry)

    def observe_batch(self, model: str, items: int, requests: int, seconds: float) -> None:
        """Record one model call."""
        self.batch_items.labels(model).observe(items)
        self.batch_requests.labels(model).observe(requests)
        self.model_seconds.labels(model).observe(seconds)

    def request_started(self) -> None:
        """One more request in flight."""
        self.active += 1
        self.in_flight.set(self.active)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request (``endpoint`` is the route template, never the raw
        path)."""
        self.active -= 1
        self.in_flight.set(self.active)
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
