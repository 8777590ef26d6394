"""Per-execution agent tokens: what an agent may do through the API on its own behalf.

An agent gets ``CLAUDOMATOR_API_TOKEN`` = ``ct2.<task-id>.<execution-id>.<mac>``, where the MAC
is an HMAC-SHA256 of the task and execution ids under a key kept in the data directory (created
once, mode 0600). The API accepts it for exactly two things, creating subtasks of that task and
reading that task, and only while that execution is RUNNING (the API asks the store): the token
of a finished, failed or cancelled execution is worth nothing. Every process sharing the data
directory shares the key, so tokens minted by a pool in ``claudomator run`` are understood by
``claudomator serve``. Tokens of the older form ``ct1.<task-id>.<mac>`` (valid forever) are
refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "ct2"
_AGENT_PREFIXES = ("ct1.", "ct2.")
_KEY_FILE = "agent-token.key"


def key_path(data_dir: Path) -> Path:
    """Where the signing key of ``data_dir`` is kept."""
    return data_dir / _KEY_FILE


def existing_key(data_dir: Path) -> bytes | None:
    """The signing key of ``data_dir`` if it has one (never creates it)."""
    try:
        return bytes.fromhex(key_path(data_dir).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def token_key(data_dir: Path) -> bytes:
    """The signing key, created if the data dir has none yet (never logged).

    Called when a process starts (:meth:`claudomator.service.Service.open`, ``create_app``);
    ``serve`` checks every token against the copy it loaded then, so a key that appears later
    (in a data dir moved away under it, say) is never honoured by it. Minting at run time uses
    :func:`agent_token`, which never creates a key.
    """
    path = key_path(data_dir)
    key = existing_key(data_dir)
    if key is not None:
        return key
    logger.info("creating the agent-token key %s", path, extra={"action": "token_key"})
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


@dataclass(frozen=True)
class AgentGrant:
    """Who a valid agent token speaks for: one execution of one task."""

    task_id: str
    execution_id: str


def _mac(key: bytes, task_id: str, execution_id: str) -> str:
    message = f"{PREFIX}\n{task_id}\n{execution_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def mint(key: bytes, task_id: str, execution_id: str) -> str:
    """The agent token of execution ``execution_id`` of task ``task_id``."""
    if "." in execution_id or not execution_id:
        raise ValueError(f"an execution id for a token has no '.': {execution_id!r}")
    return f"{PREFIX}.{task_id}.{execution_id}.{_mac(key, task_id, execution_id)}"


def agent_token(data_dir: Path, task_id: str, execution_id: str) -> str:
    """The token to give the agent of this execution; "" (no API access, logged) if the data
    dir has lost its key, which is never re-created here."""
    key = existing_key(data_dir)
    if key is None:
        logger.warning(
            "no agent-token key at %s (was the data dir moved?): execution %s gets no API token",
            key_path(data_dir),
            execution_id,
            extra={"action": "token_key"},
        )
        return ""
    return mint(key, task_id, execution_id)


def is_agent_token(token: str) -> bool:
    """Whether ``token`` has the form of an agent token (of this or an older version)."""
    return token.startswith(_AGENT_PREFIXES)


def grant_of(key: bytes, token: str) -> AgentGrant | None:
    """Who an agent token speaks for, or None if it is not a valid (current) agent token.

    Only the signature is checked here: whether the execution still runs is the caller's
    question to the store.
    """
    prefix, _, rest = token.partition(".")
    rest, _, mac = rest.rpartition(".")
    task_id, _, execution_id = rest.rpartition(".")
    if prefix != PREFIX or not task_id or not execution_id or not mac:
        return None
    if not hmac.compare_digest(mac, _mac(key, task_id, execution_id)):
        return None
    return AgentGrant(task_id, execution_id)
