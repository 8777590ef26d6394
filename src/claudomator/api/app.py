"""FastAPI application factory: routes are assembled from explicit lists per resource."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from claudomator import __version__
from claudomator.service import Service


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


def create_app(service: Service) -> FastAPI:
    """The API over ``service``; the caller owns the service's lifetime."""
    app = FastAPI(title="Claudomator", version=__version__)
    app.include_router(health_routes(service))
    return app
