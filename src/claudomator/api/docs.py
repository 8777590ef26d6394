"""The API's interactive documentation (Swagger UI), served from the package: works offline.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, which is a blank page without internet
and sends every visitor's browser to a third party. Here the page, Swagger UI's script and style
(Swagger UI 5, which reads OpenAPI 3.1, from the ``fastapi-swagger`` distribution: only its
files are used) and a small start-up module of ours are all served
by Claudomator itself, under a Content-Security-Policy that allows only this origin.

The page and its files hold no data, so they need no token: the API's description
(``/openapi.json``) does, when ``api_token`` is set. The start-up module fetches it with the
token the web UI keeps for the browser tab (``sessionStorage``), asks for one if the API
answers 401, and sends it with every "Try it out" request.
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

logger = logging.getLogger(__name__)

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# Swagger UI's files we serve: nothing else of the distribution is reachable
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# React sets styles through the DOM (allowed); Swagger UI also writes a few style attributes
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Claudomator API</title>
<link rel="icon" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="docs-token" hidden>
  <p>This server has an <code>api_token</code>: enter it to read the API's description
  (it is kept for this browser tab only).</p>
  <form id="docs-token-form"><input id="docs-token-input" type="password"
    autocomplete="current-password" aria-label="API token"> <button>Show the API</button></form>
</div>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script type="module" src="/static/js/docs.js"></script>
</body>
</html>
"""


def swagger_dir() -> Path:
    """Where the installed ``fastapi-swagger`` keeps Swagger UI's files."""
    return Path(str(importlib.resources.files("fastapi_swagger") / "resources"))


def docs_routes() -> APIRouter:
    """``/docs`` and the files it loads (not in the schema)."""
    router = APIRouter(include_in_schema=False)
    page = _PAGE.format(assets=ASSETS_PATH)

    @router.get(DOCS_PATH)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={**_HEADERS, "Content-Security-Policy": _CSP})

    @router.get(ASSETS_PATH + "/{name}")
    def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404, detail=f"no docs file {name!r}")
        path = swagger_dir() / name
        return FileResponse(
            path, media_type=media_type, headers={**_HEADERS, "Cache-Control": "max-age=86400"}
        )

    return router
