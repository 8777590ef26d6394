"""Real subprocesses: short commands, and agent processes in their own process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from claudomator.isolation.base import Access
from claudomator.isolation.plain import PlainLauncher
from claudomator.process import AgentProcess, Exit, run, tail_file

# -- helpers ----------------------------------------------------------------------------------


def _dead(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` is gone (or a zombie nobody reaped yet) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _pid_from(path: Path, within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Agent:
    """An AgentProcess running ``bash -c script`` in ``tmp_path``, with its lines collected."""

    def __init__(self, tmp_path: Path, script: str, kill_grace: float = 0.2) -> None:
        self.lines: list[str] = []
        self.dir = tmp_path
        self.stdout = tmp_path / "logs" / "stdout.log"
        self.stderr = tmp_path / "logs" / "stderr.log"
        self.proc = AgentProcess(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=dict(os.environ),
            stdout_path=self.stdout,
            stderr_path=self.stderr,
            on_line=self.lines.append,
            launcher=PlainLauncher(),
            access=Access(workdir=tmp_path, log_dir=tmp_path / "logs"),
            kill_grace=kill_grace,
        )

    async def run(self, timeout: float | None = 10.0, stop: asyncio.Event | None = None) -> Exit:
        await self.proc.start()
        return await self.proc.wait(timeout, stop)


# -- run() ------------------------------------------------------------------------------------


def test_run_captures_output_and_return_code() -> None:
    result = run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert not result.ok
    assert [line for line in result.tail().splitlines() if line] == ["out", "err"]


def test_run_ok_and_tail() -> None:
    result = run(["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"])
    assert result.ok
    assert result.tail(2) == "line4\nline5"


def test_run_input_cwd_and_env(tmp_path: Path) -> None:
    assert run(["cat"], input_text="héllo\n").stdout == "héllo\n"
    assert run(["sh", "-c", "pwd -P"], cwd=tmp_path).stdout.strip() == str(tmp_path.resolve())
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "yes"}
    assert run(["sh", "-c", 'echo "$ONLY_THIS:${HOME:-unset}"'], env=env).stdout == "yes:unset\n"


def test_run_decodes_bad_bytes() -> None:
    assert run(["printf", r"a\377b"]).stdout == "a\ufffdb"


def test_run_missing_binary_is_127(tmp_path: Path) -> None:
    result = run([str(tmp_path / "no-such-binary"), "--version"])
    assert result.returncode == 127
    assert "cannot run" in result.stderr
    assert str(tmp_path / "no-such-binary") in result.stderr
    assert result.stdout == ""


def test_run_timeout_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = run(["bash", "-c", f"sleep 300 & echo $! > {pidfile}; echo before; wait"], timeout=0.5)
    elapsed = time.monotonic() - started
    child = _pid_from(pidfile)
    try:
        assert result.returncode == -9
        assert "(killed after 0.5s)" in result.stderr
        assert result.stdout == "before\n"
        assert elapsed < 5
        assert _dead(child)
    finally:
        _kill_quietly(child)


def test_tail_file(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    assert tail_file(path) == ""
    path.write_bytes(b"0123456789" * 10 + b"\nend \xff\n")
    assert tail_file(path, 6) == "end \ufffd"
    assert tail_file(path).startswith("0123")


# -- AgentProcess -----------------------------------------------------------------------------


async def test_lines_and_raw_bytes(tmp_path: Path) -> None:
    script = "; ".join(
        [
            r"printf 'one\ntwo\r\n\n   three  \n'",
            r"printf 'caf\xc3\xa9\n'",
            r"printf 'bad \xff byte\n'",
            r"printf 'last-no-newline'",
        ]
    )
    agent = Agent(tmp_path, script)
    assert agent.proc.pid is None
    ended = await agent.run()
    assert ended == Exit(0, timed_out=False, stopped=False)
    assert agent.lines == ["one", "two", "three", "café", "bad \ufffd byte", "last-no-newline"]
    assert agent.stdout.read_bytes() == (
        b"one\ntwo\r\n\n   three  \ncaf\xc3\xa9\nbad \xff byte\nlast-no-newline"
    )
    assert agent.stderr.read_bytes() == b""
    assert agent.proc.pid is not None


async def test_a_line_longer_than_200_kb(tmp_path: Path) -> None:
    size = 250_000
    script = f"printf 'first\\n'; head -c {size} /dev/zero | tr '\\0' 'x'; printf '\\nafter\\n'"
    agent = Agent(tmp_path, script)
    ended = await agent.run()
    assert ended.returncode == 0
    assert [len(line) for line in agent.lines] == [5, size, 5]
    assert agent.lines[1] == "x" * size
    assert agent.lines[2] == "after"
    assert agent.stdout.read_bytes() == b"first\n" + b"x" * size + b"\nafter\n"


async def test_many_lines_in_order(tmp_path: Path) -> None:
    agent = Agent(tmp_path, 'for i in $(seq 1 5000); do echo "line $i"; done')
    await agent.run()
    assert agent.lines == [f"line {i}" for i in range(1, 5001)]


async def test_stderr_goes_to_its_file(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "echo oops >&2; echo out; echo again >&2; exit 4")
    ended = await agent.run()
    assert ended == Exit(4)
    assert agent.stderr.read_text(encoding="utf-8") == "oops\nagain\n"
    assert agent.stdout.read_text(encoding="utf-8") == "out\n"
    assert agent.lines == ["out"]


async def test_logs_are_appended(tmp_path: Path) -> None:
    first = Agent(tmp_path, "echo run1; echo e1 >&2")
    await first.run()
    second = Agent(tmp_path, "echo run2; echo e2 >&2")
    await second.run()
    assert second.stdout.read_text(encoding="utf-8") == "run1\nrun2\n"
    assert second.stderr.read_text(encoding="utf-8") == "e1\ne2\n"
    assert second.lines == ["run2"]


async def test_environment_and_cwd(tmp_path: Path) -> None:
    agent = Agent(tmp_path, 'echo "$MARKER"; pwd -P')
    agent.proc.env["MARKER"] = "from-env"
    await agent.run()
    assert agent.lines == ["from-env", str(tmp_path.resolve())]


async def test_a_failing_line_handler_does_not_stop_the_pump(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(line: str) -> None:
        seen.append(line)
        if line == "boom":
            raise RuntimeError("parser bug")

    agent = Agent(tmp_path, "echo a; echo boom; echo c")
    agent.proc.on_line = handler
    ended = await agent.run()
    assert ended.returncode == 0
    assert seen == ["a", "boom", "c"]
    assert agent.stdout.read_text(encoding="utf-8") == "a\nboom\nc\n"


async def test_missing_executable_raises_oserror(tmp_path: Path) -> None:
    proc = AgentProcess(
        [str(tmp_path / "nope")],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout_path=tmp_path / "logs" / "stdout.log",
        stderr_path=tmp_path / "logs" / "stderr.log",
        on_line=lambda _line: None,
        launcher=PlainLauncher(),
        access=Access(workdir=tmp_path, log_dir=tmp_path / "logs"),
    )
    with pytest.raises(OSError):  # noqa: PT011 - any OSError: the runner maps it to AgentError
        await proc.start()
    assert proc.pid is None


async def test_timeout_kills_the_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    agent = Agent(tmp_path, f"sleep 300 & echo $! > {pidfile}; echo started; wait")
    started = time.monotonic()
    ended = await agent.run(timeout=0.5)
    elapsed = time.monotonic() - started
    child = _pid_from(pidfile)
    try:
        assert ended.timed_out
        assert not ended.stopped
        assert ended.returncode == -signal.SIGTERM
        assert 0.5 <= elapsed < 5
        assert agent.lines == ["started"]
        assert _dead(child)
    finally:
        _kill_quietly(child)


async def test_stop_event(tmp_path: Path) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)
    agent = Agent(tmp_path, "echo running; sleep 300")
    started = time.monotonic()
    ended = await agent.run(timeout=30, stop=stop)
    assert ended.stopped
    assert not ended.timed_out
    assert ended.returncode is not None
    assert ended.returncode < 0
    assert time.monotonic() - started < 5
    assert agent.lines == ["running"]


async def test_stop_already_set_stops_at_once(tmp_path: Path) -> None:
    stop = asyncio.Event()
    stop.set()
    agent = Agent(tmp_path, "sleep 300")
    started = time.monotonic()
    ended = await agent.run(timeout=30, stop=stop)
    assert ended.stopped
    assert time.monotonic() - started < 5


async def test_sigterm_ignored_means_sigkill_after_grace(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"trap '' TERM; sleep 300 & echo $! > {pidfile}; echo ready; wait"
    agent = Agent(tmp_path, script, kill_grace=0.6)
    started = time.monotonic()
    ended = await agent.run(timeout=0.4)
    elapsed = time.monotonic() - started
    child = _pid_from(pidfile)
    try:
        assert ended.timed_out
        assert ended.returncode == -signal.SIGKILL
        assert elapsed >= 0.4 + 0.6 - 0.05  # it had its grace period
        assert elapsed < 5
        assert _dead(child)
    finally:
        _kill_quietly(child)


async def test_normal_exit_reaps_a_leftover_background_child(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    agent = Agent(tmp_path, f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}; echo done")
    started = time.monotonic()
    ended = await agent.run(timeout=30)
    child = _pid_from(pidfile)
    try:
        assert ended == Exit(0, timed_out=False, stopped=False)
        assert time.monotonic() - started < 5
        assert agent.lines == ["done"]
        assert _dead(child)
    finally:
        _kill_quietly(child)


async def test_kill_before_start_and_after_exit_is_harmless(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "exit 0")
    await agent.proc.kill()  # not started: nothing to do
    ended = await agent.run()
    await agent.proc.kill()  # already exited: nothing to do
    assert ended.returncode == 0


async def test_normal_exit_with_a_background_child_holding_stdout(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # the agent exits 0.3 s after start, i.e. after wait() has begun (as in the runner)
    agent = Agent(tmp_path, f"sleep 300 & echo $! > {pidfile}; sleep 0.3; echo done")
    await agent.proc.start()
    child = _pid_from(pidfile)
    started = time.monotonic()
    try:
        ended = await asyncio.wait_for(agent.proc.wait(1.5), 3)
        elapsed = time.monotonic() - started
    except TimeoutError:
        ended, elapsed = None, time.monotonic() - started
    finally:
        # clean up whatever happened, so no pipe or process outlives the test
        _kill_quietly(child)
        proc = agent.proc._proc
        assert proc is not None
        await asyncio.wait_for(proc.wait(), 5)
        if agent.proc._reader is not None:
            await asyncio.wait_for(agent.proc._reader, 5)
    assert ended == Exit(0, timed_out=False, stopped=False)
    assert elapsed < 1.5
    assert agent.lines == ["done"]


PRINT_PWD = "import os; print(os.environ.get('PWD', 'unset'))"


async def test_an_agent_is_told_its_own_working_directory_never_the_orchestrators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI that trusts $PWD over getcwd (OpenCode's shell tool) must work in its sandbox,
    not wherever the orchestrator was started (the user's checkout, say)."""
    monkeypatch.setenv("PWD", "/somewhere/the/orchestrator/started")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    proc = AgentProcess(
        [sys.executable, "-c", PRINT_PWD],
        cwd=sandbox,
        env=dict(os.environ),
        stdout_path=tmp_path / "logs" / "stdout.log",
        stderr_path=tmp_path / "logs" / "stderr.log",
        on_line=lambda line: None,
        launcher=PlainLauncher(),
        access=Access(workdir=sandbox, log_dir=tmp_path / "logs"),
    )
    await proc.start()
    await proc.wait(timeout=10)
    assert (tmp_path / "logs" / "stdout.log").read_text().strip() == str(sandbox)
    done = run([sys.executable, "-c", PRINT_PWD], cwd=sandbox, env=dict(os.environ))
    assert done.stdout.strip() == str(sandbox)
