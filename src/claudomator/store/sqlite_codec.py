"""How the SQL store's values lie in a SQLite file (JSON as text, timestamps as naive UTC text),
for code that reads and writes its rows with the standard library's ``sqlite3``: the quick store
(:mod:`claudomator.store.quick`). :data:`COLUMNS` is held equal to the SQLAlchemy tables
(:mod:`claudomator.store.tables`) by ``tests/unit/test_cli_startup.py``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["json", "time"]

COLUMNS: dict[str, dict[str, Kind]] = {
    "tasks": {
        "agent": "json",
        "tags": "json",
        "depends_on": "json",
        "isolation": "json",
        "created_at": "time",
        "updated_at": "time",
    },
    "executions": {
        "start_time": "time",
        "end_time": "time",
        "commits": "json",
        "changestats": "json",
        "delivery": "json",
    },
    "task_events": {"at": "time"},
    "interactions": {"options": "json", "asked_at": "time", "answered_at": "time"},
    "agent_status": {"limited_until": "time", "unavailable_until": "time", "updated_at": "time"},
}
"""The columns of each table that SQLAlchemy encodes (JSON text, UTC timestamps), by table."""


def stored_time(moment: datetime) -> str:
    """``moment`` as SQLAlchemy stores a timezone-aware datetime on SQLite (UTC, no offset)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: store aware datetimes only")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond:06d}"


def read_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def decoded(table: str, row: sqlite3.Row) -> dict[str, Any]:
    """A row as the SQL store's reads see it: JSON parsed, timestamps aware."""
    kinds = COLUMNS.get(table, {})
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 (a sqlite3.Row iterates over its values)
        value = row[key]
        kind = kinds.get(key)
        if value is not None and kind == "json":
            value = json.loads(value)
        elif value is not None and kind == "time":
            value = read_time(value)
        out[key] = value
    return out


def encoded(table: str, column: str, value: Any) -> Any:
    """``value`` as SQLAlchemy would bind it to ``table.column`` on SQLite."""
    kind = COLUMNS.get(table, {}).get(column)
    if kind == "json":
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    if kind == "time" and value is not None:
        return stored_time(value)
    return value
