"""An agent that floods stdout: all of it is logged, the orchestrator's memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from robust import CLAUDOMATOR, RssSampler, cli_env, db_rows, size

from conftest import MakeRepo

MB = 1024 * 1024
FLOOD = size(32 * MB, 500 * MB)
GROWTH_LIMIT = 48 * MB  # what the orchestrator's RSS may grow by while the agent streams


@pytest.mark.heavy
@pytest.mark.parametrize("shape", ["text", "garbage", "oneline"])
def test_flooding_agent_is_logged_to_disk_with_bounded_memory(
    tmp_path: Path, make_repo: MakeRepo, shape: str
) -> None:
    project = make_repo()
    env = cli_env(tmp_path)
    taskfile = tmp_path / "task.yaml"
    taskfile.write_text(
        f"name: flood\nagent: {{instructions: 'ROBUST[flood:{FLOOD}:{shape}]', "
        f"project_dir: {project}}}\n"
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [CLAUDOMATOR, "run", str(taskfile)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = Path(env["CLAUDOMATOR_DATA_DIR"]) / "claudomator.db"
    with RssSampler(proc.pid) as rss:
        # the baseline: the orchestrator with everything imported and the agent started
        while not db_rows(db, "select id from executions where pid is not null"):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        baseline = rss.samples[-1]
        _, err = proc.communicate(timeout=size(120, 280))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err
    [(state,)] = db_rows(db, "select state from tasks")
    assert state == "COMPLETED"
    [(stdout_path, summary)] = db_rows(db, "select stdout_path, summary from executions")
    log = Path(str(stdout_path))
    assert log.stat().st_size >= FLOOD
    with log.open("rb") as fh:
        fh.seek(-4096, 2)
        last = fh.read().splitlines()[-1]
    assert json.loads(last)["type"] == "result"  # the end of the stream is on disk too
    assert summary == "Flooded."
    growth = rss.peak - baseline
    print(
        f"{shape}: {FLOOD // MB} MB in {elapsed:.1f}s; RSS {baseline // MB} MB at start, "
        f"peak {rss.peak // MB} MB"
    )
    assert growth < GROWTH_LIMIT, f"RSS grew by {growth // MB} MB while the agent streamed"


def test_stream_parsers_keep_only_the_newest_text() -> None:
    """What the parsers keep of an agent's words is bounded; the last summary survives."""
    from claudomator.agents.base import MAX_KEPT_TEXT
    from claudomator.agents.claude_stream import ClaudeStream
    from claudomator.agents.gemini_stream import GeminiStream
    from claudomator.summary import from_text

    claude, gemini = ClaudeStream(), GeminiStream()
    words = "w" * 9999
    for _ in range(size(1000, 10000)):
        event = {"type": "assistant", "message": {"content": [{"type": "text", "text": words}]}}
        claude.feed(json.dumps(event))
        gemini.feed(json.dumps({"type": "message", "role": "assistant", "content": words}))
    claude.feed(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "text", "text": "## Summary\nAll done."}]}}))  # fmt: skip
    gemini.feed(json.dumps({"type": "message", "role": "assistant", "content": "\n## Summary\nOK"}))
    assert len(claude.text) <= 2 * MAX_KEPT_TEXT + 100
    assert len(gemini.text) <= 2 * MAX_KEPT_TEXT + 100
    assert from_text(claude.text) == "All done."
    assert from_text(gemini.text) == "OK"
