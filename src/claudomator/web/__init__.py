"""The web UI: a hand-written app shell, ES modules and a service worker, served as they are.

There is no build step: ``static/`` holds the files the browser runs (HTML, CSS, vanilla-JS
modules) and this router serves them. Every page path answers the same shell; the shell's
JavaScript draws the page from the JSON API (with the user's token when ``api_token`` is set),
so nothing here needs a token or touches data. Any other page path answers the shell too, with
a 404 status (the shell shows "page not found"); unknown API and file paths keep a JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.convertors import Convertor, register_url_convertor

STATIC_DIR = Path(__file__).parent / "static"

PAGE_PATHS = (
    "/",
    "/new",
    "/projects",
    "/stories",
    "/agents",
    "/tasks/{task_id}",
    "/tasks/{task_id}/edit",
)


class _PagePath(Convertor[str]):
    """Any path that could be a page: not the API's, its docs', its metrics' or a file's (a
    last segment with a dot); those keep their JSON 404 and their 405 for a wrong method. No
    trailing slash either: "/new/" is redirected to "/new" as before."""

    regex = r"(?!(?:api|static|metrics|docs|redoc)(?:/|$))(?:[^/]*/)*[^/.]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}

# The shell loads only its own files and talks only to its own origin.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
_PAGE = {**_NO_CACHE, "Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"}


def _static_file(relative: str) -> Path:
    """The file ``relative`` under ``STATIC_DIR``; 404 for anything else (no escaping it)."""
    root = STATIC_DIR.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix not in _TYPES:
        raise HTTPException(status_code=404, detail=f"no file {relative!r} in the web UI")
    return path


def web_routes() -> APIRouter:
    """The UI's page paths, its static files and its service worker (at the root scope)."""
    router = APIRouter(include_in_schema=False)
    shell = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

    def page() -> HTMLResponse:
        return HTMLResponse(shell, headers=_PAGE)

    for path in PAGE_PATHS:
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)

    @router.get("/static/{relative:path}")
    def static(relative: str) -> Response:
        path = _static_file(relative)
        return FileResponse(path, media_type=_TYPES[path.suffix], headers=_NO_CACHE)

    @router.get("/sw.js")
    def service_worker() -> Response:
        # served from the root so that it may control every page of the UI
        path = _static_file("sw.js")
        headers = {**_NO_CACHE, "Service-Worker-Allowed": "/"}
        return FileResponse(path, media_type=_TYPES[".js"], headers=headers)

    # last: only a page path no other route answered gets here; the shell says "not found"
    register_url_convertor("page", _PagePath())

    @router.get("/{unknown:page}")
    def not_found(unknown: str) -> Response:
        return HTMLResponse(shell, status_code=404, headers=_PAGE)

    return router


def ui_url(host: str, port: int | str) -> str:
    """The address to open in a browser for a server listening on ``host:port``."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - shown, not bound
    shown = "[::1]" if shown == "::" else shown
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
