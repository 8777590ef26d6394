"""Log ingestion: a big Claude stream-json log through our reader vs reading the file raw.

The log (generated once into ``bench/.cache/``) mixes the event kinds of a real run: init,
assistant text and tool_use blocks, tool results (some large), api_retry lines, result lines.

Measured, each the median of ``BENCH_LOGS_RUNS`` runs on a hot page cache:

* raw: reading the file in 64 KiB chunks (the floor: nothing is parsed);
* parse: the file split into lines and fed to :class:`ClaudeStream` (the runner's parser);
* ingest: the real ingestion path, end to end: an agent process (``cat``) writes the log to its
  stdout, :class:`AgentProcess` pumps the pipe into ``stdout.log`` and hands each line to
  :class:`ClaudeStream`;
* describe: the log rendered by :func:`logview.describe` (what ``claudomator logs`` shows).

Size: ``BENCH_LOGS_MB`` (200).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path

from benchlib import CACHE, Figure, Result, env_int, log, median, scratch
from claudomator import logview
from claudomator.agents.claude_stream import ClaudeStream
from claudomator.isolation.base import Access
from claudomator.isolation.plain import PlainLauncher
from claudomator.process import AgentProcess

NAME = "logs"
TITLE = "Log ingestion"
_MB = 1_000_000
_CHUNK = 64 * 1024


def _events(rng: random.Random, session: str) -> list[dict[str, object]]:
    """The lines of one model turn: text, a tool call, its result."""
    message_id = f"msg_{rng.getrandbits(64):016x}"
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 200)))
    tool_id = f"toolu_{rng.getrandbits(64):016x}"
    output = "\n".join(
        " ".join(rng.choice(_WORDS) for _ in range(12)) for _ in range(rng.choice((3, 30, 300)))
    )
    usage = {"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 9000}
    return [
        {
            "type": "assistant",
            "message": {
                "id": message_id,
                "model": "claude-opus-5-5",
                "role": "assistant",
                "content": [{"type": "text", "text": words}],
                "usage": usage,
            },
            "parent_tool_use_id": None,
            "session_id": session,
            "uuid": f"{rng.getrandbits(128):032x}",
        },
        {
            "type": "assistant",
            "message": {
                "id": message_id,
                "model": "claude-opus-5-5",
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "Bash",
                        "input": {"command": "make test", "description": "run the tests"},
                    }
                ],
                "usage": usage,
            },
            "parent_tool_use_id": None,
            "session_id": session,
            "uuid": f"{rng.getrandbits(128):032x}",
        },
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "content": output,
                        "is_error": False,
                    }
                ],
            },
            "tool_use_result": {"stdout": output, "stderr": "", "interrupted": False},
            "session_id": session,
            "uuid": f"{rng.getrandbits(128):032x}",
        },
    ]


_TEXT = (
    "the function returns a value when the test passes and otherwise raises an error "
    'déjà vu naïve café 漢字 λ → ✓ src/claudomator/pool.py:123 {json: [1, 2]} "quoted"'
)
_WORDS = _TEXT.split()


def ensure_log(megabytes: int) -> Path:
    """A stream-json log of about ``megabytes`` MB, generated once."""
    path = CACHE / "logs" / f"stream-{megabytes}mb.jsonl"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"  generating a {megabytes} MB stream-json log (one time) ...")
    rng = random.Random(6)
    session = "77777777-7777-4777-8777-777777777777"
    target = megabytes * _MB
    written = 0
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        init = {"type": "system", "subtype": "init", "session_id": session, "model": "m"}
        out.write(json.dumps(init) + "\n")
        turn = 0
        while written < target:
            turn += 1
            lines = _events(rng, session)
            if turn % 50 == 0:
                lines.append(
                    {
                        "type": "system",
                        "subtype": "api_retry",
                        "attempt": 1,
                        "max_retries": 10,
                        "retry_delay_ms": 1000,
                        "error_status": 429,
                        "error": "rate_limit",
                    }
                )
            for event in lines:
                text = json.dumps(event, ensure_ascii=False) + "\n"
                out.write(text)
                written += len(text.encode())
        result = {"type": "result", "subtype": "success", "is_error": False, "result": "done"}
        out.write(json.dumps(result) + "\n")
    partial.rename(path)
    return path


def read_raw(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as fh:
        while fh.read(_CHUNK):
            pass
    return time.perf_counter() - started


def parse(path: Path) -> float:
    """The runner's parser over the file, line by line as the pump hands them over."""
    started = time.perf_counter()
    stream = ClaudeStream()
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                stream.feed(line)
    elapsed = time.perf_counter() - started
    if stream.result is None or stream.bad_lines:
        raise RuntimeError("the parser did not read the log correctly")
    return elapsed


def describe(path: Path) -> float:
    started = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            logview.describe(line)
    return time.perf_counter() - started


async def _ingest(path: Path, work: Path) -> float:
    stream = ClaudeStream()
    proc = AgentProcess(
        ["cat", str(path)],
        cwd=work,
        env={"PATH": "/usr/bin:/bin"},
        stdout_path=work / "stdout.log",
        stderr_path=work / "stderr.log",
        on_line=stream.feed,
        launcher=PlainLauncher(),
        access=Access(workdir=work, log_dir=work),
        kill_grace=1.0,
    )
    started = time.perf_counter()
    await proc.start()
    ended = await proc.wait(timeout=600)
    elapsed = time.perf_counter() - started
    if ended.returncode != 0 or stream.result is None or stream.bad_lines:
        raise RuntimeError(f"ingestion failed: exit {ended.returncode}, {stream.bad_lines} bad")
    return elapsed


def ingest(path: Path) -> float:
    with scratch("logs-") as work:
        elapsed = asyncio.run(_ingest(path, work))
        if os.path.getsize(work / "stdout.log") != os.path.getsize(path):
            raise RuntimeError("stdout.log is not a copy of the agent's output")
        return elapsed


def run(size: str = "full") -> Result:
    megabytes = env_int("BENCH_LOGS_MB", 200, 5, size)
    runs = env_int("BENCH_LOGS_RUNS", 3, 1, size)
    path = ensure_log(megabytes)
    mb = path.stat().st_size / _MB
    read_raw(path)  # warm the page cache
    timings: dict[str, list[float]] = {"raw": [], "parse": [], "ingest": [], "describe": []}
    for r in range(runs):
        timings["raw"].append(read_raw(path))
        timings["parse"].append(parse(path))
        timings["ingest"].append(ingest(path))
        timings["describe"].append(describe(path))
        log(
            f"  logs run {r + 1}: "
            + ", ".join(f"{k} {mb / v[-1]:.0f} MB/s" for k, v in timings.items())
        )
    med = {k: median(v) for k, v in timings.items()}
    ratio = med["ingest"] / med["raw"]
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("log size", mb, "MB"),
            Figure("raw read", mb / med["raw"], "MB/s"),
            Figure("parse (ClaudeStream)", mb / med["parse"], "MB/s"),
            Figure("ingest (pipe -> stdout.log + parse)", mb / med["ingest"], "MB/s"),
            Figure("describe (logview)", mb / med["describe"], "MB/s"),
            Figure("ingest time", med["ingest"], "s"),
        ],
        ratio=ratio,
        target="report MB/s (no target)",
        passed=True,
        headline=f"ingest {mb / med['ingest']:.0f} MB/s ({ratio:.1f}x raw read)",
        params={"megabytes": megabytes, "runs": runs},
    )
