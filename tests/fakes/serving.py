"""What every fake server shares: a real HTTP server on 127.0.0.1 in a daemon thread that
records its own crashes, and a ``stop`` that returns promptly even while requests hang."""

from __future__ import annotations

import contextlib
import socket
import threading
import traceback
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

Entry = TypeVar("Entry")


class FakeHTTPServer(ThreadingHTTPServer):
    """The HTTP server; handler threads are daemons and are joined on close."""

    daemon_threads = True

    def __init__(self, owner: ServedFake, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record a handler crash in ``owner.errors`` (a bug in the fake, not in the client)."""
        self.owner.errors.append(traceback.format_exc())
        super().handle_error(request, client_address)


class TrackedHandler(BaseHTTPRequestHandler):
    """A handler whose connections the fake tracks, so ``stop`` can cut them."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # a forgotten idle keep-alive connection cannot block shutdown forever

    @property
    def fake(self) -> ServedFake:
        server = self.server
        assert isinstance(server, FakeHTTPServer)
        return server.owner

    def setup(self) -> None:
        super().setup()
        self.fake._register(self.connection)

    def finish(self) -> None:
        self.fake._unregister(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class ServedFake:
    """Start, stop and context management for a fake served by ``handler_class``."""

    handler_class: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``; only once started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping.clear()
        self._server = FakeHTTPServer(self, self.handler_class)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections (ending any hang) and close every socket."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads, which now end quickly
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- used by the handler threads ------------------------------------------------------

    def _register(self, connection: socket.socket) -> None:
        with self._lock:
            if self._stopping.is_set():
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            else:
                self._connections.add(connection)

    def _unregister(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


class ScriptedFake(ServedFake, Generic[Entry]):
    """A fake that answers from a script: each request the fake counts takes the next entry;
    once the script is used up the last one repeats if ``repeat_last``, else the fake's
    :meth:`default_reply`. The script is read and changed under the fake's lock."""

    def __init__(self, script: Sequence[Entry] = (), *, repeat_last: bool = False) -> None:
        super().__init__()
        self._script: list[Entry] = list(script)
        self._repeat_last = repeat_last
        self._position = 0

    def set_script(self, script: Sequence[Entry], *, repeat_last: bool = False) -> None:
        """Replace the script; the next scripted request gets its first entry."""
        with self._lock:
            self._script = list(script)
            self._repeat_last = repeat_last
            self._position = 0

    def default_reply(self) -> Entry:
        """What a request gets once the script is used up (and does not repeat)."""
        raise NotImplementedError

    def _next_reply(self) -> Entry:
        with self._lock:
            return self._next_reply_locked()

    def _next_reply_locked(self) -> Entry:
        """The next entry; the caller holds the lock."""
        if self._position < len(self._script):
            reply = self._script[self._position]
            self._position += 1
            return reply
        if self._repeat_last and self._script:
            return self._script[-1]
        return self.default_reply()
