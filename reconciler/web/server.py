"""The daemon's read-only HTTP listener: ``/`` (status page), ``/api/status``, ``/metrics``.

The standard library's ``ThreadingHTTPServer`` in a daemon thread: three GET
routes over a read model that is already in memory need no framework, and no
dependency is one less thing for a FreeBSD package to carry. Each request
gets its own thread, so a slow client never holds up a scrape. Nothing here
writes: every other method is answered 405.

Pages are built from :class:`~reconciler.readmodel.StatusView` only; a
request costs a ``git rev-parse`` of the local ledger at most, never SSH.
Responses carry a Content-Security-Policy without scripts, so even a
template bug could not run what a ledger commit smuggled in.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from reconciler.errors import SettingsError
from reconciler.logsink import Log, PlainLog
from reconciler.observe_settings import parse_listen
from reconciler.readmodel.views import StatusView, to_json
from reconciler.web.render import render_page

#: Seconds between the page's own reloads.
REFRESH = 10
_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "reconciler"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"read-only\n", allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _answer(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        app = self.server.app
        try:
            if path in ("/", "/index.html"):
                body = render_page(app.view(), refresh=app.refresh).encode()
                kind = "text/html; charset=utf-8"
            elif path == "/api/status":
                body = (json.dumps(to_json(app.view()), indent=2) + "\n").encode()
                kind = "application/json"
            elif path == "/metrics" and app.metrics is not None:
                kind, body = app.metrics()
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n", head=head)
                return
        except Exception as exc:  # a bug must not kill the listener; the log says what
            app.log.error("status.error", f"{path}: {exc!r}", exc=True)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"internal error\n")
            return
        self._send(HTTPStatus.OK, kind, body, head=head)

    def _send(
        self, status: HTTPStatus, kind: str, body: bytes, *, head: bool = False, **extra: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**_SECURITY, **{k.title(): v for k, v in extra.items()}}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.app.log.debug("status.request", format % args, client=self.client_address[0])


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client never delays the daemon's exit
    app: StatusApp


class _Server6(_Server):
    address_family = socket.AF_INET6


class StatusApp:
    """What the listener serves: the view, and the metrics exposition when enabled."""

    def __init__(
        self,
        view: Callable[[], StatusView],
        *,
        metrics: Callable[[], tuple[str, bytes]] | None = None,
        log: Log | None = None,
        refresh: int = REFRESH,
    ) -> None:
        self.view = view
        self.metrics = metrics
        self.log: Log = log or PlainLog()
        self.refresh = refresh


class StatusServer:
    """``with StatusServer(listen, app) as server:`` serves in a daemon thread until it ends."""

    def __init__(self, listen: str, app: StatusApp) -> None:
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            raise SettingsError(f"status_listen {listen!r}: {exc}") from None
        self._wanted = (host, port)
        self.app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> StatusServer:
        host, port = self._wanted
        server_class = _Server6 if ":" in host else _Server
        try:
            server = server_class((host, port), _Handler)
        except OSError as exc:
            raise SettingsError(
                f"status_listen {host}:{port}: cannot listen: {exc.strerror or exc}"
            ) from exc
        server.app = self.app
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="status-http",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
