"""Shared helpers of the benchmarks: results, machine description, fake agents, isolation.

Every benchmark module exposes ``NAME``, ``TITLE`` and ``run(size: str) -> Result``; ``size`` is
``"full"`` (the figures of issue 6) or ``"smoke"`` (tiny, for a quick check of the machinery).
Sizes can also be overridden one by one with environment variables, named in each module.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("BENCH_CACHE") or HERE / ".cache")  # generated data
RESULTS = HERE / "results"

sys.path.insert(0, str(ROOT / "src"))

# A valid Claude Code stream-json run: init, one assistant text block, the result line.
SESSION = "77777777-7777-4777-8777-777777777777"
INIT_LINE = json.dumps(
    {
        "type": "system",
        "subtype": "init",
        "cwd": "/tmp",
        "session_id": SESSION,
        "model": "claude-opus-5-5",
        "permissionMode": "bypassPermissions",
    }
)
RESULT_LINE = json.dumps(
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "api_error_status": None,
        "num_turns": 1,
        "result": "## Summary\nNothing to do.",
        "stop_reason": "end_turn",
        "session_id": SESSION,
        "total_cost_usd": 0.0016,
        "usage": {"input_tokens": 200, "output_tokens": 40},
        "modelUsage": {"claude-opus-5-5": {"inputTokens": 200, "outputTokens": 40}},
        "permission_denials": [],
        "terminal_reason": "completed",
    }
)


@dataclass
class Figure:
    """One measured figure (for the table and the JSON file)."""

    name: str
    value: float
    unit: str


@dataclass
class Result:
    """What one benchmark measured, and whether it met its target."""

    name: str
    title: str
    figures: list[Figure]
    ratio: float | None  # the headline ratio against the baseline (None if not a ratio)
    target: str  # the target in words, e.g. "ratio <= 1.25"
    passed: bool
    headline: str  # the main figure in words, for the table
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    date: str = ""

    def figure(self, name: str) -> float:
        return next(f.value for f in self.figures if f.name == name)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, Python and load: what makes figures comparable."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor() or "unknown",
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(load[0], 2),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(result: Result) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result.machine = result.machine or machine()
    result.date = result.date or now_iso()
    path = RESULTS / f"{result.name}.json"
    path.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return path


def read_result(path: Path) -> Result:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["figures"] = [Figure(**f) for f in data["figures"]]
    return Result(**data)


def env_int(name: str, full: int, smoke: int, size: str) -> int:
    """A size parameter: ``$name`` if set, else the full or smoke default."""
    raw = os.environ.get(name)
    if raw:
        return int(raw)
    return smoke if size == "smoke" else full


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_claude(directory: Path, *, sleep: float = 0.0) -> Path:
    """A tiny stand-in for the Claude Code CLI: accepts any argv, prints a valid stream-json run
    (init line and result line) and exits 0, after sleeping ``sleep`` seconds if asked.

    A POSIX shell script, so that its own cost is as small as a process can be: the benchmark
    then measures Claudomator, not the agent.
    """
    nap = f"sleep {sleep:g}\n" if sleep else ""
    script = f"#!/bin/sh\n{nap}cat <<'EOF'\n{INIT_LINE}\n{RESULT_LINE}\nEOF\n"
    return write_executable(directory / ("claude-sleep" if sleep else "claude-fake"), script)


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory for a data dir, outside any git repository (as a real data dir
    is: inside one, every scratch project would cost git an extra ``check-ignore``)."""
    with tempfile.TemporaryDirectory(prefix=f"claudomator-bench-{prefix}") as tmp:
        yield Path(tmp)


@contextmanager
def isolated(root: Path) -> Iterator[dict[str, str]]:
    """HOME, git identity and the data dir under ``root`` (as the tests do); restored after."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    updates = {
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "CLAUDOMATOR_DATA_DIR": str(root / "data"),
    }
    saved = {k: os.environ.get(k) for k in [*updates, "CLAUDOMATOR_CONFIG"]}
    os.environ.update(updates)
    os.environ.pop("CLAUDOMATOR_CONFIG", None)
    try:
        yield dict(os.environ)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size of a process in KiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
