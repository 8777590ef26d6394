"""GitHub webhooks: a failed CI check becomes a queued task that fixes it.

``POST /api/webhooks/github`` is not behind the API token (GitHub cannot send one); every
delivery is authenticated by its ``X-Hub-Signature-256`` header, HMAC-SHA256 of the raw body
with ``webhook_secret``. Without a configured secret every delivery is refused: an unsigned
hook is never accepted. Neither the secret nor a signature is ever logged.

Answers (JSON):

* 401 ``{"error"}``: no secret configured, or the signature is missing or wrong; nothing stored;
* 400 ``{"error"}``: no ``X-GitHub-Event`` header, or a body that is not the event's JSON
  (``application/json``, or the form-encoded ``payload=`` GitHub sends by default);
* 200 ``{"pong": true, "project": name | null}``: a ``ping``, naming the matching project;
* 202 ``{"ignored": reason}``: another event or action, a conclusion that is no failure (see
  :mod:`claudomator.triage`), or a repository that matches no project (a project matches when
  its ``name`` is the repository's name or its ``owner/name``);
* 200 ``{"duplicate": task_id}``: this repository, SHA and check already made a task;
* 201 ``{"task": {...}}``: the CI-fix task, QUEUED for the pool.

The dedupe key (``github:<owner/name>:<sha>:<check or workflow>``) is reserved in the store just
before the task is submitted, so two concurrent deliveries of one failure make one task.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from claudomator import triage
from claudomator.config import Settings
from claudomator.llm import LLMClient
from claudomator.models import Project, Task
from claudomator.notify import sign
from claudomator.service import Service
from claudomator.triage import CIFailure, PayloadError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
GITHUB_WEBHOOK_PATH = "/api/webhooks/github"


class GitHubPong(BaseModel):
    """The answer to a ``ping``: the project the hook's repository matches, if any."""

    pong: bool
    project: str | None


class GitHubDuplicate(BaseModel):
    """This repository, SHA and check already made a task: that task's id."""

    duplicate: str


class GitHubCreated(BaseModel):
    """The CI-fix task, queued."""

    task: Task


class GitHubIgnored(BaseModel):
    """Why a delivery asks for no task."""

    ignored: str


class GitHubRefused(BaseModel):
    """Why a delivery was refused."""

    error: str


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": GitHubPong | GitHubDuplicate, "description": "a ping, or a duplicate delivery"},
    201: {"model": GitHubCreated, "description": "the CI-fix task was created and queued"},
    202: {"model": GitHubIgnored, "description": "nothing to do, and why"},
    400: {"model": GitHubRefused, "description": "no event header, or not the event's JSON"},
    401: {
        "model": GitHubRefused,
        "description": "no webhook_secret, or a missing or wrong signature",
    },
}


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC of body>`` (compared in constant time)."""
    if not header:
        return False
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("latin-1", errors="replace"))


def parse_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The delivery's JSON object, from a JSON body or a form-encoded ``payload`` field."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"the form-encoded body cannot be read: {exc}") from exc
        fields = form.get("payload")
        if not fields:
            raise PayloadError("the form-encoded body has no 'payload' field")
        raw: str | bytes = fields[0]
    else:
        raw = body
    try:
        document = json.loads(raw)
    except ValueError as exc:  # also a body that is not UTF-8
        raise PayloadError(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:  # the decoder recurses per level: a signed bomb stops here
        raise PayloadError("the body's JSON is nested too deeply") from exc
    if not isinstance(document, dict):
        raise PayloadError(f"the body is JSON but not an object ({type(document).__name__})")
    return document


def _answer(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def github_routes(
    service: Service,
    settings: Settings | None = None,
    *,
    plan_timeout: float = triage.PLAN_TIMEOUT_SECONDS,
    llm: LLMClient | None = None,
) -> APIRouter:
    """The GitHub webhook route; include it WITHOUT the API-token guard (it has its own auth).

    ``llm`` (the process's model client; its owner closes it) writes the CI-fix task's plan,
    through a view without retries; without one the task has the template's instructions."""
    cfg = settings or service.settings
    router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

    async def instructions(failure: CIFailure, project: Project) -> str:
        text = triage.instructions_for(failure)
        if llm is None:
            return text
        # no retries: the answer must reach GitHub within its 10 s
        quick = llm.with_retries(max_retries=0, extra_attempts=0)
        return await triage.enrich(text, Path(project.dir), quick, timeout=plan_timeout)

    @router.post(
        "/github", status_code=201, responses=_RESPONSES, summary="Receive a GitHub delivery"
    )
    async def github_webhook(request: Request) -> JSONResponse:
        """Turn a failed GitHub check run or workflow run into a queued CI-fix task.

        Signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with `webhook_secret`);
        the API token is not needed. The repository must match a project by name.
        """
        # not yet authenticated: keep what reaches the log short and on one line
        delivery = "".join(
            c for c in request.headers.get(DELIVERY_HEADER, "-")[:64] if c.isprintable()
        )
        event = request.headers.get(EVENT_HEADER, "")
        log = {"action": "github_webhook"}
        if not cfg.webhook_secret:
            logger.warning("GitHub delivery %s refused: no webhook_secret", delivery, extra=log)
            return _answer(
                401,
                error="the webhook secret is not configured (set webhook_secret); "
                "unsigned deliveries are never accepted",
            )
        body = await request.body()
        if not signature_ok(cfg.webhook_secret, body, request.headers.get(SIGNATURE_HEADER)):
            logger.warning(
                "GitHub delivery %s refused: missing or wrong signature", delivery, extra=log
            )
            return _answer(401, error=f"missing or wrong {SIGNATURE_HEADER} signature")
        if not event:
            return _answer(400, error=f"missing {EVENT_HEADER} header")
        try:
            payload = parse_payload(body, request.headers.get("content-type", ""))
            if event == "ping":
                repo = payload.get("repository")
                project = None
                if isinstance(repo, dict):
                    name, full = str(repo.get("name", "")), str(repo.get("full_name", ""))
                    project = service.project_named(name, full)
                logger.info("GitHub ping %s", delivery, extra=log)
                return _answer(200, pong=True, project=project.name if project else None)
            found = triage.ci_failure(event, payload)
        except PayloadError as exc:
            logger.info("GitHub delivery %s (%s) malformed: %s", delivery, event, exc, extra=log)
            return _answer(400, error=str(exc))
        if isinstance(found, triage.Ignored):
            logger.info("GitHub delivery %s ignored: %s", delivery, found.reason, extra=log)
            return _answer(202, ignored=found.reason)
        project = service.project_named(found.repository_name, found.repository)
        if project is None:
            reason = (
                f"repository {found.repository} matches no project "
                f"(none is named '{found.repository_name}' or '{found.repository}')"
            )
            logger.info("GitHub delivery %s ignored: %s", delivery, reason, extra=log)
            return _answer(202, ignored=reason)
        key = found.dedupe_key
        holder = await asyncio.to_thread(service.intake_holder, key)
        if holder is None:
            text = await instructions(found, project)
            try:
                task = triage.fix_task(found, project.dir, text)
            except pydantic.ValidationError as exc:  # a NUL or lone surrogate in a check name
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                logger.info("GitHub delivery %s unusable: %s", delivery, problems, extra=log)
                return _answer(400, error=f"the delivery cannot make a task: {problems}")
            stored, holder = await asyncio.to_thread(service.submit_once, key, task)
            if stored is not None:
                logger.info(
                    "GitHub delivery %s: task %s for %s", delivery, stored.id, key, extra=log
                )
                return _answer(201, task=stored.model_dump(mode="json"))
        logger.info("GitHub delivery %s: duplicate of task %s", delivery, holder, extra=log)
        return _answer(200, duplicate=holder)

    return router
