# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""The real agent CLIs confined with ``[isolation] network = "model-only"``, run by the real
pool against the fake model servers (issue 13): each still completes and edits its sandbox,
its HTTP client reaching the fake server through the gate and the outer proxy, while a command
it runs cannot reach another local HTTP server (the refusal is in the execution's
stderr.log)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    claude_settings,
    fake,
    make_task,
    pid_alive,
    process_tree,
    user_home,
    wait_for,
)

from claudomator.agents.oneshot import OneShotFailed, ask_json
from claudomator.agents.registry import default_registry
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.isolation import build_launcher
from claudomator.isolation.base import Confinement
from claudomator.isolation.plain import PlainLauncher
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env
from fakes.gemini import FakeGemini, FunctionCall, gemini_env
from fakes.gemini import Text as GeminiText

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
]

CLI = "import sys; from claudomator.cli import main; sys.argv[0] = 'claudomator'; main()"
MODEL_ONLY = IsolationSettings(launcher="bubblewrap", network="model-only")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"secret\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other() -> Iterator[http.server.ThreadingHTTPServer]:
    """A local HTTP server that is not the model endpoint."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.paths = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _host_address() -> str:
    """An address of this machine that is not loopback ("" when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # UDP: no packet is sent, a route is picked
        except OSError:
            return ""
        address = str(probe.getsockname()[0])
    return "" if address.startswith("127.") else address


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _pair(client: socket.socket, port: int) -> None:
    with client, socket.create_connection(("127.0.0.1", port)) as upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


@contextlib.contextmanager
def relay_to(url: str, address: str) -> Iterator[str]:
    """A TCP relay on ``address`` to the server at ``url`` (http://127.0.0.1:PORT): the same
    fake model server at a non-loopback address, which the agent's namespace cannot reach
    except through the proxy (no forwarder listens there). Yields its URL."""
    port = int(url.rsplit(":", 1)[1])
    listener = socket.create_server((address, 0))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_pair, args=(client, port), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://{address}:{listener.getsockname()[1]}"
    finally:
        listener.close()


def _fetch(port: int) -> str:
    """A shell command that tries ``port`` by proxy and directly, and notes what it got."""
    url = f"http://127.0.0.1:{port}/leak"
    return (
        f"(curl -s -m 5 {url} || echo proxy-failed) > proxy.txt; "
        f"(curl -s -m 5 --noproxy '*' {url} || echo direct-failed) > direct.txt"
    )


async def test_model_only_claude_completes_and_reaches_nothing_else(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    other: http.server.ThreadingHTTPServer,
) -> None:
    project = make_repo()
    fake.set_script(
        [
            ToolUse("Bash", {"command": f"echo hello > hello.txt; {_fetch(other.server_port)}"}),
            Text("Done.\n\n## Summary\nCreated hello.txt."),
        ]
    )
    settings = claude_settings.model_copy(update={"isolation": MODEL_ONLY})
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, "Create hello.txt"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    assert git(project, "show", f"{branch}:hello.txt") == "hello"
    assert "not an allowed endpoint" in git(project, "show", f"{branch}:proxy.txt")  # the 403
    assert git(project, "show", f"{branch}:direct.txt") == "direct-failed"
    assert other.paths == []  # type: ignore[attr-defined]
    assert len(fake.requests) >= 2  # the CLI's own calls went through the proxy
    log = Path(run.stderr_path).read_text(encoding="utf-8")
    assert f"refused GET 127.0.0.1:{other.server_port}" in log


async def test_model_only_gemini_completes(
    settings: Settings, store: Store, gemini_bin: str, tmp_path: Path, make_repo: MakeRepo
) -> None:
    project = make_repo("gemini-project")
    with FakeGemini() as fake_gemini:
        fake_gemini.set_script(
            [
                FunctionCall("run_shell_command", {"command": "echo 'from gemini' > hello.txt"}),
                GeminiText("Done.\n\n## Summary\nCreated hello.txt from Gemini."),
            ]
        )
        env = gemini_env(fake_gemini.url, tmp_path / "gemini-home")
        gemini_settings = settings.model_copy(
            update={
                "gemini_binary_path": gemini_bin,
                "kill_grace_seconds": 2,
                "isolation": MODEL_ONLY,
            }
        )
        async with PoolHarness(gemini_settings, store, env) as h:
            agent = AgentConfig(
                type="gemini",
                model="gemini-2.5-pro",
                instructions="Create hello.txt",
                project_dir=str(project),
            )
            [task] = h.submit(Task(name="gemini task", agent=agent))
            [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert git(project, "show", f"{kept_branch(project, task.id)}:hello.txt") == "from gemini"


async def test_the_claude_cli_honours_the_proxy_variables(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    """The fake model server at a non-loopback address: no forwarder in the namespace, no
    route out of it; the CLI gets there only by ``HTTPS_PROXY``/``HTTP_PROXY`` (``NO_PROXY``
    empty), which it honours."""
    address = _host_address()
    if not address:
        pytest.skip("this machine has no non-loopback address")
    fake.set_script([Text("## Summary\nNothing to do.")])
    settings = claude_settings.model_copy(update={"isolation": MODEL_ONLY})
    with relay_to(fake.url, address) as url:
        env = {**agent_env, "ANTHROPIC_BASE_URL": url}
        async with PoolHarness(settings, store, env) as h:
            [task] = h.submit(make_task(make_repo(), "Say nothing"))
            [done] = await h.settle([task])
    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    assert fake.requests


async def test_the_gemini_cli_honours_the_proxy_variables(
    settings: Settings, store: Store, gemini_bin: str, tmp_path: Path, make_repo: MakeRepo
) -> None:
    address = _host_address()
    if not address:
        pytest.skip("this machine has no non-loopback address")
    with FakeGemini() as fake_gemini:
        fake_gemini.set_script([GeminiText("## Summary\nNothing to do.")])
        with relay_to(fake_gemini.url, address) as url:
            env = gemini_env(url, tmp_path / "gemini-home")
            gemini_settings = settings.model_copy(
                update={"gemini_binary_path": gemini_bin, "isolation": MODEL_ONLY}
            )
            async with PoolHarness(gemini_settings, store, env) as h:
                agent = AgentConfig(type="gemini", instructions="Say nothing")
                [task] = h.submit(Task(name="gemini proxy", agent=agent))
                [done] = await h.settle([task])
        assert fake_gemini.requests
    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg


async def test_a_model_only_one_shot_call_answers_and_plain_refuses_it(
    claude_bin: str, tmp_path: Path, make_repo: MakeRepo
) -> None:
    """A one-shot call (the chooser's, elaborate's) given the runs' confinement: under
    bubblewrap it answers through the proxy; under plain it is refused, never run open."""
    spec = default_registry()["claude"]
    assert spec.one_shot is not None
    how = spec.one_shot  # the registry declares its model endpoints
    assert how.endpoints(claude_env("http://127.0.0.1:9", tmp_path / "h")) == (
        "http://127.0.0.1:9",
    )
    blind = dataclasses.replace(how, endpoints=lambda env: ())
    policy = Confinement(network="model-only")
    project = make_repo("one-shot-project")
    with FakeAnthropic([Text('```json\n{"agent": "gemini"}\n```')]) as fake_model:
        env = claude_env(fake_model.url, tmp_path / "home")
        launcher = build_launcher("bubblewrap", Settings(data_dir=tmp_path / "data"))
        answer = await ask_json(
            how,
            claude_bin,
            "pick one",
            cwd=str(project),
            env=env,
            time_limit=90,
            launcher=launcher,
            confinement=policy,
        )
        assert answer == {"agent": "gemini"}
        with pytest.raises(OneShotFailed, match="cannot be enforced by the plain launcher"):
            await ask_json(
                how,
                claude_bin,
                "pick one",
                env=env,
                time_limit=90,
                launcher=PlainLauncher(),
                confinement=policy,
            )
        with pytest.raises(OneShotFailed):  # model-only without its model endpoint: no way out
            await ask_json(
                blind,
                claude_bin,
                "pick one",
                env=env,
                time_limit=60,
                launcher=launcher,
                confinement=policy,
            )
    assert len(fake_model.requests) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _serve_model_only(tmp_path: Path, model_url: str, claude_bin: str) -> Iterator[httpx.Client]:
    """A real `claudomator serve` (token "tok") with ``[isolation] network = "model-only"``
    under bubblewrap, whose Claude CLI talks to ``model_url``."""
    env = claude_env(model_url, tmp_path / "agent-home")
    config = tmp_path / "config.toml"
    config.write_text(
        f'claude_binary_path = "{claude_bin}"\napi_token = "tok"\nkill_grace_seconds = 2\n'
        '[isolation]\nlauncher = "bubblewrap"\nnetwork = "model-only"\n',
        encoding="utf-8",
    )
    env["CLAUDOMATOR_CONFIG"] = str(config)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        auth = {"Authorization": "Bearer tok"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/api/health")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "serve exited"
                    assert time.monotonic() < deadline, "serve never answered"
                    time.sleep(0.2)
            yield client
    finally:
        server.terminate()
        server.wait(30)


def test_a_model_only_agent_files_a_subtask_through_the_claudomator_api(
    tmp_path: Path, make_repo: MakeRepo, claude_bin: str
) -> None:
    """`serve` starts with model-only; the confined agent reaches the Claudomator API (its
    origin is an allowed endpoint) with curl through the proxy, and its subtask runs too."""
    project = make_repo()
    create = (
        'curl -sf -X POST "$CLAUDOMATOR_API_URL/api/tasks" '
        '-H "Authorization: Bearer $CLAUDOMATOR_API_TOKEN" -H "Content-Type: application/json" '
        '-d "{\\"name\\": \\"child\\", \\"agent\\": {\\"instructions\\": \\"TASK-CHILD\\", '
        '\\"project_dir\\": \\"$CLAUDOMATOR_PROJECT_DIR\\"}}"'
    )
    with FakeAnthropic() as fake_model:
        noted = f"{create} && env | grep -i _proxy | sort > proxy-env.txt"
        fake_model.route(
            "TASK-PARENT", [ToolUse("Bash", {"command": noted}), Text("## Summary\nsplit")]
        )
        fake_model.route(
            "TASK-CHILD",
            [ToolUse("Bash", {"command": "echo child > child.txt"}), Text("## Summary\nchild")],
        )
        with _serve_model_only(tmp_path, fake_model.url, claude_bin) as client:
            body = {"name": "parent", "agent": {"instructions": "TASK-PARENT"}}
            body["agent"]["project_dir"] = str(project)  # type: ignore[index]
            assert client.post("/api/tasks", json=body).status_code == 201
            deadline = time.monotonic() + 120
            tasks: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                tasks = client.get("/api/tasks").json()["tasks"]
                if len(tasks) == 2 and all(t["state"] == "COMPLETED" for t in tasks):
                    break
                time.sleep(0.3)
    by_name = {t["name"]: t for t in tasks}
    assert set(by_name) == {"parent", "child"}, tasks
    assert all(t["state"] == "COMPLETED" for t in tasks), tasks
    child_id = str(by_name["child"]["id"])
    assert git(project, "show", f"{kept_branch(project, child_id)}:child.txt") == "child"
    parent_id = str(by_name["parent"]["id"])
    seen = git(project, "show", f"{kept_branch(project, parent_id)}:proxy-env.txt")
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in seen.splitlines()
    assert "NO_PROXY=" in seen.splitlines()


async def test_the_build_check_of_a_model_only_agent_has_no_network_either(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    other: http.server.ThreadingHTTPServer,
) -> None:
    """The build check runs the agent's Makefile through the agent's launcher and network:
    its ``build`` rule reaches the other local server neither directly nor by proxy."""
    url = f"http://127.0.0.1:{other.server_port}/from-build"
    makefile = (
        (
            "build:\n"
            f"\t-(curl -s -m 5 {url} || echo proxy-failed) > build-proxy.txt\n"
            f"\t-(curl -s -m 5 --noproxy 127.0.0.1 {url} || echo direct-failed) > b-direct.txt\n"
        )
        .replace("\t", "\\t")
        .replace("\n", "\\n")
    )
    project = make_repo()
    fake.set_script(
        [
            ToolUse("Bash", {"command": f"printf '{makefile}' > Makefile; echo x > work.txt"}),
            Text("Done.\n\n## Summary\nAdded a Makefile."),
        ]
    )
    settings = claude_settings.model_copy(update={"isolation": MODEL_ONLY})
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, "Add a Makefile"))
        [done] = await h.settle([task])

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.COMPLETED, run.error_msg
    branch = kept_branch(project, task.id)
    assert "not an allowed endpoint" in git(project, "show", f"{branch}:build-proxy.txt")
    assert git(project, "show", f"{branch}:b-direct.txt") == "direct-failed"
    assert other.paths == []  # type: ignore[attr-defined]


TRAPPED = "trap 'echo flushed > term.txt; exit 0' TERM; echo ready > ready.txt; " + (
    "while :; do sleep 0.05; done"
)


async def test_cancelling_a_model_only_claude_leaves_no_process_and_no_socket(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    """Cancelled mid-run, the CLI's tool command still gets its SIGTERM inside the namespace
    (the gate does not stand in the way); then nothing of the run is left: not bwrap, not the
    gate, not the proxy (outside the agent's process group), not its socket directory."""
    fake.set_script([ToolUse("Bash", {"command": TRAPPED, "timeout": 600000})])
    settings = claude_settings.model_copy(update={"isolation": MODEL_ONLY})
    async with PoolHarness(settings, store, agent_env) as h:
        [task] = h.submit(make_task(make_repo(), "Hang"))

        def ready() -> bool:
            runs = store.executions_of(task.id)
            return bool(runs) and Path(runs[0].sandbox_dir, "ready.txt").is_file()

        await wait_for(ready, 60)
        pid = store.executions_of(task.id)[0].pid
        assert pid is not None
        before = process_tree(pid)
        h.service.cancel(task.id[:8])
        [done] = await h.settle([task], timeout=60)

    [run] = store.executions_of(task.id)
    assert done.state == TaskState.CANCELLED, run.error_msg
    assert Path(run.sandbox_dir, "term.txt").read_text(encoding="utf-8") == "flushed\n"
    assert len(before) >= 6  # bwrap, the proxy, bwrap's init, the gate, the CLI, the command
    assert not [p for p in before if pid_alive(p)]
    assert not list(Path(run.stderr_path).parent.glob(".net-*"))
