"""Bearer-token protection of the API.

Two kinds of token are accepted: the configured ``api_token`` (everything), and an agent's
per-execution token (see :mod:`claudomator.tokens`), which may only create subtasks of its own
task (checked by the create route) and read that task, and only while its execution is RUNNING.
``request.state.agent_task`` tells routes which task an agent token speaks for (None for full
access).

Without ``api_token`` the API is open (``create_app`` allows that on loopback only), but a
request that carries an agent token is still held to what that token allows: an expired or
forged agent token is refused, never taken as "no token".

The check is an ASGI middleware: it runs before routing, so nothing of a request (its body
above all) is read or parsed for a caller without a valid token.
"""

from __future__ import annotations

import asyncio
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
from claudomator.errors import StoreError
from claudomator.service import Service

logger = logging.getLogger(__name__)

_OWN_TASK = re.compile(r"^/api/tasks/([^/]+)$")
# open without a token: liveness, and the webhook GitHub signs itself
OPEN_PATHS = frozenset({"/api/health", GITHUB_WEBHOOK_PATH})


# the API's description is guarded with it (the /docs page and its files hold no data: the
# page fetches the description with the token, see claudomator.api.docs)
DOC_PATHS = frozenset({"/openapi.json"})


def is_guarded(path: str) -> bool:
    """Whether ``path`` needs the token: the API, its metrics and its description (not the
    pages and files of the web UI and of /docs, which hold no data)."""
    if path in OPEN_PATHS:
        return False
    return (
        path in DOC_PATHS or path in ("/api", "/metrics") or path.startswith(("/api/", "/metrics/"))
    )


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
FORGED = Refusal(401, "not a valid agent token (wrong signature, or from an older Claudomator)")
AGENT_LIMIT = Refusal(403, "an agent token may only create subtasks of its task and read that task")


class TokenCheck:
    """Decides who a request speaks for, from its method, path and ``Authorization`` header.

    ``key`` is the agent-token key, loaded once when the app is made; ``service`` answers
    whether an agent token's execution still runs.
    """

    def __init__(self, settings: Settings, key: bytes, service: Service) -> None:
        self.settings = settings
        self.key = key
        self.service = service

    def needs_store(self, authorization: str) -> bool:
        """Whether :meth:`decide` will read the store (an agent token): run it in a thread."""
        return tokens.is_agent_token(_bearer(authorization))

    def decide(self, method: str, path: str, authorization: str) -> Access | Refusal:
        given = _bearer(authorization)
        api_token = self.settings.api_token
        if given and api_token and hmac.compare_digest(given.encode(), api_token.encode()):
            return Access()
        if tokens.is_agent_token(given):
            return self._agent(method, path, given)
        return Access() if not api_token else UNAUTHORIZED

    def _agent(self, method: str, path: str, token: str) -> Access | Refusal:
        grant = tokens.grant_of(self.key, token)
        if grant is None:
            return FORGED
        if not self.service.execution_running(grant.task_id, grant.execution_id):
            return Refusal(
                401,
                f"this agent token has expired: execution {grant.execution_id} of task "
                f"{grant.task_id} is not running",
            )
        own = _OWN_TASK.match(path)
        if (method == "POST" and path == "/api/tasks") or (
            method == "GET" and own is not None and own.group(1) == grant.task_id
        ):
            return Access(agent_task=grant.task_id)
        return AGENT_LIMIT


def _bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" for anything else)."""
    scheme, _, given = authorization.partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


class TokenGuard:
    """ASGI middleware: refuse guarded paths without a valid token, before reading the body."""

    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization", "")
        decision: Access | Refusal
        try:
            if self.check.needs_store(authorization):
                decision = await asyncio.to_thread(
                    self.check.decide, scope["method"], scope["path"], authorization
                )
            else:
                decision = self.check.decide(scope["method"], scope["path"], authorization)
        except StoreError as exc:
            logger.error("cannot check an agent token: %s", exc, extra={"action": "auth"})
            decision = Refusal(503, f"cannot check the agent token: {exc}")
        if isinstance(decision, Refusal):
            extra = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            response = JSONResponse(
                {"error": decision.message}, status_code=decision.status, headers=extra
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["agent_task"] = decision.agent_task
        await self.app(scope, receive, send)
