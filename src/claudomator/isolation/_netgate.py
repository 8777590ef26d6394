"""The inner gate of ``network = "model-only"`` (docs/agents.md §15): the first process inside
the agent's network namespace (``bwrap --unshare-net``: only loopback exists there).

Run by its path (``python -I -S .../_netgate.py``; this file alone is bound into the namespace,
so it imports nothing of Claudomator). It listens on ``127.0.0.1:<port>`` (``--proxy``, what
``HTTP(S)_PROXY`` names) and relays each connection as it is to the outer proxy's unix socket
(``--socket``); and for each ``--forward host:port`` (an allowed endpoint on the host's
loopback: a fake model server, the Claudomator API) it listens on that same address and
tunnels each connection there through the outer proxy (``CONNECT``), so a client that ignores
the proxy variables for loopback still arrives (not on a port below 1024, which the agent's
namespace has no capability to bind: that endpoint is reached through the proxy only). Only
once every listener is up does it start the agent (the argv after ``--``, with
``posix_spawnp``); it then waits for it and exits with its status, or dies of the signal that
killed it. A SIGTERM, SIGINT or SIGHUP to the gate itself is noted and ignored: a stop
signals every process of the namespace, and the agent may still need the network to finish;
the gate ends when the agent does.

It uses the interpreter's C modules ``_socket``, ``_signal`` and ``_thread`` rather than
``socket``, ``signal`` and ``threading``: those import ``enum`` and more, which made up half of
the gate's start-up, and every agent start under model-only waits for it.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub: signal's own C half)
import _socket
import _thread
import os
import sys

TYPE_CHECKING = False  # not typing's: neither it nor argparse, subprocess or contextlib is loaded
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_CHUNK = 64 * 1024
USAGE = "usage: --socket PATH --proxy PORT [--forward HOST:PORT]... -- COMMAND"
_STOPS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)


def _close(conn: _socket.socket) -> None:
    try:  # noqa: SIM105 - contextlib is not imported: start-up time
        conn.close()
    except OSError:
        pass


def _pump(source: _socket.socket, target: _socket.socket, done: _thread.LockType | None) -> None:
    """Copy ``source`` to ``target`` until its end, then end ``target``'s writing side."""
    try:
        while chunk := source.recv(_CHUNK):
            target.sendall(chunk)
    except OSError:
        pass
    try:  # noqa: SIM105 - contextlib is not imported: start-up time
        target.shutdown(_socket.SHUT_WR)
    except OSError:
        pass
    if done is not None:
        done.release()


def relay(a: _socket.socket, b: _socket.socket) -> None:
    """Copy both ways until both sides are done."""
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_pump, (b, a, done))
    _pump(a, b, None)
    done.acquire()  # the other direction ended too


def _outer(path: str) -> _socket.socket:
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        raise
    return conn


def _proxied(client: _socket.socket, path: str) -> None:
    try:
        outer = _outer(path)
    except OSError:
        _close(client)
        return
    try:
        relay(client, outer)
    finally:
        _close(outer)
        _close(client)


def _tunneled(client: _socket.socket, path: str, address: str) -> None:
    try:
        outer = _outer(path)
    except OSError:
        _close(client)
        return
    try:
        _tunnel(client, outer, address)
    except OSError:
        pass
    finally:
        _close(outer)
        _close(client)


def _tunnel(client: _socket.socket, outer: _socket.socket, address: str) -> None:
    """``CONNECT address`` through ``outer``; on ``200``, relay ``client`` through it."""
    outer.sendall(f"CONNECT {address} HTTP/1.1\r\nHost: {address}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = outer.recv(_CHUNK)
        if not chunk or len(reply) > 65536:
            return
        reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    if head.split(b" ", 2)[1:2] != [b"200"]:
        return
    if rest:
        client.sendall(rest)
    relay(client, outer)


def _serve(listener: _socket.socket, handle: Callable[..., None], args: tuple[str, ...]) -> None:
    while True:
        try:  # (what socket.socket.accept does over its C half)
            fd, _ = listener._accept()  # type: ignore[attr-defined]
        except OSError:
            return
        client = _socket.socket(listener.family, listener.type, fileno=fd)
        _thread.start_new_thread(handle, (client, *args))


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _listen(host: str, port: int) -> list[_socket.socket]:
    """Listeners on ``host:port``: ``localhost`` is both 127.0.0.1 and ::1 (the second only
    where the namespace has IPv6)."""
    hosts = ["127.0.0.1", "::1"] if host == "localhost" else [host]
    made = []
    for index, name in enumerate(hosts):
        family = _socket.AF_INET6 if ":" in name else _socket.AF_INET
        listener = _socket.socket(family, _socket.SOCK_STREAM)
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        try:
            listener.bind((name, port))
        except OSError:
            listener.close()
            if index == 0:
                raise
            continue
        listener.listen(64)
        made.append(listener)
    return made


def parse_args(argv: Sequence[str]) -> tuple[str, int, list[str], list[str]]:
    """``--socket PATH --proxy PORT [--forward HOST:PORT]... -- COMMAND...``: (socket, proxy
    port, forwards, command); ``ValueError`` for anything else."""
    values: dict[str, list[str]] = {"--socket": [], "--proxy": [], "--forward": []}
    rest = list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag not in values or not rest:
            raise ValueError(f"{USAGE} (not {flag!r})")
        values[flag].append(rest.pop(0))
    command = rest[1:]
    if len(values["--socket"]) != 1 or len(values["--proxy"]) != 1 or not command:
        raise ValueError(USAGE)
    return values["--socket"][0], int(values["--proxy"][0]), values["--forward"], command


def _noted(signum: int, frame: object) -> None:
    """A stop signal to the gate itself: the agent got its own; the gate waits for it."""


def main(argv: Sequence[str]) -> int:
    # every socket is listening (the kernel queues what comes) before the agent starts; the
    # threads that accept start after it, off the agent's start-up path
    servers: list[tuple[_socket.socket, Callable[..., None], tuple[str, ...]]] = []
    try:
        outer, proxy_port, forwards, command = parse_args(argv)
        servers += [(s, _proxied, (outer,)) for s in _listen("127.0.0.1", proxy_port)]
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"claudomator network gate: cannot listen: {exc}\n")
        return 125
    for address in forwards:
        host, port = _split(address)
        try:
            servers += [(s, _tunneled, (outer, address)) for s in _listen(host, port)]
        except OSError as exc:  # a port below 1024: no capability to bind it; the proxy stays
            sys.stderr.write(f"claudomator network gate: no forwarder on {address}: {exc}\n")
    for sig in _STOPS:
        _signal.signal(sig, _noted)  # a handler, not SIG_IGN: exec resets it
    # the agent starts with the default action for every signal (Python ignores SIGPIPE and
    # SIGXFSZ, and an ignored signal stays ignored across exec)
    defaults = (*_STOPS, _signal.SIGPIPE, _signal.SIGXFSZ)
    try:
        pid = os.posix_spawnp(command[0], command, os.environ, setsigdef=defaults)
    except OSError as exc:
        sys.stderr.write(f"claudomator network gate: cannot start {command[0]}: {exc}\n")
        return 127
    for listener, handle, extra in servers:
        _thread.start_new_thread(_serve, (listener, handle, extra))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    sys.stderr.flush()
    if code < 0:
        _signal.signal(-code, _signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
