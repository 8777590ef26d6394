"""FastAPI application factory: routes are assembled from explicit lists per resource."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claudomator import __version__
from claudomator.api import errors
from claudomator.api.auth import token_guard
from claudomator.api.intake import intake_routes
from claudomator.api.metrics import metrics_routes
from claudomator.api.projects import project_routes
from claudomator.api.push import push_routes
from claudomator.api.stories import story_routes
from claudomator.api.streams import stream_routes
from claudomator.api.tasks import agent_routes, execution_routes, task_routes
from claudomator.api.webhooks import github_routes
from claudomator.config import Settings
from claudomator.elaborate import elaborator_factory
from claudomator.errors import StoreError
from claudomator.service import Service
from claudomator.web import web_routes

MAX_BODY_BYTES = 1024 * 1024


class Health(BaseModel):
    """What ``GET /api/health`` answers.

    ``status`` is "ok", or "degraded" while writes are refused by the database and retried
    (``pending_outcomes`` of them) or the database cannot be read (then ``tasks`` are the
    last counts read, and ``detail`` says why).
    """

    status: Literal["ok", "degraded"]
    version: str
    tasks: dict[str, int]
    pending_outcomes: int = 0
    detail: str = ""


def health_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["health"])
    # the last counts read, answered while the database cannot be read
    last: dict[str, dict[str, int]] = {"counts": {}}

    @router.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness, a count of tasks per state, and whether the database takes our writes."""
        backlog = service.store.backlog.state()
        detail = ""
        try:
            counts = last["counts"] = service.counts()
        except StoreError as exc:
            counts, detail = dict(last["counts"]), f"database unreadable: {exc}"
        if backlog.pending and not detail:
            detail = f"{backlog.pending} write(s) refused and retried: {backlog.last_error}"
        return Health(
            status="degraded" if detail else "ok",
            version=__version__,
            tasks=counts,
            pending_outcomes=backlog.pending,
            detail=detail,
        )

    return router


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` is judged before anything is read; a chunked body is counted
    as it arrives and refused as soon as it passes the limit, so no route ever holds more.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over {self.max_bytes} bytes"
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            got = await receive()
            if got["type"] == "http.request":
                received += len(got.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=message)
            return got

        await self.app(scope, counted, send)


def create_app(
    service: Service, settings: Settings | None = None, *, github_plan_timeout: float = 8.0
) -> FastAPI:
    """The API over ``service``; the caller owns the service's lifetime.

    ``github_plan_timeout`` bounds the local model's plan for a CI-failure task, so the webhook
    answers within GitHub's 10 s.
    """
    settings = settings or service.settings
    app = FastAPI(title="Claudomator", version=__version__)
    app.add_middleware(BodyLimit)
    errors.install(app)
    guarded = [Depends(token_guard(settings))]
    app.include_router(health_routes(service))
    # signed by GitHub (X-Hub-Signature-256), not by the API token; answers within GitHub's 10 s
    github = github_routes(service, settings, plan_timeout=github_plan_timeout)
    app.include_router(github, responses=errors.RESPONSES)
    for router in (
        intake_routes(service, elaborator_factory(settings)),  # before /api/tasks/{task_id}
        task_routes(service),
        execution_routes(service),
        agent_routes(service),
        project_routes(service),
        story_routes(service),
        push_routes(service),
        stream_routes(service),
        metrics_routes(service),
    ):
        app.include_router(router, dependencies=guarded, responses=errors.RESPONSES)
    app.include_router(web_routes())  # the web UI's pages and files (no data: not guarded)
    return app
