"""Per-execution agent tokens."""

from __future__ import annotations

import stat
from pathlib import Path

from claudomator import tokens


def test_a_token_speaks_for_its_execution_only(tmp_path: Path) -> None:
    key = tokens.token_key(tmp_path)
    token = tokens.mint(key, "task-1", "exec-1")
    assert tokens.grant_of(key, token) == tokens.AgentGrant("task-1", "exec-1")
    assert tokens.grant_of(key, token.replace("task-1", "task-2")) is None
    assert tokens.grant_of(key, token.replace("exec-1", "exec-2")) is None
    assert tokens.grant_of(key, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert tokens.grant_of(key, "task-1") is None
    assert tokens.grant_of(key, "") is None
    other = tokens.token_key(tmp_path / "elsewhere")
    assert tokens.grant_of(other, token) is None
    dotted = tokens.mint(key, "a.b.c", "exec-1")  # task ids may hold dots
    assert tokens.grant_of(key, dotted) == tokens.AgentGrant("a.b.c", "exec-1")


def test_old_tokens_look_like_agent_tokens_but_grant_nothing(tmp_path: Path) -> None:
    key = tokens.token_key(tmp_path)
    old = "ct1.task-1." + "0" * 40
    assert tokens.is_agent_token(old)
    assert tokens.grant_of(key, old) is None
    assert not tokens.is_agent_token("the-api-token")


def test_the_key_is_created_once_private_and_shared(tmp_path: Path) -> None:
    first = tokens.token_key(tmp_path)
    assert tokens.token_key(tmp_path) == first
    [key_file] = [p for p in tmp_path.iterdir() if p.suffix == ".key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 32
