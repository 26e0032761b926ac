"""The OpenAPI document stays true: every route is documented (and only those), and property-based
requests generated from the document get only documented statuses, headers and bodies, never a 5xx."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from turret.settings import Settings

from ingest_api.openapi import build_document

# The app under test is built over the test's TURRET_HOME with default limits: the same document.
schema = schemathesis.openapi.from_dict(build_document(Settings()))

# Bounded in `make test`; TURRET_SCHEMATHESIS_EXAMPLES=1000 runs the same check deeper (README).
EXAMPLES = int(os.environ.get("TURRET_SCHEMATHESIS_EXAMPLES", "25"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def flask_routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = str(rule).replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((path, method.lower()))
    return out


def documented_routes(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


def test_every_route_is_documented_and_vice_versa(app, client):
    document = client.get("/openapi.json").get_json()
    assert flask_routes(app) == documented_routes(document)


def test_served_document_is_the_built_one(app, client):
    document = client.get("/openapi.json").get_json()
    assert document == build_document(app.extensions["turret"].settings)
    assert document["openapi"].startswith("3.1")


def test_document_is_valid_openapi():
    from jsonschema import Draft202012Validator

    document = build_document(Settings())
    # Every component schema is itself a valid JSON Schema (2020-12, what OpenAPI 3.1 uses).
    for component in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(component)
    # And the loader accepts the document as a whole.
    assert {op.label for op in (r.ok() for r in schema.get_all_operations())} == {
        "POST /track", "POST /track/batch", "PUT /api/analytics/events", "GET /healthz", "GET /openapi.json"}


@pytest.fixture
def trieve_headers(project, api_key):
    return {"X-API-Key": api_key, "Authorization": f"Bearer {api_key}", "TR-Dataset": project.project_id}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_document(case, app, trieve_headers):
    case.call_and_validate(app=app, headers=trieve_headers, checks=CHECKS)
