"""Persistence: the only package that knows about SQL."""

from claudomator.store.store import Store

__all__ = ["Store"]
