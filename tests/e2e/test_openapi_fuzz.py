"""The OpenAPI document against the running service: schemathesis on every operation.

Every generated request (valid and invalid, per the document) must get no 5xx,
a documented status, a documented content type and a body that conforms.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from service_process import serving

from assistant_service.entrypoints.http.openapi import openapi_document

# The development service serves /metrics (prometheus-client is installed) and the playground.
DOCUMENT = openapi_document(metrics=True, playground=True)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
# The WebSocket has no HTTP operation to fuzz (its upgrade is tested elsewhere).
OPERATIONS = [
    (path, method.upper())
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if path != "/stream"
]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving() as url:
        yield url


def test_the_service_serves_the_document_fuzzed_here(base_url):
    assert httpx2.get(f"{base_url}/openapi.json").json() == DOCUMENT


# A history cursor is opaque: only one the service issued is valid, which no schema can say.
OPAQUE = {("/threads/{thread_id}/messages", "GET")}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_conforms(base_url, path, method):
    operation = SCHEMA[path][method]
    excluded = [checks.positive_data_acceptance] if (path, method) in OPAQUE else []

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(case):
        case.call_and_validate(base_url=base_url, timeout=10, excluded_checks=excluded)

    check()
