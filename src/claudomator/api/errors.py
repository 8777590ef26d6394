"""Errors as JSON: every refusal says what is wrong, with a fitting 4xx status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from claudomator.api.logfiles import UnsafeLogFile
from claudomator.errors import (
    ClaudomatorError,
    InvalidTransition,
    NotFound,
    ProjectExists,
    StoreError,
    TaskFileError,
    ValidationError,
)

logger = logging.getLogger(__name__)


class ProblemItem(BaseModel):
    """One thing wrong with a request."""

    field: str
    message: str
    task: str | None = None


class ErrorBody(BaseModel):
    """Every error the API answers."""

    error: str
    problems: list[ProblemItem] | None = None


def _described(status: int, what: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": what}


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described(400, "the request cannot be processed"),
    401: _described(401, "missing or wrong API token"),
    403: _described(
        403,
        "an agent token may not do this, a foreign Host or Origin, or an execution's file that "
        "is not a plain file in its log folder",
    ),
    404: _described(404, "no such task or execution"),
    409: _described(409, "the task's state does not allow this"),
    413: _described(413, "the body is too large"),
    422: _described(422, "the body or a parameter is invalid (the problems name the fields)"),
    503: _described(503, "the database cannot be written (disk full, read-only) or read"),
}


def _status(exc: ClaudomatorError) -> int:
    if isinstance(exc, UnsafeLogFile):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidTransition | ProjectExists):
        return 409
    if isinstance(exc, TaskFileError | ValidationError):
        return 422
    if isinstance(exc, StoreError):
        return 503  # not the client's fault: the message says what is wrong with the database
    return 400


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(ClaudomatorError)
    async def claudomator_error(request: Request, exc: ClaudomatorError) -> JSONResponse:
        body: dict[str, object] = {"error": str(exc)}
        if isinstance(exc, TaskFileError):
            body["problems"] = [
                {"task": p.task, "field": p.field, "message": p.message} for p in exc.problems
            ]
        return JSONResponse(body, status_code=_status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse({"error": summary, "problems": problems}, status_code=422)
