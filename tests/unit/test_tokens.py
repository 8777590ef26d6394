"""Per-task agent tokens."""

from __future__ import annotations

import stat
from pathlib import Path

from claudomator import tokens


def test_a_token_speaks_for_its_task_only(tmp_path: Path) -> None:
    key = tokens.token_key(tmp_path)
    token = tokens.mint(key, "task-1")
    assert tokens.task_of(key, token) == "task-1"
    assert tokens.task_of(key, token.replace("task-1", "task-2")) is None
    assert tokens.task_of(key, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert tokens.task_of(key, "task-1") is None
    assert tokens.task_of(key, "") is None
    other = tokens.token_key(tmp_path / "elsewhere")
    assert tokens.task_of(other, token) is None


def test_the_key_is_created_once_private_and_shared(tmp_path: Path) -> None:
    first = tokens.token_key(tmp_path)
    assert tokens.token_key(tmp_path) == first
    [key_file] = [p for p in tmp_path.iterdir() if p.suffix == ".key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 32
