"""Bearer-token protection of the API (when ``api_token`` is configured).

Two kinds of token are accepted: the configured ``api_token`` (everything), and an agent's
per-task token (see :mod:`claudomator.tokens`), which may only create subtasks of its own task
(checked by the create route) and read that task. ``request.state.agent_task`` tells routes
which task an agent token speaks for (None for full access).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable

from fastapi import HTTPException, Request

from claudomator import tokens
from claudomator.config import Settings

_OWN_TASK = re.compile(r"^/api/tasks/([^/]+)$")


def token_guard(settings: Settings) -> Callable[[Request], None]:
    """A dependency that refuses requests without a valid ``Authorization: Bearer`` token."""
    key = tokens.token_key(settings.data_dir)

    def require_token(request: Request) -> None:
        request.state.agent_task = None
        if not settings.api_token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise _unauthorized()
        if hmac.compare_digest(given.encode("utf-8"), settings.api_token.encode("utf-8")):
            return
        task_id = tokens.task_of(key, given)
        if task_id is None:
            raise _unauthorized()
        path, method = request.url.path, request.method
        own = _OWN_TASK.match(path)
        if (method == "POST" and path == "/api/tasks") or (
            method == "GET" and own is not None and own.group(1) == task_id
        ):
            request.state.agent_task = task_id
            return
        raise HTTPException(
            status_code=403,
            detail="an agent token may only create subtasks of its task and read that task",
        )

    return require_token


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="missing or wrong API token (send Authorization: Bearer <api_token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )
