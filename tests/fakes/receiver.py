"""A webhook receiver: a real HTTP server on 127.0.0.1 that records what is POSTed to it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` then point the webhook at ``hook.url``."""

    def __init__(
        self,
        status: int = 200,
        *,
        script: list[int] | None = None,
        status_for: dict[str, int] | None = None,
    ) -> None:
        self.status = status
        self.script = list(script or [])  # statuses for the first requests, then ``status``
        self.status_for = dict(status_for or {})  # a fixed status for these paths
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, headers, body))
                    if self.path in receiver.status_for:
                        status = receiver.status_for[self.path]
                    elif receiver.script:
                        status = receiver.script.pop(0)
                    else:
                        status = receiver.status
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def events(self) -> list[str]:
        with self._lock:
            return [d.json()["event"] for d in self.deliveries]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
