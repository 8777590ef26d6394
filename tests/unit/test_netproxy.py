"""The outer proxy of ``network = "model-only"`` as the launcher starts it (a real process on a
real unix socket, ``python -I -S``): an allowed CONNECT and an allowed plain-http request reach
a real HTTP server on 127.0.0.1, anything else gets 403 and a line on stderr naming the host;
the proxy lives as long as its command, exits with its status and removes its socket."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import claudomator
from claudomator.isolation import _netproxy


@dataclass
class Seen:
    """What a local HTTP server was asked."""

    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen: Seen = self.server.seen  # type: ignore[attr-defined]
        seen.paths.append(self.path)
        seen.headers.append({k.lower(): v for k, v in self.headers.items()})
        body = f"hello {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[tuple[int, Seen], tuple[int, Seen]]]:
    """Two HTTP servers on 127.0.0.1: the allowed one and another."""
    made = []
    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.seen = Seen()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
    try:
        yield tuple((s.server_port, s.seen) for s in made)  # type: ignore[misc, attr-defined]
    finally:
        for server in made:
            server.shutdown()
            server.server_close()


def _start(tmp_path: Path, allowed: list[str], *child: str) -> tuple[subprocess.Popen[str], Path]:
    root = str(Path(claudomator.__file__).resolve().parent.parent)
    socket_dir = tmp_path / "logs" / ".net-test"
    socket_dir.parent.mkdir(parents=True, exist_ok=True)
    argv = [*_netproxy.command(sys.executable, root, socket_dir, allowed), *child]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    sock = socket_dir / _netproxy.SOCKET_NAME
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the proxy never listened"
        time.sleep(0.01)
    return proc, sock


def _ask(sock: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(sock))
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):  # the servers close after one reply (HTTP/1.0)
            reply += chunk
        return reply


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)  # passed on to the command, which dies of it
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_allowed_requests_pass_and_others_are_refused_and_logged(
    tmp_path: Path, servers: tuple[tuple[int, Seen], tuple[int, Seen]]
) -> None:
    (port, seen), (other, other_seen) = servers
    proc, sock = _start(tmp_path, [f"http://127.0.0.1:{port}"], "sleep", "60")

    tunnel = _ask(
        sock,
        f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"
        f"GET /through-tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    )
    assert tunnel.startswith(b"HTTP/1.1 200 Connection established")
    assert b"hello /through-tunnel" in tunnel
    forwarded = _ask(
        sock,
        f"GET http://127.0.0.1:{port}/plain?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Proxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n".encode(),
    )
    assert forwarded.startswith(b"HTTP/1.0 200") or forwarded.startswith(b"HTTP/1.1 200")
    assert b"hello /plain?q=1" in forwarded
    assert seen.paths == ["/through-tunnel", "/plain?q=1"]
    assert seen.headers[1]["x-kept"] == "yes"
    assert "proxy-connection" not in seen.headers[1]

    refused = [
        _ask(sock, f"CONNECT 127.0.0.1:{other} HTTP/1.1\r\n\r\n".encode()),
        _ask(sock, f"GET http://127.0.0.1:{other}/x HTTP/1.1\r\n\r\n".encode()),
        _ask(sock, b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n"),
        _ask(sock, b"GET /not-absolute HTTP/1.1\r\n\r\n"),
        _ask(sock, b"CONNECT x\nclaudomator network: forged:443 HTTP/1.1\r\n\r\n"),
    ]
    assert all(r.startswith(b"HTTP/1.1 403 Forbidden") for r in refused), refused
    assert other_seen.paths == []

    code, err = _stop(proc)
    assert code == -signal.SIGTERM
    assert f"refused CONNECT 127.0.0.1:{other}" in err
    assert f"refused GET 127.0.0.1:{other}" in err
    assert "refused CONNECT evil.example:443" in err
    assert "5 connection(s) refused" in err
    assert "\nclaudomator network: forged" not in err  # an agent's newline makes no line
    assert not sock.parent.exists()  # the socket and its directory are gone


def test_the_proxy_exits_with_its_commands_status(tmp_path: Path) -> None:
    proc, sock = _start(tmp_path, [], "sh", "-c", "sleep 0.3; exit 7")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 7, err
    assert "refused" not in err
    assert not sock.parent.exists()


def test_an_existing_socket_directory_is_never_reused(tmp_path: Path) -> None:
    taken = tmp_path / "logs" / ".net-test"
    taken.mkdir(parents=True)
    root = str(Path(claudomator.__file__).resolve().parent.parent)
    argv = [*_netproxy.command(sys.executable, root, taken, []), "true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 125
    assert "cannot start the proxy" in done.stderr
    assert taken.is_dir()
    assert os.listdir(taken) == []
