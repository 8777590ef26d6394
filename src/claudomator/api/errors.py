"""Errors as JSON: every refusal says what is wrong, with a fitting 4xx status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from claudomator.errors import (
    ClaudomatorError,
    InvalidTransition,
    NotFound,
    ProjectExists,
    StoreError,
    TaskFileError,
    ValidationError,
)
from claudomator.logs import UnsafeLogFile

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


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _explained(error: Mapping[str, Any], content_type: str) -> str:
    """A validation error's message, saying how to send a body where the body itself is
    wrong (pydantic's "Input should be a valid dictionary" names no cause)."""
    if tuple(error["loc"]) != ("body",):
        return str(error["msg"])
    if error["type"] == "missing":
        return "the body is empty: send a JSON object with Content-Type: application/json"
    if content_type and not _is_json(content_type):
        return (
            f"the body was sent as Content-Type: {content_type}; send a JSON object with "
            "Content-Type: application/json"
        )
    if error["type"] in ("dict_type", "model_attributes_type"):
        given = type(error.get("input")).__name__
        kind = {"list": "an array", "str": "a string", "int": "a number", "float": "a number"}
        return f"the body must be a JSON object ({{...}}), not {kind.get(given, 'that')}"
    return str(error["msg"])


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
        content_type = request.headers.get("content-type", "")
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": _explained(e, content_type)}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse({"error": summary, "problems": problems}, status_code=422)
