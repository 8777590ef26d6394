"""Errors as JSON: every refusal says what is wrong, with a fitting 4xx status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from claudomator.errors import (
    ClaudomatorError,
    InvalidTransition,
    NotFound,
    TaskFileError,
    ValidationError,
)

logger = logging.getLogger(__name__)


def _status(exc: ClaudomatorError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidTransition):
        return 409
    if isinstance(exc, TaskFileError | ValidationError):
        return 422
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
