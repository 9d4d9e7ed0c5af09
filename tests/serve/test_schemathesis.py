"""Property-based requests generated from the service's own OpenAPI schema (schemathesis, through the real ASGI
app): no request, valid or not, gets a 5xx, and every status code and body the service returns is the one its
schema documents.

One of schemathesis's default checks is left out: "positive data acceptance" expects every schema-valid body to
be accepted, but some rules cannot be written in JSON Schema (the ids of an index must be unique; an id must not
hold a lone surrogate) and are answered with a documented 422 that names the item. "Negative data rejection" is
replaced by its gist, any 4xx: schemathesis's own list of rejections leaves out 413, which the service answers
(documented) when an invalid body is also too large."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from mtpeft.serve import create_app
from tests.serve.conftest import API_KEY, LIMITS

pytestmark = pytest.mark.slow
SKIPPED = [positive_data_acceptance, negative_data_rejection]  # see the module's docstring


def test_no_server_error_and_only_documented_answers(predictor):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(predictor, LIMITS, api_key=API_KEY))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    statuses: list[int] = []
    for operation, mode in itertools.product(operations, GenerationMode):  # bodies that fit the schema, and not
        probe(operation, mode, statuses)
    assert max(statuses) < 500 and {200, 204, 404, 409, 422} <= set(statuses)  # the requests reached them all


def probe(operation, mode: GenerationMode, statuses: list[int]) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case):
        response = case.call_and_validate(headers={"X-API-Key": API_KEY}, excluded_checks=SKIPPED)
        if mode is GenerationMode.NEGATIVE:
            assert 400 <= response.status_code < 500, (case.body, response.status_code)
        statuses.append(response.status_code)

    check()
