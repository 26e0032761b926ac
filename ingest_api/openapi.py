"""``GET /openapi.json``: the OpenAPI 3.1 document of every endpoint, built from the same limits the
validators use (``turret.settings``) and, for Trieve's ``EventTypes``, from the validator's own schema
objects. tests/ingest_api/test_openapi.py keeps it true: routes match, and property-based requests
against the app get only documented statuses and bodies.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from turret.bounds import MAX_METADATA_KEY_LENGTH, MAX_NAME_LENGTH, MIN_TIMESTAMP_TEXT
from turret.settings import Settings

from .errors import ERROR_CODES
from .trieve_schema import openapi_components

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _int_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", "pattern": "^[0-9]+$"}}


RATE_HEADERS = {
    "X-RateLimit-Limit": _int_header("Events allowed in the current period (absent for unlimited plans)."),
    "X-RateLimit-Remaining": _int_header("Events left in the current period."),
    "X-RateLimit-Reset": _int_header("When the period resets, in epoch seconds."),
}
RETRY_AFTER = {"Retry-After": _int_header("Seconds to wait before retrying.")}


def _id_schema(max_length: int, description: str) -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": max_length,
        "pattern": r"\S",
        "description": description,
    }


def schemas(settings: Settings) -> dict[str, Any]:
    """``components.schemas``: Turret's request/response bodies and Trieve's types."""
    track_event = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "metadata"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": r"\S",
                     "description": "Event name, e.g. user_message."},
            "session_id": _id_schema(settings.max_id_length,
                                     "Your conversation id; generated (UUID4) when missing or null."),
            "user_id": _id_schema(settings.max_id_length,
                                  "Your user id; generated (UUID4) when missing or null."),
            "event_id": _id_schema(
                settings.max_id_length,
                "Idempotency key: the warehouse keeps one event per project and event_id (the "
                "landing store may hold retried copies; an immediate retry to the same server "
                "process is answered as the first and not stored or counted again); "
                "generated when missing.",
            ),
            "timestamp": {"type": ["string", "null"], "format": "date-time",
                          "description": "When the event happened (ISO 8601; no offset means UTC). "
                          f"Not before {MIN_TIMESTAMP_TEXT}; "
                          f"at most {settings.max_future_skew_seconds} s in the future."},
            "metadata": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": settings.max_metadata_keys,
                "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_LENGTH, "pattern": r"\S"},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "maxLength": settings.max_text_length},
                        {"type": "number"},
                        {"type": "boolean"},
                        {"type": "null"},
                    ]
                },
                "description": "Flat object; at least one value must be a non-empty string (the text to "
                "cluster). Nested objects and arrays are refused.",
            },
        },
    }
    error = {
        "type": "object",
        "additionalProperties": False,
        "required": ["success", "error", "code"],
        "properties": {
            "success": {"const": False},
            "error": {"type": "string", "description": "What is wrong, naming the field or limit."},
            "code": {"type": "string", "enum": list(ERROR_CODES)},
            "field": {"type": "string", "description": "The offending field, when there is one."},
        },
    }
    ids = {
        "event_id": {"type": "string", "minLength": 1},
        "session_id": {"type": "string", "minLength": 1},
        "user_id": {"type": "string", "minLength": 1},
    }
    out = {
        "TrackEvent": track_event,
        "TrackBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["events"],
            "properties": {
                "events": {"type": "array", "minItems": 1, "maxItems": settings.max_batch_events,
                           "items": _ref("TrackEvent")},
            },
        },
        "TrackResponse": {
            "type": "object",
            "additionalProperties": False,
            "required": ["success", "message", "event_id", "session_id", "user_id"],
            "properties": {"success": {"const": True}, "message": {"type": "string"}, **ids},
        },
        "BatchResult": {
            "oneOf": [
                {"type": "object", "additionalProperties": False,
                 "required": ["index", "success", "event_id", "session_id", "user_id"],
                 "properties": {"index": {"type": "integer", "minimum": 0}, "success": {"const": True},
                                **ids}},
                {"type": "object", "additionalProperties": False,
                 "required": ["index", "success", "error", "code"],
                 "properties": {"index": {"type": "integer", "minimum": 0}, "success": {"const": False},
                                "error": {"type": "string"},
                                "code": {"type": "string", "enum": list(ERROR_CODES)}}},
            ]
        },
        "BatchResponse": {
            "type": "object",
            "additionalProperties": False,
            "required": ["success", "accepted", "rejected", "results"],
            "properties": {
                "success": {"type": "boolean", "description": "true when every event was accepted"},
                "accepted": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "results": {"type": "array", "maxItems": settings.max_batch_events,
                            "items": _ref("BatchResult")},
            },
        },
        "Error": error,
        "ErrorResponseBody": {
            "type": "object", "required": ["message"], "additionalProperties": False,
            "properties": {"message": {"type": "string"}},
        },
        "Health": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object", "required": ["ok"],
                        "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}},
                    },
                },
            },
        },
    }
    out.update(openapi_components(settings))
    return out


def build_document(settings: Settings) -> dict[str, Any]:
    """The whole OpenAPI document for a server with these settings."""
    err = _ref("Error")
    trieve_err = _ref("ErrorResponseBody")
    body_limit = f"Bodies over {settings.max_body_bytes} bytes are refused with 413 before they are read."
    turret_errors = {
        "400": _json(err, "INVALID_REQUEST or MISSING_REQUIRED_FIELD; `error` names the field and the rule."),
        "401": _json(err, "INVALID_API_KEY: the X-API-Key header is missing, unknown or revoked."),
        "413": _json(err, "TEXT_TOO_LONG (a metadata string over the limit) or INVALID_REQUEST (body over "
                          f"{settings.max_body_bytes} bytes)."),
        "429": _json(err, "RATE_LIMIT_EXCEEDED: the project's period quota is used up.",
                     {**RATE_HEADERS, **RETRY_AFTER}),
        "503": _json(err, "SERVICE_UNAVAILABLE: the event could not be stored; retry later.", RETRY_AFTER),
    }
    trieve_errors = {
        "400": _json(trieve_err,
                     "The body does not match EventTypes, or TR-Dataset is not the key's project."),
        "401": _json(trieve_err, "The Authorization key is missing, unknown or revoked."),
        "413": _json(trieve_err, f"Body over {settings.max_body_bytes} bytes, or a text over the limit."),
        "429": _json(trieve_err, "The project's period quota is used up.", {**RATE_HEADERS, **RETRY_AFTER}),
        "503": _json(trieve_err, "The event could not be stored; retry later.", RETRY_AFTER),
    }
    def body(ref: str) -> dict[str, Any]:
        return {"required": True, "description": body_limit,
                "content": {"application/json": {"schema": _ref(ref)}}}

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Turret ingest API",
            "version": "1",
            "description": "Track events from AI/LLM apps. docs/api.md is the human reference.",
        },
        "paths": {
            "/track": {
                "post": {
                    "operationId": "track",
                    "summary": "Track one event",
                    "security": [{"ApiKeyHeader": []}],
                    "requestBody": body("TrackEvent"),
                    "responses": {
                        "200": _json(_ref("TrackResponse"), "Stored durably.", RATE_HEADERS),
                        **turret_errors,
                    },
                }
            },
            "/track/batch": {
                "post": {
                    "operationId": "trackBatch",
                    "summary": f"Track up to {settings.max_batch_events} events",
                    "description": "Per-event results in request order. "
                    "Invalid events are rejected one by one; valid ones are stored with one durable write.",
                    "security": [{"ApiKeyHeader": []}],
                    "requestBody": body("TrackBatch"),
                    "responses": {
                        "200": _json(_ref("BatchResponse"), "Processed; see results.", RATE_HEADERS),
                        **turret_errors,
                    },
                }
            },
            "/api/analytics/events": {
                "put": {
                    "operationId": "send_event_data",
                    "summary": "Send user event data (Trieve-compatible)",
                    "security": [{"TrieveApiKey": []}],
                    "parameters": [
                        {
                            "name": "TR-Dataset",
                            "in": "header",
                            "required": True,
                            "description": "The project id (UUID) or the project name (tracking id).",
                            "schema": {"type": "string", "minLength": 1},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": body_limit,
                        "content": {"application/json": {"schema": _ref("EventTypes")}},
                    },
                    "responses": {
                        "204": {"description": "Stored durably.", "headers": RATE_HEADERS},
                        **trieve_errors,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Landing store writable and control plane reachable",
                    "security": [],
                    "responses": {
                        "200": _json(_ref("Health"), "Ready."),
                        "503": _json(_ref("Health"), "Not ready; `checks` says why.", RETRY_AFTER),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {
            "schemas": schemas(settings),
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "TrieveApiKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                                 "description": "The API key, raw or as `Bearer <key>`."},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Any:
    runtime = current_app.extensions["turret"]
    document = current_app.extensions.get("turret_openapi")
    if document is None:
        document = current_app.extensions["turret_openapi"] = build_document(runtime.settings)
    return jsonify(document)
