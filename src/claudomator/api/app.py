"""FastAPI application factory: routes are assembled from explicit lists per resource."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from claudomator import __version__
from claudomator.api import errors
from claudomator.api.auth import token_guard
from claudomator.api.intake import intake_routes
from claudomator.api.metrics import metrics_routes
from claudomator.api.projects import project_routes
from claudomator.api.stories import story_routes
from claudomator.api.streams import stream_routes
from claudomator.api.tasks import agent_routes, execution_routes, task_routes
from claudomator.api.webhooks import github_routes
from claudomator.config import Settings
from claudomator.elaborate import elaborator_factory
from claudomator.service import Service

MAX_BODY_BYTES = 1024 * 1024


class Health(BaseModel):
    """What ``GET /api/health`` answers."""

    status: str
    version: str
    tasks: dict[str, int]


def health_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["health"])

    @router.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness and a count of tasks per state (also proves the database answers)."""
        return Health(status="ok", version=__version__, tasks=service.counts())

    return router


class BodyLimit(BaseHTTPMiddleware):
    """Refuse request bodies over ``MAX_BODY_BYTES`` with 413 before reading them."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                {"error": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        return await call_next(request)


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
        stream_routes(service),
        metrics_routes(service),
    ):
        app.include_router(router, dependencies=guarded, responses=errors.RESPONSES)
    return app
