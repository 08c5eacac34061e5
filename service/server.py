"""Running the app under uvicorn: a socket bound before the server starts (so port 0 picks a
free port and the address is known at once), loopback unless told otherwise, and a graceful
shutdown: on SIGINT/SIGTERM uvicorn stops accepting, lets the requests in flight finish,
then the app's lifespan closes the model thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

LOOPBACK = "127.0.0.1"


def bind(host: str = LOOPBACK, port: int = 8000) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
                         "--port, or --port 0 for a free one") from exc
    sock.listen(2048)
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``http://host:port`` a bound socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(app: FastAPI, sock: socket.socket, *, log_level: str = "info",
        on_started: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM, finishing the
    requests in flight before returning."""
    server = _server(app, log_level)
    if on_started is not None:
        _call_when_started(server, on_started)
    server.run(sockets=[sock])


@contextmanager
def serve_in_thread(app: FastAPI, host: str = LOOPBACK, port: int = 0,
                    log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` from a background thread (tests, notebooks); yields its URL once it
    answers, and shuts it down gracefully on exit."""
    sock = bind(host, port)
    server = _server(app, log_level)
    started = threading.Event()
    _call_when_started(server, started.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="adrecall-service")
    thread.start()
    if not started.wait(60):
        server.should_exit = True
        raise RuntimeError("the service did not start within 60 s")
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def _server(app: FastAPI, log_level: str) -> uvicorn.Server:
    # no access log: one line per request would cost more than a small search
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False,
                                         timeout_graceful_shutdown=None))


def _call_when_started(server: uvicorn.Server, callback: Callable[[], None]) -> None:
    """Call ``callback`` once ``server`` has finished starting (lifespan done, socket served)."""
    startup = server.startup

    async def startup_then_callback(*args: object, **kwargs: object) -> None:
        await startup(*args, **kwargs)  # type: ignore[arg-type]
        if server.started:
            callback()

    server.startup = startup_then_callback  # type: ignore[method-assign]
