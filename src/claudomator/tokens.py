"""Per-task agent tokens: what an agent may do through the API on its own behalf.

An agent gets ``CLAUDOMATOR_API_TOKEN`` = ``ct1.<task-id>.<mac>``, where the MAC is an
HMAC-SHA256 of the task id under a key kept in the data directory (created once, mode 0600). The
API accepts it, when ``api_token`` protects the API, for exactly two things: creating subtasks
of that task and reading that task. Every process sharing the data directory shares the key, so
tokens minted by ``claudomator run`` are understood by ``claudomator serve``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

PREFIX = "ct1"
_KEY_FILE = "agent-token.key"


def token_key(data_dir: Path) -> bytes:
    """The signing key, created on first use (never logged)."""
    path = data_dir / _KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex())
    try:
        os.link(temp, path)  # the first writer wins; everyone then reads its key
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _mac(key: bytes, task_id: str) -> str:
    return hmac.new(key, task_id.encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def mint(key: bytes, task_id: str) -> str:
    """The agent token of ``task_id``."""
    return f"{PREFIX}.{task_id}.{_mac(key, task_id)}"


def task_of(key: bytes, token: str) -> str | None:
    """The task id an agent token speaks for, or None if it is not a valid agent token."""
    prefix, _, rest = token.partition(".")
    task_id, _, mac = rest.rpartition(".")
    if prefix != PREFIX or not task_id or not mac:
        return None
    return task_id if hmac.compare_digest(mac, _mac(key, task_id)) else None
