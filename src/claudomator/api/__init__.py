"""The HTTP API (FastAPI). Build it with :func:`create_app`."""

from claudomator.api.app import create_app

__all__ = ["create_app"]
