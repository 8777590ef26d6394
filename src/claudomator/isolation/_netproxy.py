"""The outer proxy of ``network = "model-only"`` (docs/agents.md §15): a process of ours, on the
host's network, that listens on a unix socket the agent's namespace can reach and lets through
only the allowed endpoints (:class:`~claudomator.isolation._network.AllowList`).

It is the process the launcher's argv starts (``python -I -S``, the standard library only, see
:func:`command`): it makes its socket directory (``<log_dir>/.net-<random>``, mode 0700, never
one that exists; the socket is bound by a relative name, so a long log path does not matter)
and binds ``proxy.sock``; then it forks. The parent execs the command after ``--``
(bwrap), so the process the orchestrator started is bwrap itself, with bwrap's pid, status and
signals, exactly as under ``network = "open"`` (bwrap ignores a child it did not start). The
child, in a session of its own (a kill of the agent's process group does not reach it),
relays until a pidfd of that process says it ended (however it ended: SIGKILL included), then
removes the socket directory and exits.

Per connection it reads one request head: ``CONNECT host:port`` opens a tunnel, an
absolute-URI ``http://`` request is forwarded (``Connection: close``); anything else, or a host
not allowed, gets ``403`` and one line on stderr (the execution's ``stderr.log``) naming the
host, counted in the summary line it writes at exit.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading

from claudomator.isolation._network import AllowList, Decision

TYPE_CHECKING = False  # not typing's: importing typing (and re) would slow the start-up
if TYPE_CHECKING:  # not imported at run time: pathlib, argparse, logging or dataclasses
    # would take longer to import than the rest of the proxy
    from collections.abc import Sequence
    from pathlib import Path
    from typing import NoReturn

SOCKET_NAME = "proxy.sock"
HEAD_LIMIT = 64 * 1024
CONNECT_SECONDS = 10.0
_CHUNK = 64 * 1024
_HOP = (b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive")
BOOT = (
    "import sys, types\n"
    "root = sys.argv.pop(1)\n"
    "for name in ('claudomator', 'claudomator.isolation'):\n"
    "    package = types.ModuleType(name)\n"
    "    package.__path__ = [root + '/' + name.replace('.', '/')]\n"
    "    sys.modules[name] = package\n"
    "from claudomator.isolation._netproxy import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
"""The ``python -c`` of :func:`command`: this module and :mod:`~claudomator.isolation._network`
from the given directory, without running the packages' ``__init__`` (their imports would
triple the proxy's start-up), and nothing else."""


def command(python: str, package_root: str, socket_dir: Path, allowed: Sequence[str]) -> list[str]:
    """The argv that runs the proxy for ``allowed`` (origins), in ``socket_dir``, before the
    command the caller appends after ``--``."""
    argv = [python, "-I", "-S", "-c", BOOT, package_root, "--dir", str(socket_dir)]
    for url in allowed:
        argv += ["--allow", url]
    return [*argv, "--"]


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


def _listen(socket_dir: str) -> socket.socket:
    os.mkdir(socket_dir, 0o700)  # fails if it is there: never someone else's
    here = os.getcwd()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.chdir(socket_dir)
        listener.bind(SOCKET_NAME)  # relative: a long log path is no limit
        listener.listen(64)
    finally:
        os.chdir(here)
    return listener


def _remove(socket_dir: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(socket_dir, SOCKET_NAME))
    with contextlib.suppress(OSError):
        os.rmdir(socket_dir)


def _serve_until(watch: int, proxy: Proxy, socket_dir: str) -> NoReturn:
    """The proxy side of the fork: relay until ``watch`` (a pidfd of the process that became
    the command) says it exited, or a SIGTERM comes (the execution's mark sweep); then remove
    the socket and say how many connections were refused."""
    os.setsid()  # out of the agent's process group: a kill of the group ends the command only
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY)):  # never hold the agent's stdout open
        null = os.open(os.devnull, mode)
        os.dup2(null, fd)
        os.close(null)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
    _remove(socket_dir)
    os._exit(0)


def parse_args(argv: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """``--dir DIR [--allow URL]... -- COMMAND...``: (dir, allowed URLs, command);
    ``ValueError`` for anything else."""
    socket_dir, allow, rest = "", [], list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag not in ("--dir", "--allow") or not rest:
            raise ValueError(f"usage: --dir DIR [--allow URL]... -- COMMAND (not {flag!r})")
        value = rest.pop(0)
        if flag == "--dir":
            socket_dir = value
        else:
            allow.append(value)
    command = rest[1:]
    if not socket_dir or not command:
        raise ValueError("usage: --dir DIR [--allow URL]... -- COMMAND")
    return socket_dir, allow, command


def main(argv: Sequence[str]) -> int:
    """Listen, fork: the child is the proxy (:func:`_serve_until`), this process becomes the
    command (``exec``), so its pid, status and signals are the command's own."""
    try:
        socket_dir, allow, command = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write(f"claudomator network: {exc}\n")
        return 2
    try:
        allowed = AllowList.from_urls(allow)
        listener = _listen(socket_dir)
        watch = os.pidfd_open(os.getpid())  # close-on-exec here, kept by the child
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"claudomator network: cannot start the proxy: {exc}\n")
        return 125
    sys.stderr.flush()
    if os.fork() == 0:
        try:
            _serve_until(watch, Proxy(listener, allowed), socket_dir)
        finally:
            os._exit(1)
    listener.close()
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; exec would keep that
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the launcher's own bwrap argv
    except OSError as exc:
        sys.stderr.write(f"claudomator network: cannot start {command[0]}: {exc}\n")
    return 127
