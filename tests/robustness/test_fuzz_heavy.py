"""The schemathesis run of the API suite at a higher example count: no input gets a 5xx, every
response matches the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from robust import Served, size
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from claudomator.config import Settings
from claudomator.store import Store

# streams never end on their own; elaborate calls real model backends (tested on its own)
STREAMING = ("/api/events", "/log/follow", "/api/tasks/elaborate")
EXAMPLES = size(40, 500)  # per operation; the API suite runs 25


@pytest.mark.heavy
def test_no_input_gets_a_server_error_at_a_higher_count(settings: Settings, store: Store) -> None:
    with Served(settings, store) as served:
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            if not any(part in result.ok().path for part in STREAMING):
                operations.append(result.ok())
        assert len(operations) >= 10
        failures = [failure for op in operations if (failure := fuzz(op, served.url))]
    assert not failures, "\n\n".join(failures[:5])


def fuzz(operation: Any, base_url: str) -> str:
    """Up to ``EXAMPLES`` generated requests for ``operation``; the first failure, or ""."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base_url)
        case.validate_response(
            response,
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )

    try:
        check()
    except Exception as exc:  # a failure group from schemathesis: report it with its route
        return f"{operation.method.upper()} {operation.path}: {exc}"
    return ""
