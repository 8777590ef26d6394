"""Agent start latency under confinement: how long from spawning an agent to its first
stream-json line, through the real :class:`~claudomator.process.AgentProcess`, with the ``plain``
launcher, under bubblewrap, and under bubblewrap with ``network = "model-only"`` (the outer
proxy, a network namespace of its own, the inner gate with one loopback forwarder), in the same
run.

The agent is a POSIX shell script that prints one ``{"type":"system","subtype":"init",...}``
line and exits, so the figure is the cost of starting a process (and, under bubblewrap, of
building its namespaces and mounts), not of an agent. Each start is timed from just before
:meth:`AgentProcess.start` to the first line handed to ``on_line``; the two launchers take
turns (plain, bubblewrap, model-only, plain, ...) ``BENCH_ISOLATION_RUNS`` times each (40;
smoke: 3) so that all see the same machine load, after one untimed start of each; medians are
reported, and the ratios to plain.

Bubblewrap's side uses ``claudomator.isolation.bubblewrap`` (its ``make_launcher(settings)``)
when that module is installed; until then it calls bwrap directly with the confinement the
launcher is to apply (:class:`DirectBwrap`: new user, pid, net, ipc and uts namespaces, the
system read-only, the working and log directories read-write, a private /tmp, /proc and /dev),
and the result's notes say which one was measured.

Target: bubblewrap adds under 30 ms per start (median against median), and model-only under
80 ms more than bubblewrap (two more Python processes start: the proxy and the gate). Model-only
is measured only with the launcher module (not with :class:`DirectBwrap`).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from benchlib import Figure, Result, env_int, fake_claude, isolated, log, median, scratch
from claudomator.config import load_settings
from claudomator.isolation.base import MODEL_ONLY, OPEN, Access, Launcher
from claudomator.isolation.plain import PlainLauncher
from claudomator.process import AgentProcess

NAME = "isolation"
TITLE = "Agent start under bubblewrap"
LIMIT_MS = 30.0
MODEL_ONLY_LIMIT_MS = 80.0
MODEL_ENDPOINT = "http://127.0.0.1:9999"  # a loopback endpoint: the gate starts its forwarder
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")


class DirectBwrap:
    """bwrap called directly with the launcher's confinement (the benchmark's stand-in while
    ``claudomator.isolation.bubblewrap`` is not installed)."""

    name = "bwrap (direct)"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def wrap(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], paths: Access
    ) -> tuple[list[str], dict[str, str]]:
        args = [self.binary, "--unshare-user", "--unshare-pid", "--unshare-net"]
        args += ["--unshare-ipc", "--unshare-uts", "--die-with-parent"]
        for system in SYSTEM_DIRS:
            where = Path(system)
            if where.is_symlink():
                args += ["--symlink", os.readlink(where), system]
            elif where.is_dir():
                args += ["--ro-bind", system, system]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in paths.readable:
            args += ["--ro-bind", str(path), str(path)]
        for path in paths.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--ro-bind", str(Path(argv[0]).parent), str(Path(argv[0]).parent)]
        args += ["--chdir", str(cwd), "--", *argv]
        return args, dict(env)


def bubblewrap_launcher(binary: str) -> tuple[Launcher, str]:
    """The launcher module's bubblewrap when it is installed, else :class:`DirectBwrap`; and
    which one, in words."""
    try:
        module = importlib.import_module("claudomator.isolation.bubblewrap")
    except ModuleNotFoundError:
        return DirectBwrap(
            binary
        ), "bwrap called directly (claudomator.isolation.bubblewrap absent)"
    factory = cast(Callable[[object], Launcher], module.make_launcher)
    return factory(load_settings()), "claudomator.isolation.bubblewrap's launcher"


async def _first_line(
    launcher: Launcher, agent: Path, root: Path, n: int, network: str = OPEN
) -> float:
    """Seconds from spawning ``agent`` through ``launcher`` (with ``network``) to its first
    stdout line."""
    work = root / "work" / str(n)
    logs = root / "logs" / str(n)
    work.mkdir(parents=True)
    logs.mkdir(parents=True)
    first = asyncio.Event()

    def on_line(line: str) -> None:
        first.set()

    process = AgentProcess(
        [str(agent), "-p", "hello"],
        cwd=work,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root / "home")},
        stdout_path=logs / "stdout.log",
        stderr_path=logs / "stderr.log",
        on_line=on_line,
        launcher=launcher,
        access=Access(
            workdir=work,
            log_dir=logs,
            agent_paths=(agent.parent,),
            network=network,
            endpoints=(MODEL_ENDPOINT,) if network == MODEL_ONLY else (),
        ),
        kill_grace=2.0,
    )
    started = time.perf_counter()
    await process.start()
    await asyncio.wait_for(first.wait(), 30)
    elapsed = time.perf_counter() - started
    done = await process.wait(60)
    if done.returncode != 0:
        stderr = (logs / "stderr.log").read_text(errors="replace")
        raise RuntimeError(f"{launcher.name}: agent exited {done.returncode}: {stderr[-500:]}")
    return elapsed


async def _measure(
    runs: int, root: Path, bwrap: Launcher, model_only: bool
) -> tuple[list[float], list[float], list[float]]:
    """Start times of plain, bubblewrap and (when ``model_only``) model-only, taking turns."""
    agent = fake_claude(root / "agent")
    plain: Launcher = PlainLauncher()
    sides = [(plain, OPEN), (bwrap, OPEN)] + ([(bwrap, MODEL_ONLY)] if model_only else [])
    n = 0
    for launcher, network in sides:  # untimed: page the binaries in
        await _first_line(launcher, agent, root, n, network)
        n += 1
    times: list[list[float]] = [[], [], []]
    for _ in range(runs):
        for index, (launcher, network) in enumerate(sides):
            times[index].append(await _first_line(launcher, agent, root, n, network))
            n += 1
    return times[0], times[1], times[2]


def run(size: str) -> Result:
    runs = env_int("BENCH_ISOLATION_RUNS", 40, 3, size)
    binary = shutil.which("bwrap")
    if binary is None:
        log("  bwrap is not on PATH: nothing to compare")
        return Result(
            name=NAME,
            title=TITLE,
            figures=[],
            ratio=None,
            target=f"bubblewrap adds < {LIMIT_MS:g} ms per start",
            passed=False,
            headline="bwrap not installed",
            notes=["bwrap is not on PATH (apt-get install bubblewrap)"],
            params={"runs": runs},
        )
    with scratch("isolation") as root, isolated(root):
        (root / "home").mkdir(exist_ok=True)
        launcher, which = bubblewrap_launcher(binary)
        model_only = not isinstance(launcher, DirectBwrap)
        plain_times, bwrap_times, model_times = asyncio.run(
            _measure(runs, root, launcher, model_only)
        )
    plain_ms = median(plain_times) * 1000
    bwrap_ms = median(bwrap_times) * 1000
    added = bwrap_ms - plain_ms
    log(f"  plain {plain_ms:.1f} ms, bubblewrap {bwrap_ms:.1f} ms (+{added:.1f} ms; {which})")
    figures = [
        Figure("plain: spawn to first line", plain_ms, "ms"),
        Figure("bubblewrap: spawn to first line", bwrap_ms, "ms"),
        Figure("added by bubblewrap", added, "ms"),
        Figure("bubblewrap / plain", bwrap_ms / plain_ms, "x"),
    ]
    headline = f"+{added:.1f} ms per start ({plain_ms:.1f} -> {bwrap_ms:.1f} ms)"
    passed = added < LIMIT_MS
    notes = [f"bubblewrap side: {which}"]
    if model_times:
        model_ms = median(model_times) * 1000
        more = model_ms - bwrap_ms
        log(f"  model-only {model_ms:.1f} ms (+{more:.1f} ms over bubblewrap)")
        figures += [
            Figure("model-only: spawn to first line", model_ms, "ms"),
            Figure("added by model-only over bubblewrap", more, "ms"),
            Figure("model-only / plain", model_ms / plain_ms, "x"),
            Figure("model-only / bubblewrap", model_ms / bwrap_ms, "x"),
        ]
        headline += f"; model-only +{more:.1f} ms more ({model_ms:.1f} ms)"
        passed = passed and more < MODEL_ONLY_LIMIT_MS
    else:
        notes.append("model-only not measured: it needs claudomator.isolation.bubblewrap")
    return Result(
        name=NAME,
        title=TITLE,
        figures=figures,
        ratio=bwrap_ms / plain_ms,
        target=(
            f"bubblewrap adds < {LIMIT_MS:g} ms per start; model-only < "
            f"{MODEL_ONLY_LIMIT_MS:g} ms more"
        ),
        passed=passed,
        headline=headline,
        notes=notes,
        params={"runs": runs},
    )
