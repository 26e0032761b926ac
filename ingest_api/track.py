"""Turret's own contract: ``POST /track`` and ``POST /track/batch`` with an ``X-API-Key`` header.

Order of checks, cheapest first and never reading a byte of an unauthenticated body: API key (401),
declared body size (413), Content-Type, strict JSON, fields, quota (429), durable append (503 on failure).
A 200 is sent only after the landing writer has fsynced the events.

A client ``event_id`` this process stored recently (:mod:`ingest_api.idempotency`) is answered as it was
the first time, without writing it again or counting it against the quota.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from turret.landing import utc_now

from . import auth
from .body import read_json_body
from .errors import ApiError
from .events import json_type, to_record, to_records, validate_event
from .responses import json_response
from .runtime import EXTENSION

bp = Blueprint("track", __name__)

API_KEY_HEADER = "X-API-Key"
_API_KEY_ENVIRON = "HTTP_X_API_KEY"  # the header as WSGI names it (case-insensitive on the wire)
BATCH_FIELDS = ("events",)
_BATCH_FIELD_SET = frozenset(BATCH_FIELDS)


def _runtime():
    return current_app.extensions[EXTENSION]


def _project():
    return auth.authenticate(request.environ.get(_API_KEY_ENVIRON), API_KEY_HEADER)


def _now():
    return utc_now()


def _quota_headers(project: Any) -> dict[str, str]:
    """Rate-limit headers without taking a unit (for an answer that stores nothing)."""
    _, headers, _ = auth.acquire(project, 0)
    return headers


@bp.post("/track")
def track() -> Any:
    """Track one event."""
    project = _project()
    body = read_json_body()
    runtime = _runtime()
    event = validate_event(body, runtime.settings, _now())
    stored = runtime.recent.get(project.project_id, event.event_id) if event.event_id is not None else None
    if stored is not None:  # an immediate retry of an event this process stored: answer the same
        headers = _quota_headers(project)
        session_id, user_id = stored
        event_id = event.event_id
    else:
        granted, headers, decision = auth.acquire(project, 1)
        if granted < 1:
            raise auth.rate_limited(decision, headers)
        record = to_record(event, project.project_id, _now())
        auth.append([record])
        if event.event_id is not None:
            runtime.recent.add(project.project_id, [record])
        event_id, session_id, user_id = record["event_id"], record["session_id"], record["user_id"]
    return json_response(
        {
            "success": True,
            "message": "Event tracked successfully",
            "event_id": event_id,
            "session_id": session_id,
            "user_id": user_id,
        },
        headers,
    )


@bp.post("/track/batch")
def track_batch() -> Any:
    """Track up to ``max_batch_events`` events with one durable write; results per event, in order."""
    project = _project()
    body = read_json_body()
    runtime = _runtime()
    settings = runtime.settings
    if not isinstance(body, dict):
        raise ApiError("INVALID_REQUEST", f"request body must be a JSON object, got {json_type(body)}")
    unknown = sorted(set(body) - _BATCH_FIELD_SET) if len(body) != 1 or "events" not in body else None
    if unknown:
        raise ApiError(
            "INVALID_REQUEST",
            f"unknown field {unknown[0][:60]!r}; a batch is {{\"events\": [...]}}",
            field=unknown[0][:60],
        )
    events = body.get("events")
    if events is None:
        raise ApiError("MISSING_REQUIRED_FIELD", "events is required: an array of event objects",
                       field="events")
    if not isinstance(events, list):
        raise ApiError("INVALID_REQUEST", f"events must be an array, got {json_type(events)}", field="events")
    if not events:
        raise ApiError("INVALID_REQUEST", "events is empty; send at least one event", field="events")
    if len(events) > settings.max_batch_events:
        raise ApiError(
            "INVALID_REQUEST",
            f"events has {len(events)} items; the maximum is {settings.max_batch_events}",
            field="events",
        )

    now = _now()
    results: list[dict[str, Any] | None] = [None] * len(events)
    valid = []
    recent = runtime.recent
    project_id = project.project_id
    repeated = 0
    for index, item in enumerate(events):
        try:
            event = validate_event(item, settings, now)
        except ApiError as exc:
            results[index] = {"index": index, "success": False, "error": exc.message, "code": exc.code}
            continue
        stored = recent.get(project_id, event.event_id) if event.event_id is not None else None
        if stored is not None:  # stored by an earlier request of this process: same answer, no write
            results[index] = {"index": index, "success": True, "event_id": event.event_id,
                              "session_id": stored[0], "user_id": stored[1]}
            repeated += 1
        else:
            valid.append((index, event))

    headers: dict[str, str] = {}
    if not valid and repeated:
        headers = _quota_headers(project)
    if valid:
        granted, headers, decision = auth.acquire(project, len(valid))
        if granted == 0 and not repeated:
            raise auth.rate_limited(decision, headers)
        over = valid[granted:]
        valid = valid[:granted]
        for index, _ in over:
            results[index] = {
                "index": index,
                "success": False,
                "error": "this project's event limit was reached during this batch; "
                f"retry after {auth.retry_after(decision)} seconds",
                "code": "RATE_LIMIT_EXCEEDED",
            }
        received_at = _now()
        records = to_records([event for _, event in valid], project_id, received_at)
        if records:
            auth.append(records)  # one call, one fsync for the whole batch
        keyed = [record for (_, event), record in zip(valid, records, strict=True)
                 if event.event_id is not None]
        if keyed:
            recent.add(project_id, keyed)
        for (index, _), record in zip(valid, records, strict=True):
            results[index] = {
                "index": index,
                "success": True,
                "event_id": record["event_id"],
                "session_id": record["session_id"],
                "user_id": record["user_id"],
            }
    accepted = len(valid) + repeated
    return json_response(
        {"success": accepted == len(events), "accepted": accepted, "rejected": len(events) - accepted,
         "results": results},
        headers,
    )
