"""The serving side of the outer proxy of ``network = "model-only"`` (docs/agents.md §15): what
the child of :func:`claudomator.isolation._netproxy.main`'s fork runs, off the agent's start-up
path (the parent execs bwrap as soon as it has forked; these imports come after).

Per connection it reads one request head: ``CONNECT host:port`` opens a tunnel, an
absolute-URI ``http://`` request is forwarded (``Connection: close``); anything else, or a host
not allowed (:class:`~claudomator.isolation._network.AllowList`), gets ``403`` and one line on
stderr (the execution's ``stderr.log``) naming the host, counted in the summary line it
writes at the end. Standard library only, no logger (it reports on stderr).
"""

from __future__ import annotations

import _socket
import contextlib
import os
import select
import signal
import socket
import threading

from claudomator.isolation._network import AllowList, Decision

TYPE_CHECKING = False  # not typing's: its import (and re's) would slow the proxy down
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

HEAD_LIMIT = 64 * 1024
CONNECT_SECONDS = 10.0
_CHUNK = 64 * 1024
_HOP = (b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive")


class Proxy:
    """The listening socket and its connections (one thread per direction of each)."""

    def __init__(self, listener: socket.socket, allowed: AllowList) -> None:
        self.listener = listener
        self.allowed = allowed
        self.refused = 0
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        """One line on stderr (the execution's stderr.log); a control character the agent
        put in a host name is a ``?``, so it never makes a line of its own."""
        clean = "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in text)
        with self._lock, contextlib.suppress(OSError):
            os.write(2, f"claudomator network: {clean}\n".encode("utf-8", "replace"))

    def serve(self) -> None:
        """Accept until the listener is closed."""
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client: socket.socket) -> None:
        with client:
            try:
                head, rest = read_head(client)
            except (OSError, ValueError):
                return
            line, _, headers = head.partition(b"\r\n")
            words = line.decode("latin-1").split()
            if len(words) != 3:
                self.refuse(client, Decision(False, line.decode("latin-1")[:200], 0, "bad request"))
                return
            method, target, _version = words
            if method.upper() == "CONNECT":
                decision = self.allowed.connect(target)
                if decision.allowed:
                    self.tunnel(client, decision, rest)
                    return
            else:
                decision = self.allowed.forward(target)
                if decision.allowed:
                    self.forward(client, decision, method, target, headers, rest)
                    return
            self.refuse(client, decision, method.upper())

    def refuse(self, client: socket.socket, decision: Decision, method: str = "") -> None:
        with self._lock:
            self.refused += 1
        what = decision.address if decision.port else decision.host
        self.say(f"refused {method or 'request'} {what}: {decision.reason} (model-only)")
        body = f"claudomator: {what} is not an allowed endpoint (network = model-only)\n"
        reply = (
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        with contextlib.suppress(OSError):
            client.sendall(reply.encode())

    def upstream(self, client: socket.socket, decision: Decision) -> socket.socket | None:
        try:
            return socket.create_connection((decision.host, decision.port), CONNECT_SECONDS)
        except OSError as exc:
            self.say(f"cannot reach {decision.address}: {exc}")
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return None

    def tunnel(self, client: socket.socket, decision: Decision, rest: bytes) -> None:
        server = self.upstream(client, decision)
        if server is None:
            return
        with server:
            server.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                server.sendall(rest)
            relay(client, server)

    def forward(
        self,
        client: socket.socket,
        decision: Decision,
        method: str,
        target: str,
        headers: bytes,
        rest: bytes,
    ) -> None:
        server = self.upstream(client, decision)
        if server is None:
            return
        path = "/" + target.split("://", 1)[1].partition("/")[2]
        kept = [h for h in headers.split(b"\r\n") if h and h.split(b":")[0].lower() not in _HOP]
        head = b"\r\n".join(
            [f"{method} {path} HTTP/1.1".encode("latin-1"), *kept, b"Connection: close"]
        )
        with server:
            server.settimeout(None)
            server.sendall(head + b"\r\n\r\n" + rest)
            relay(client, server)


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """A request head (up to the blank line) and what came after it; ``ValueError`` when there
    is none within :data:`HEAD_LIMIT`."""
    conn.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(_CHUNK)
        if not chunk or len(data) > HEAD_LIMIT:
            raise ValueError("no request head")
        data += chunk
    conn.settimeout(None)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(_CHUNK):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done."""
    back = threading.Thread(target=_pump, args=(b, a), daemon=True)
    back.start()
    _pump(a, b)
    back.join()


def _remove(socket_dir: str, socket_name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(socket_dir, socket_name))
    with contextlib.suppress(OSError):
        os.rmdir(socket_dir)


def serve_until(
    watch: int, raw: _socket.socket, allowed: Sequence[str], socket_dir: str, socket_name: str
) -> NoReturn:
    """The proxy side of :func:`claudomator.isolation._netproxy.main`'s fork: relay through the
    listening socket ``raw`` what ``allowed`` lets through until ``watch`` (a pidfd of the
    process that became the command) says it exited, or a SIGTERM comes; then say how many
    connections were refused and remove the socket."""
    listener = socket.socket(fileno=raw.detach())
    os.setsid()  # out of the agent's process group: a kill of the group ends the command only
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY)):  # never hold the agent's stdout open
        null = os.open(os.devnull, mode)
        os.dup2(null, fd)
        os.close(null)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proxy = Proxy(listener, AllowList.from_urls(allowed))
    except ValueError as exc:  # the launcher checked them: fail closed all the same
        os.write(2, f"claudomator network: cannot start the proxy: {exc}\n".encode())
        _remove(socket_dir, socket_name)
        os._exit(1)
    threading.Thread(target=proxy.serve, daemon=True).start()
    while not stop.is_set():
        if select.select([watch], [], [], 0.5)[0]:
            break
    with contextlib.suppress(OSError):
        proxy.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
    with contextlib.suppress(OSError):
        proxy.listener.close()
    if proxy.refused:  # before the directory goes: whoever waits for that sees the line
        proxy.say(f"{proxy.refused} connection(s) refused")
    _remove(socket_dir, socket_name)
    os._exit(0)
