"""``adrecall serve`` from the shell: loopback by default, the address on one JSON line, and a
SIGTERM that lets the request in flight finish before the process exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from adrecall.cli import build_parser
from retrieval import Encoder
from tests.test_service_support import service_index


def test_serve_options_default_to_loopback_and_search_options() -> None:
    args = build_parser().parse_args(["serve", "idx/", "--reranker", "bertsim/"])
    assert (args.host, args.port, args.api_key, args.no_batching) == ("127.0.0.1", 8000, None,
                                                                      False)
    assert (args.mode, args.candidates, args.reranker) == ("dense", 100, "bertsim/")
    assert args.max_batch_size >= 1 and args.max_wait_ms >= 0


def test_sigterm_finishes_the_request_in_flight(tmp_path_factory: pytest.TempPathFactory,
                                                encoder: Encoder) -> None:
    index = service_index(tmp_path_factory, encoder)
    process = subprocess.Popen(
        [sys.executable, "-m", "adrecall", "serve", str(index), "--port", "0", "--json",
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "ADRECALL_API_KEY"})
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, process.stderr.read()  # type: ignore[union-attr]
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:") and info["ads"] == 150
        answer: dict[str, object] = {}
        long_texts = ["cheap flights to Tokyo and hotels " * 60] * 64  # a second or more of encoding

        def call() -> None:
            answer["response"] = httpx.post(info["url"] + "/encode", json={"texts": long_texts},
                                            timeout=120)
            answer["at"] = time.monotonic()

        request = threading.Thread(target=call)
        request.start()
        while 'adrecall_queue_depth{model="encode"} 1.0' not in httpx.get(
                info["url"] + "/metrics").text:  # until the server holds the request
            time.sleep(0.02)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        request.join(120)
        response = answer["response"]
        assert isinstance(response, httpx.Response) and response.status_code == 200
        assert len(response.json()["embeddings"]) == 64
        assert answer["at"] > signalled  # in flight at SIGTERM, answered in full
        # uvicorn, done, hands SIGTERM back to the default handler: the usual exit status
        assert process.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
