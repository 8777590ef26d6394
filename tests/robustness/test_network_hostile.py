"""A hostile agent under ``network = "model-only"`` (issue 13): it reaches its model endpoint
and nothing else. The agent is a fake Claude CLI (a Python script speaking stream-json) started
by the real :class:`~claudomator.agents.claude.ClaudeRunner` through the real bubblewrap
launcher and :class:`~claudomator.process.AgentProcess`. Two real HTTP servers run on the
host's 127.0.0.1: the model endpoint (``ANTHROPIC_BASE_URL``) and another one. The agent tries
both directly and through the proxy the environment names, plus an https host; the control run
(``network = "open"``) shows every attempt that fails confined succeeds without it.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudomator.agents.base import Outcome, RunContext
from claudomator.agents.claude import ClaudeRunner
from claudomator.config import Settings
from claudomator.isolation import build_launcher
from claudomator.isolation.base import MODEL_ONLY, OPEN, Confinement
from claudomator.models import AgentConfig, Task, TaskState

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

AGENT = r"""#!/usr/bin/python3
import json, os, socket, sys, urllib.request
plan = json.loads(sys.argv[-1])
report = {"env": {k: v for k, v in os.environ.items() if "proxy" in k.lower()}}
def attempt(name, action):
    try:
        report[name] = action()
    except Exception as exc:
        report[name] = "failed: " + type(exc).__name__ + ": " + str(exc)[:200]
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
proxied = urllib.request.build_opener()  # the proxy variables of the environment
def get(opener, url):
    with opener.open(url, timeout=10) as reply:
        return reply.read().decode()
def tcp(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /raw HTTP/1.0\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply.decode()
for name, port in (("model", plan["model"]), ("other", plan["other"])):
    attempt(name + "_direct", lambda: get(direct, "http://127.0.0.1:%d/%s-direct" % (port, name)))
    attempt(name + "_proxy", lambda: get(proxied, "http://127.0.0.1:%d/%s-proxy" % (port, name)))
    attempt(name + "_tcp", lambda: tcp(port))
attempt("https", lambda: get(proxied, "https://example.com/"))
attempt("resolve", lambda: socket.getaddrinfo("example.com", 443)[0][4][0])
if plan.get("hang"):
    open("ready", "w").close()
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(120)
with open("report.json", "w") as handle:
    json.dump(report, handle)
session = sys.argv[sys.argv.index("--session-id") + 1]
def emit(event):
    event["session_id"] = session
    print(json.dumps(event), flush=True)
emit({"type": "system", "subtype": "init", "model": "fake-model"})
text = "## Summary\nDid it."
emit({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}})
emit({"type": "result", "subtype": "success", "is_error": False, "result": text,
      "total_cost_usd": 0.001, "usage": {"input_tokens": 3, "output_tokens": 5}})
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        body = f"served {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Servers:
    model: http.server.ThreadingHTTPServer
    other: http.server.ThreadingHTTPServer

    def seen(self, which: str) -> list[str]:
        return list(getattr(self, which).paths)


@pytest.fixture
def servers() -> Iterator[Servers]:
    made = []
    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.paths = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
    try:
        yield Servers(*made)
    finally:
        for server in made:
            server.shutdown()
            server.server_close()


def _run(
    tmp_path: Path, servers: Servers, network: str, *, hang: bool = False
) -> tuple[Outcome, RunContext]:
    binary = tmp_path / "bin" / "fake-claude"
    binary.parent.mkdir(exist_ok=True)
    binary.write_text(AGENT, encoding="utf-8")
    binary.chmod(0o755)
    settings = Settings(data_dir=tmp_path / "data")
    name = f"exec-{uuid.uuid4().hex[:8]}"
    sandbox = settings.sandboxes_dir / name
    sandbox.mkdir(parents=True)
    plan = {"model": servers.model.server_port, "other": servers.other.server_port, "hang": hang}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{servers.model.server_port}",
        "HTTP_PROXY": "http://198.51.100.1:3128",  # the host's own: replaced under model-only
        "NO_PROXY": "127.0.0.1,localhost",
    }
    runner = ClaudeRunner(str(binary), build_launcher("bubblewrap", settings))
    ctx = RunContext(
        task=Task(id="task-net", name="net", agent=AgentConfig(instructions=json.dumps(plan))),
        execution_id=name,
        workdir=sandbox,
        log_dir=settings.logs_dir / "task-net" / name,
        env=env,
        session_id=str(uuid.uuid4()),
        timeout=3.0 if hang else 60.0,
        kill_grace=1.0,
        stop=asyncio.Event(),
        # an extra endpoint on a port below 1024: no forwarder can bind it, the agent still runs
        confinement=Confinement(network=network, endpoints=("http://localhost:80",)),
    )
    return asyncio.run(runner.run(ctx)), ctx


def _report(ctx: RunContext) -> dict[str, object]:
    data = json.loads((ctx.workdir / "report.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_model_only_reaches_the_model_endpoint_and_nothing_else(
    tmp_path: Path, servers: Servers
) -> None:
    outcome, ctx = _run(tmp_path, servers, MODEL_ONLY)
    report = _report(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    # the model endpoint: directly (the gate's loopback forwarder), by proxy, by raw TCP
    assert report["model_direct"] == "served /model-direct"
    assert report["model_proxy"] == "served /model-proxy"
    assert "served /raw" in str(report["model_tcp"])
    assert sorted(servers.seen("model")) == ["/model-direct", "/model-proxy", "/raw"]
    # the other server: refused on every path, and it saw nothing
    assert str(report["other_direct"]).startswith("failed: URLError")  # connection refused
    assert str(report["other_tcp"]).startswith("failed: ConnectionRefusedError")
    assert str(report["other_proxy"]).startswith("failed: HTTPError: HTTP Error 403")
    assert servers.seen("other") == []
    assert str(report["https"]).startswith("failed: ")  # CONNECT example.com:443: 403
    assert str(report["resolve"]).startswith("failed: ")  # no DNS in the namespace
    assert report["env"] == {
        "HTTP_PROXY": "http://127.0.0.1:3128",
        "HTTPS_PROXY": "http://127.0.0.1:3128",
        "http_proxy": "http://127.0.0.1:3128",
        "https_proxy": "http://127.0.0.1:3128",
        "NO_PROXY": "",
        "no_proxy": "",
    }
    # each refusal is one line of the execution's stderr.log, naming the host
    log = ctx.stderr_path.read_text(encoding="utf-8")
    other = servers.other.server_port
    assert f"refused GET 127.0.0.1:{other}: not an allowed endpoint" in log
    assert "refused CONNECT example.com:443" in log
    assert "no forwarder on localhost:80" in log
    deadline = time.monotonic() + 5  # the proxy's last words come as bwrap has exited
    while list(ctx.log_dir.glob(".net-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(ctx.log_dir.glob(".net-*"))  # the proxy removed its socket
    assert "2 connection(s) refused" in ctx.stderr_path.read_text(encoding="utf-8")


def test_the_same_agent_with_the_open_network_reaches_the_other_server(
    tmp_path: Path, servers: Servers
) -> None:
    """The control run: confined but ``network = "open"``, the other server is reachable."""
    outcome, ctx = _run(tmp_path, servers, OPEN)
    report = _report(ctx)

    assert outcome.status == TaskState.COMPLETED, outcome.error_msg
    assert report["other_direct"] == "served /other-direct"
    assert "served /raw" in str(report["other_tcp"])
    assert "/other-direct" in servers.seen("other")
    assert "refused" not in ctx.stderr_path.read_text(encoding="utf-8")


def _sockets(log_dir: Path) -> list[Path]:
    return list(log_dir.glob(".net-*"))


def _proxies_of(log_dir: Path) -> list[int]:
    """The processes whose command line names a socket directory in ``log_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(log_dir).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_killed_model_only_agent_leaves_no_proxy_and_no_socket(
    tmp_path: Path, servers: Servers
) -> None:
    """An agent that ignores SIGTERM is SIGKILLed at its timeout, with its process group: the
    proxy, in a session of its own, sees bwrap end and removes its socket directory."""
    started = time.monotonic()
    outcome, ctx = _run(tmp_path, servers, MODEL_ONLY, hang=True)

    assert outcome.status == TaskState.TIMED_OUT
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while (_proxies_of(ctx.log_dir) or _sockets(ctx.log_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _proxies_of(ctx.log_dir) == []
    assert not list(ctx.log_dir.glob(".net-*"))
    assert (ctx.workdir / "ready").exists()  # it did run, and hung
