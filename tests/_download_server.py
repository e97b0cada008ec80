"""A tiny, scriptable HTTP server on 127.0.0.1 (port 0) for the download tests.

Routes map a URL path (or "path?query", matched first, exactly) to a :class:`Route` (static bytes with optional Range
support, scripted failures) or to a callable ``f(query: dict) -> (status, body,
headers)``. Every request is recorded in ``server.log`` as
``(path, query, range_header)``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Route:
    body: bytes = b""
    ranges: bool = True  # honour "Range: bytes=N-" with 206
    statuses: list[int] = field(default_factory=list)  # statuses to answer first (e.g. [500, 500])
    cut_after: int | None = None  # close the connection after this many body bytes ...
    cut_times: int = 0  # ... for the first cut_times answers that send a body
    content_type: str = "application/octet-stream"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        rng = self.headers.get("Range")
        with srv.lock:
            srv.log.append((parts.path, query, rng))
        route = srv.routes.get(f"{parts.path}?{parts.query}") if parts.query else None
        if route is None:
            route = srv.routes.get(parts.path)
        if route is None:
            return self._send(404, b"not found", {})
        if callable(route):
            status, body, headers = route(query)
            return self._send(status, body, headers)
        with srv.lock:
            status = route.statuses.pop(0) if route.statuses else 200
        if status != 200:
            return self._send(status, b"error", {})
        body, code, headers = route.body, 200, {"Content-Type": route.content_type}
        if route.ranges:
            headers["Accept-Ranges"] = "bytes"
        if rng and route.ranges and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            body, code = body[start:], 206
        with srv.lock:
            cut = route.cut_after is not None and route.cut_times > 0
            if cut:
                route.cut_times -= 1
        if cut:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: route.cut_after])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(code, body, headers)

    def _send(self, status, body: bytes, headers: dict):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # client hang-ups are expected
        pass


class FakeServer:
    def __init__(self, routes: dict[str, Route | Callable] | None = None):
        self.routes = dict(routes or {})
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = self.routes
        self.httpd.log = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def log(self) -> list:
        return self.httpd.log

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.log if p == path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/file.zip"


def lock_is_free(path) -> bool:
    """Whether another process could take the destination lock ``path`` now (a finished,
    interrupted or crashed run must not leave it held)."""
    from filelock import FileLock, Timeout

    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return False
    lock.release()
    return True
