"""``adrecall serve``: the retrieval service over an index, from the shell.

Takes the index and model options of ``adrecall search`` (the same parser code), plus where
to listen, the API key, micro-batching and request limits. ``--json`` prints one JSON line
(the URL and what is loaded) once the server answers, for scripts that start it.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from adrecall.cli_options import add_commands, add_output_switches, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    add_commands(subparsers, [(
        "serve", _add_options, _run, "serve an index over HTTP (encode, search, rerank)",
        ("Serve an index as an HTTP service: POST /encode, /search, /rerank and the "
         "OpenAI-style /v1/embeddings; GET /health and /metrics (Prometheus); API docs at "
         "/docs. Concurrent requests share model calls (micro-batching)."),
    )])


def _add_options(parser: argparse.ArgumentParser) -> None:
    from retrieval.commands import _add_model_options  # search's options, declared once
    from service.auth import API_KEY_ENV
    from service.batching import BatchSettings
    from service.limits import Limits

    batch, limits = BatchSettings(), Limits()
    parser.add_argument("index", help="index directory written by `adrecall build`")
    _add_model_options(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--api-key", default=None,
                        help=f"require this key on every request but /health (default: "
                        f"${API_KEY_ENV} if set, else no key)")
    parser.add_argument("--max-batch-size", type=int, default=batch.max_batch_size,
                        help="texts per shared model call (default %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=batch.max_wait_ms,
                        help="how long a request waits for others to share its call "
                        "(default %(default)s)")
    parser.add_argument("--no-batching", action="store_true",
                        help="one model call per request (the benchmark's baseline)")
    parser.add_argument("--max-texts", type=int, default=limits.max_texts,
                        help="texts or queries per request (default %(default)s)")
    parser.add_argument("--max-text-chars", type=int, default=limits.max_text_chars,
                        help="characters per text (default %(default)s)")
    parser.add_argument("--max-k", type=int, default=limits.max_k,
                        help="largest k a search may ask for (default %(default)s)")
    parser.add_argument("--max-queue", type=int, default=limits.max_queue,
                        help="requests waiting for the model before more get 429 "
                        "(default %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info)")
    add_output_switches(parser, progress=False)


def _run(args: argparse.Namespace) -> int:
    from retrieval.commands import _load_retriever
    from service.app import create_app
    from service.auth import resolve_api_key
    from service.batching import BatchSettings
    from service.engine import Engine
    from service.limits import Limits
    from service.server import bind, run, url_of

    limits = Limits(max_texts=args.max_texts, max_text_chars=args.max_text_chars,
                    max_k=args.max_k, max_queue=args.max_queue)
    batching = BatchSettings(args.max_batch_size, args.max_wait_ms, not args.no_batching)
    api_key = resolve_api_key(args.api_key)
    _warn_if_exposed(args.host, api_key)
    sock = bind(args.host, args.port)  # a taken port fails before the models load
    engine = Engine(_load_retriever(args), default_mode=args.mode, batching=batching,
                    max_queue=limits.max_queue, reranker_name=args.reranker)
    app = create_app(engine, limits=limits, api_key=api_key)
    url = url_of(sock)

    def announce() -> None:
        info = {"url": url, "docs": f"{url}/docs", **engine.describe(),
                "api_key": api_key is not None}
        if args.json:
            print_json(args, info, indent=None)
            getattr(args, "json_stdout", sys.stdout).flush()
        else:
            print(f"adrecall serve: {info['ads']:,} ads of {info['index']} at {url} "
                  f"(API docs {url}/docs); Ctrl-C stops", flush=True)

    run(app, sock, log_level=args.log_level, on_started=announce)
    return 0


def _warn_if_exposed(host: str, api_key: str | None) -> None:
    """Say so when the service listens beyond this machine, and louder without a key."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(f"adrecall serve: warning: listening on {host}, reachable from other machines"
              + ("" if api_key else "; anyone who can reach it can use it (set --api-key)"),
              file=sys.stderr)
