"""FastAPI application factory: routes are assembled from explicit lists per resource."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Collection
from typing import Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claudomator import __version__, tokens
from claudomator.agents.registry import AgentRegistry
from claudomator.api import errors
from claudomator.api.auth import TokenCheck, TokenGuard
from claudomator.api.datadir import DataDirChanged, DataDirGuard, DataDirMonitor
from claudomator.api.docs import docs_routes
from claudomator.api.hosts import HostCheck, is_loopback
from claudomator.api.hosts import allowed_hosts as hosts_for
from claudomator.api.intake import intake_routes
from claudomator.api.metrics import metrics_registry, metrics_routes
from claudomator.api.projects import project_routes
from claudomator.api.push import push_routes
from claudomator.api.stories import story_routes
from claudomator.api.streams import stream_routes
from claudomator.api.tasks import agent_routes, execution_routes, task_routes
from claudomator.api.webhooks import GITHUB_WEBHOOK_PATH, github_routes
from claudomator.config import Settings
from claudomator.elaborate import elaborator_factory
from claudomator.errors import ConfigError, StoreError
from claudomator.isolation.base import Launcher
from claudomator.llm import LLMClient
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


class NoNulInUrl:
    """Refuse a URL whose path or query holds a NUL (``%00``) with 422, naming which part.

    No id, name or path can hold one; left in, it reaches ``os.stat`` as "embedded null byte".
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = "path" if "\0" in scope["path"] else _nul_parameter(scope)
            if field:
                message = "holds a NUL character (%00)"
                body = {
                    "error": f"{field}: {message}",
                    "problems": [{"field": field, "message": message}],
                }
                await JSONResponse(body, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _nul_parameter(scope: Scope) -> str:
    """``query.<name>`` of the first query parameter holding a NUL, or ""."""
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    if "%00" not in query.lower():
        return ""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\0" in name or "\0" in value:
            return f"query.{name.replace(chr(0), '%00')}"
    return "query"


def _terminate(lost: DataDirChanged) -> None:
    """Stop ``serve`` the way Ctrl-C does (its SIGTERM handler stops the API, then the pool)."""
    os.kill(os.getpid(), signal.SIGTERM)


def create_app(
    service: Service,
    settings: Settings | None = None,
    *,
    github_plan_timeout: float = 8.0,
    listen_host: str = "127.0.0.1",
    allowed_hosts: Collection[str] | None = None,
    exit_when_data_dir_changes: bool = False,
    closing: threading.Event | None = None,
    llm: LLMClient | None = None,
    launcher: Launcher | None = None,
) -> FastAPI:
    """The API over ``service``; the caller owns the service's lifetime.

    ``github_plan_timeout`` bounds the local model's plan for a CI-failure task, so the webhook
    answers within GitHub's 10 s. ``listen_host`` is the address the server is bound to: the
    ``Host`` names it answers to are derived from it and ``settings.allowed_hosts``, unless
    ``allowed_hosts`` names them outright. Bound anywhere but loopback, the API must have an
    ``api_token`` (:class:`~claudomator.errors.ConfigError` otherwise): it is never open to a
    network. The agent-token key is loaded here, once. Once the data dir, its database or the
    key is no longer the file it was here, every request is answered 503, and with
    ``exit_when_data_dir_changes`` (``serve``) the process is sent SIGTERM to stop gracefully.
    Once ``closing`` is set (serve is stopping), the SSE streams end.

    ``llm`` is the process's model client (``serve`` passes its
    :class:`~claudomator.runtime.Runtime`'s; the caller closes it): elaborate and the CI-fix
    plans use it, and without one they go without the local model. ``launcher`` starts
    elaborate's agent CLIs (the Runtime's; without one, the ``[isolation] launcher`` is built
    here, once for the app).
    """
    settings = settings or service.settings
    if not settings.api_token and not is_loopback(listen_host):
        raise ConfigError(
            f"refusing to serve the API on {listen_host or 'every interface'} without an "
            "api_token: anyone who can reach it could run agents. Set api_token in the config "
            "file, e.g. to the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
            "or listen on 127.0.0.1"
        )
    hosts = (
        allowed_hosts
        if allowed_hosts is not None
        else hosts_for(listen_host, settings.allowed_hosts)
    )
    key = tokens.token_key(settings.data_dir)  # loaded once: the guard never reads it again
    monitor = DataDirMonitor(
        (settings.data_dir, settings.db_path, tokens.key_path(settings.data_dir)),
        on_lost=_terminate if exit_when_data_dir_changes else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(monitor.watch())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # /docs is ours (served from the package, offline); ReDoc would need a CDN
    app = FastAPI(
        title="Claudomator",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit)
    app.add_middleware(NoNulInUrl)
    # added after BodyLimit, so they run before it: a caller without a token gets nowhere near
    # a body parser, and a request for a foreign Host nowhere near the token check
    app.add_middleware(TokenGuard, check=TokenCheck(settings, key, service))
    app.add_middleware(HostCheck, allowed=hosts, exempt={GITHUB_WEBHOOK_PATH})
    app.add_middleware(DataDirGuard, monitor=monitor)  # outermost: a split state answers nothing
    errors.install(app)
    elaborate = elaborator_factory(
        settings,
        llm=llm,
        launcher=launcher or AgentRegistry.launcher(settings),
    )
    app.include_router(health_routes(service))
    # signed by GitHub (X-Hub-Signature-256), not by the API token; answers within GitHub's 10 s
    github = github_routes(service, settings, plan_timeout=github_plan_timeout, llm=llm)
    app.include_router(github, responses=errors.RESPONSES)
    for router in (
        intake_routes(service, elaborate),  # before /api/tasks/{task_id}
        task_routes(service),
        execution_routes(service),
        agent_routes(service),
        project_routes(service),
        story_routes(service),
        push_routes(service),
        stream_routes(service, closing),
        metrics_routes(metrics_registry(service)),
    ):
        app.include_router(router, responses=errors.RESPONSES)  # guarded by TokenGuard
    app.include_router(docs_routes())  # Swagger UI's page and files (no data: not guarded)
    app.include_router(web_routes())  # the web UI's pages and files (no data: not guarded)
    return app
