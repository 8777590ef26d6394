"""``network = "model-only"`` without starting an agent: the allow-list's decisions
(:mod:`claudomator.isolation._network`), what the bubblewrap launcher's ``wrap`` builds (the
outer proxy, bwrap with its own network namespace, the gate, the proxy variables), the plain
launcher's refusal, and :func:`claudomator.isolation._host.network_problem`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from claudomator.agents.claude import ClaudeRunner
from claudomator.agents.gemini import GeminiRunner
from claudomator.config import Settings
from claudomator.errors import ClaudomatorError, ConfinementError
from claudomator.isolation import build_launcher
from claudomator.isolation._host import BwrapHost, NamespaceProbe, network_problem
from claudomator.isolation._network import (
    GATE_PORT,
    AllowList,
    Endpoint,
    gate_port,
    parse_endpoint,
    proxy_env,
)
from claudomator.isolation.base import MODEL_ONLY, Access
from claudomator.isolation.bubblewrap import NET_DIR, BubblewrapLauncher
from claudomator.isolation.plain import PlainLauncher

ALLOWED = AllowList.from_urls(
    ["https://api.anthropic.com", "http://127.0.0.1:8484", "https://[::1]:9443"]
)


def test_endpoints_are_origins_with_their_default_ports() -> None:
    assert parse_endpoint("https://API.Anthropic.com./v1/messages") == Endpoint(
        "https", "api.anthropic.com", 443
    )
    assert parse_endpoint("http://localhost") == Endpoint("http", "localhost", 80)
    assert str(parse_endpoint("https://[::1]:9443")) == "https://[::1]:9443"
    for bad in ("ftp://host", "https://", "not a url", "http://host:99999"):
        with pytest.raises(ValueError, match=r"endpoint|host|port"):
            parse_endpoint(bad)


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("api.anthropic.com:443", True),
        ("API.ANTHROPIC.COM.:443", True),
        ("127.0.0.1:8484", True),  # an http endpoint may be tunnelled too (the forwarders)
        ("[::1]:9443", True),
        ("api.anthropic.com:80", False),  # the right host on another port
        ("evil.example:443", False),
        ("api.anthropic.com.evil.example:443", False),
        ("127.0.0.1:8485", False),
        ("::1:9443", False),  # an IPv6 host without brackets is not parsed as one
        ("api.anthropic.com", False),  # no port
    ],
)
def test_connect_is_allowed_only_to_an_endpoints_host_and_port(target: str, allowed: bool) -> None:
    decision = ALLOWED.connect(target)
    assert decision.allowed is allowed
    assert bool(decision.reason) is not allowed


def test_plain_http_is_forwarded_only_to_http_endpoints() -> None:
    assert ALLOWED.forward("http://127.0.0.1:8484/api/tasks").allowed
    assert not ALLOWED.forward("http://127.0.0.1:9/").allowed
    refused = ALLOWED.forward("https://api.anthropic.com/v1")  # https goes by CONNECT
    assert not refused.allowed
    assert "http://" in refused.reason
    assert not ALLOWED.forward("/relative").allowed


def test_loopback_endpoints_get_forwarders_and_the_gate_avoids_their_ports() -> None:
    assert ALLOWED.loopback() == (("127.0.0.1", 8484), ("::1", 9443))
    assert gate_port(ALLOWED) == GATE_PORT
    busy = AllowList.from_urls([f"http://localhost:{GATE_PORT}", "http://127.0.0.1:3129"])
    assert gate_port(busy) == 3130
    env = proxy_env(GATE_PORT)
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == ""


def _launcher(tmp_path: Path) -> BubblewrapLauncher:
    launcher = build_launcher("bubblewrap", Settings(data_dir=tmp_path / "data"))
    assert isinstance(launcher, BubblewrapLauncher)
    return launcher


def _model_only(tmp_path: Path, *endpoints: str) -> Access:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Access(workdir=work, log_dir=tmp_path / "logs", network=MODEL_ONLY, endpoints=endpoints)


def test_model_only_runs_the_proxy_then_bwrap_without_a_network_then_the_gate(
    tmp_path: Path,
) -> None:
    access = _model_only(tmp_path, "http://127.0.0.1:4567", "https://api.anthropic.com")
    env = {"PATH": "/usr/bin", "HTTPS_PROXY": "http://corp:8080", "NO_PROXY": "127.0.0.1"}
    env["CLAUDOMATOR_EXECUTION_ID"] = "exec-1"  # the mark: the agent's, not the proxy's
    argv, clean = _launcher(tmp_path).wrap(["/usr/bin/true", "-x"], access.workdir, env, access)

    assert "claudomator.isolation._netproxy" in argv[4]  # python -I -S -c BOOT
    proxy_dir = Path(argv[argv.index("--dir") + 1])
    assert proxy_dir.parent == tmp_path / "logs"
    assert proxy_dir.name.startswith(".net-")
    allows = [argv[i + 1] for i, a in enumerate(argv[: argv.index("--")]) if a == "--allow"]
    assert allows == ["http://127.0.0.1:4567", "https://api.anthropic.com:443"]
    bwrap = argv.index("--") + 1
    assert argv[bwrap].endswith("bwrap")
    assert "--unshare-net" in argv[bwrap:]
    binds = [argv[i + 1 : i + 3] for i, a in enumerate(argv) if a == "--bind"]
    assert [str(proxy_dir), NET_DIR] in binds
    gate = argv.index("--", bwrap) + 1
    assert argv[gate + 3].endswith("_netgate.py")
    assert argv[argv.index("--forward") + 1] == "127.0.0.1:4567"
    assert argv[argv.index("--proxy") + 1] == "3128"
    assert argv[-3:] == ["--", "/usr/bin/true", "-x"]
    # the host's proxy variables give way to the gate's, with no exception for loopback
    assert clean["HTTPS_PROXY"] == clean["HTTP_PROXY"] == "http://127.0.0.1:3128"
    assert clean["NO_PROXY"] == clean["no_proxy"] == ""
    setenv = argv.index("--setenv")
    assert argv[setenv + 1 : setenv + 3] == ["CLAUDOMATOR_EXECUTION_ID", "exec-1"]
    assert "CLAUDOMATOR_EXECUTION_ID" not in clean


def test_open_network_is_unchanged_and_a_bad_endpoint_is_a_confinement_error(
    tmp_path: Path,
) -> None:
    launcher = _launcher(tmp_path)
    open_access = Access(workdir=tmp_path, log_dir=tmp_path / "logs")
    argv, _ = launcher.wrap(["/usr/bin/true"], tmp_path, {}, open_access)
    assert argv[0].endswith("bwrap")
    assert "--unshare-net" not in argv
    bad = _model_only(tmp_path, "ftp://files.example")
    with pytest.raises(ConfinementError, match=r"ftp://files\.example"):
        launcher.wrap(["/usr/bin/true"], tmp_path, {}, bad)


def test_plain_refuses_model_only_rather_than_run_with_the_open_network(tmp_path: Path) -> None:
    plain = PlainLauncher()
    with pytest.raises(ConfinementError, match='model-only" cannot be enforced by the plain'):
        plain.wrap(["/usr/bin/true"], tmp_path, {}, _model_only(tmp_path))
    assert issubclass(ConfinementError, ClaudomatorError)
    argv, _ = plain.wrap(["/usr/bin/true"], tmp_path, {}, Access(tmp_path, tmp_path))
    assert argv == ["/usr/bin/true"]


def test_the_runners_declare_their_model_endpoints() -> None:
    claude = ClaudeRunner("claude", PlainLauncher())
    assert claude.endpoints({}) == ("https://api.anthropic.com",)
    assert claude.endpoints({"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/v1"}) == (
        "http://127.0.0.1:9",
    )
    gemini = GeminiRunner("gemini", PlainLauncher())
    api = "https://generativelanguage.googleapis.com"
    assert gemini.endpoints({"GEMINI_API_KEY": "k"}) == (api,)
    assert gemini.endpoints({})[0] == api  # and a Google login's hosts
    assert "https://oauth2.googleapis.com" in gemini.endpoints({})
    assert gemini.endpoints({"GOOGLE_GEMINI_BASE_URL": "http://localhost:7"}) == (
        "http://localhost:7",
    )


def test_network_problem_names_what_cannot_enforce_model_only() -> None:
    assert network_problem("open", "plain") == ""
    plain = network_problem(MODEL_ONLY, "plain")
    assert 'launcher = "bubblewrap"' in plain
    assert "'plain'" in plain
    no_net = BwrapHost("/usr/bin/bwrap", "bubblewrap 0.8", (NamespaceProbe("net", False, "EPERM"),))
    assert "network namespace here: EPERM" in network_problem(MODEL_ONLY, "bubblewrap", no_net)
    ok = BwrapHost("/usr/bin/bwrap", "bubblewrap 0.8", (NamespaceProbe("net", True),))
    assert network_problem(MODEL_ONLY, "bubblewrap", ok) == ""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed here")
def test_network_problem_probes_bwrap_for_a_network_namespace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a probe given, it runs ``bwrap --unshare-net`` here (as serve and run do)."""
    assert network_problem(MODEL_ONLY, "bubblewrap") == ""
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    assert "bwrap is not on PATH" in network_problem(MODEL_ONLY, "bubblewrap")
