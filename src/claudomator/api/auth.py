"""Bearer-token protection of the API (when ``api_token`` is configured).

Two kinds of token are accepted: the configured ``api_token`` (everything), and an agent's
per-task token (see :mod:`claudomator.tokens`), which may only create subtasks of its own task
(checked by the create route) and read that task. ``request.state.agent_task`` tells routes
which task an agent token speaks for (None for full access).

The check is an ASGI middleware: it runs before routing, so nothing of a request (its body
above all) is read or parsed for a caller without a valid token.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from claudomator import tokens
from claudomator.api.webhooks import GITHUB_WEBHOOK_PATH
from claudomator.config import Settings

logger = logging.getLogger(__name__)

_OWN_TASK = re.compile(r"^/api/tasks/([^/]+)$")
# open without a token: liveness, and the webhook GitHub signs itself
OPEN_PATHS = frozenset({"/api/health", GITHUB_WEBHOOK_PATH})


def is_guarded(path: str) -> bool:
    """Whether ``path`` needs the token (the API; not the web UI's files)."""
    if path in OPEN_PATHS:
        return False
    return path == "/api" or path.startswith("/api/")


@dataclass(frozen=True)
class Access:
    """A request may go on; ``agent_task`` is the task an agent token speaks for (None: all)."""

    agent_task: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A request is refused with ``status`` and ``message``."""

    status: int
    message: str


UNAUTHORIZED = Refusal(401, "missing or wrong API token (send Authorization: Bearer <api_token>)")
AGENT_LIMIT = Refusal(403, "an agent token may only create subtasks of its task and read that task")


class TokenCheck:
    """Decides who a request speaks for, from its method, path and ``Authorization`` header."""

    def __init__(self, settings: Settings, key: bytes) -> None:
        self.settings = settings
        self.key = key

    def decide(self, method: str, path: str, authorization: str) -> Access | Refusal:
        if not self.settings.api_token:
            return Access()
        scheme, _, given = authorization.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return UNAUTHORIZED
        if hmac.compare_digest(given.encode("utf-8"), self.settings.api_token.encode("utf-8")):
            return Access()
        task_id = tokens.task_of(self.key, given)
        if task_id is None:
            return UNAUTHORIZED
        own = _OWN_TASK.match(path)
        if (method == "POST" and path == "/api/tasks") or (
            method == "GET" and own is not None and own.group(1) == task_id
        ):
            return Access(agent_task=task_id)
        return AGENT_LIMIT


class TokenGuard:
    """ASGI middleware: refuse guarded paths without a valid token, before reading the body."""

    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        decision = self.check.decide(
            scope["method"], scope["path"], headers.get("authorization", "")
        )
        if isinstance(decision, Refusal):
            extra = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            response = JSONResponse(
                {"error": decision.message}, status_code=decision.status, headers=extra
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["agent_task"] = decision.agent_task
        await self.app(scope, receive, send)
