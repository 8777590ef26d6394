"""Bearer-token protection of the API (when ``api_token`` is configured)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request

from claudomator.config import Settings


def token_guard(settings: Settings) -> Callable[[Request], None]:
    """A dependency that refuses requests without ``Authorization: Bearer <api_token>``."""

    def require_token(request: Request) -> None:
        if not settings.api_token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), settings.api_token.encode("utf-8")
        )
        if not ok:
            raise HTTPException(
                status_code=401,
                detail="missing or wrong API token (send Authorization: Bearer <api_token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
