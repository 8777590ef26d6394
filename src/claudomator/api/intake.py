"""Intake routes: a one-line request becomes a task spec for a human to review.

``POST /api/tasks/elaborate`` only drafts: nothing is stored. The client shows the spec, lets
the user edit it, and posts it to ``POST /api/tasks`` to create the task.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from claudomator.elaborate import ElaborationFailed, ElaboratorFactory
from claudomator.errors import ValidationError
from claudomator.models import check_text
from claudomator.service import Service

logger = logging.getLogger(__name__)

MAX_PROMPT = 20000


class ElaborateBody(BaseModel):
    """What to draft a task for."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, examples=["add a CSV export"])
    project: str | None = Field(
        default=None,
        max_length=4096,
        description="A project's name (config file or API), or an absolute directory.",
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


class AttemptOut(BaseModel):
    """A backend that was not used, and why."""

    backend: str
    reason: str


class ElaborateResult(BaseModel):
    """A valid task spec (the body ``POST /api/tasks`` takes), and how it was made."""

    spec: dict[str, Any]
    backend: str = Field(description="local, claude or gemini: who wrote the spec")
    attempts: list[AttemptOut] = Field(description="backends tried or skipped before, and why")
    notes: list[str] = Field(description="what was dropped or corrected in the answer")


class ElaborateFailure(BaseModel):
    """Every backend failed (502)."""

    error: str
    attempts: list[AttemptOut]


def intake_routes(service: Service, elaborator_factory: ElaboratorFactory) -> APIRouter:
    """The intake routes over ``service``.

    ``elaborator_factory`` makes one elaborator per request (with the process's model client
    and launcher, see :func:`claudomator.elaborate.elaborator_factory`).
    """
    factory = elaborator_factory
    router = APIRouter(prefix="/api/tasks", tags=["tasks"])

    @router.post(
        "/elaborate",
        response_model=ElaborateResult,
        responses={502: {"model": ElaborateFailure, "description": "every backend failed"}},
    )
    async def elaborate(body: ElaborateBody) -> ElaborateResult | JSONResponse:
        """Draft a task spec from a one-line request; nothing is stored.

        Asks the local model (JSON mode), then `claude -p`, then the Gemini CLI, within
        about 30 seconds in all. Post the (reviewed) spec to `/api/tasks` to create the task.
        """
        try:
            async with factory() as elaborator:
                known = [project for project, _ in service.projects()]
                done = await elaborator.elaborate(body.prompt, body.project, known)
        except ValidationError as exc:
            field, _, message = str(exc).partition(": ")
            return JSONResponse(
                {"error": str(exc), "problems": [{"field": field, "message": message}]},
                status_code=422,
            )
        except ElaborationFailed as exc:
            logger.warning("elaborate failed: %s", exc, extra={"action": "api_elaborate"})
            failure = ElaborateFailure(
                error=str(exc),
                attempts=[AttemptOut(backend=a.backend, reason=a.reason) for a in exc.attempts],
            )
            return JSONResponse(failure.model_dump(), status_code=502)
        return ElaborateResult(
            spec=done.spec,
            backend=done.backend,
            attempts=[AttemptOut(backend=a.backend, reason=a.reason) for a in done.attempts],
            notes=done.notes,
        )

    return router
