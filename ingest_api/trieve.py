"""Trieve-compatible ingestion: ``PUT /api/analytics/events`` (docs seed 004).

Headers: ``TR-Dataset`` (the project's id, or its name as Trieve's "tracking id") and ``Authorization``
(the API key, raw or ``Bearer <key>``). Success is ``204`` with an empty body; errors are
``{"message": "..."}`` like Trieve's ``ErrorResponseBody``.

Each event lands as ``contract="trieve"``. Its ``metadata`` is a flat object built for the topic engine:
the free text (``query`` of a search, ``user_message`` of a RAG event) plus flat enum-like fields and
numbers; the whole event as sent is kept under ``payload`` (loaded whole into ``raw.event_payloads``).
A search, RAG or recommendation event is a request: its id (``request_id``, else generated and answered in
the ``TR-Request-Id`` header) is its event id, and the events that follow it name it in
``request.request_id``; the marts join them on it, whatever sessions they landed in. ``session_id`` is
``request.request_id`` when the event carries one, else the RAG ``topic_id`` (Trieve's chat thread), else
the event's own request id, else a generated UUID4.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Blueprint, current_app, request
from turret.bounds import IngestBounds, OutOfBounds
from turret.landing import make_record, new_event_id, utc_now

from . import auth
from .body import read_json_body
from .errors import ApiError
from .trieve_schema import SchemaError, build_variants, validate_event

bp = Blueprint("trieve", __name__)

DATASET_HEADER = "TR-Dataset"
AUTH_HEADER = "Authorization"
_BEARER = re.compile(r"^\s*(?:Bearer|ApiKey)\s+(?P<key>\S+)\s*$", re.IGNORECASE)


def api_key_from_header(value: str | None) -> str | None:
    """``Authorization: <key>`` or ``Authorization: Bearer <key>`` -> the key."""
    if value is None:
        return None
    match = _BEARER.match(value)
    return match["key"] if match else value.strip() or None


def _same_uuid(a: str, b: str) -> bool:
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return False


def check_dataset(project: Any, dataset: str | None) -> None:
    """TR-Dataset must name the key's own project, by id (a UUID) or by name (the tracking id)."""
    if dataset is None or not dataset.strip():
        raise ApiError("INVALID_REQUEST", f"{DATASET_HEADER} header is required: the project id or name")
    dataset = dataset.strip()
    try:
        uuid.UUID(dataset)
        is_id = True
    except ValueError:
        is_id = False
    # As in Trieve: a value that parses as a UUID is an id; anything else is a tracking id (the name).
    matches = _same_uuid(dataset, project.project_id) if is_id else dataset == project.name
    if not matches:
        raise ApiError(
            "INVALID_REQUEST",
            f"{DATASET_HEADER} {dataset[:80]!r} is not the project of this API key",
            field=DATASET_HEADER,
        )


def _count(value: Any) -> int | None:
    return len(value) if isinstance(value, list | dict) else None


def flat_metadata(event: dict[str, Any]) -> dict[str, Any]:
    """The flat metadata the topic engine sees: free text, enum-like fields and numbers; nulls left out."""
    kind = event["event_type"]
    rating = event.get("query_rating")
    clicked = event.get("clicked_items")
    purchase_items = event.get("items") if kind == "purchase" else None
    candidates: dict[str, Any] = {
        "event_type": kind,
        # Free text, clustered into topics.
        "query": event.get("query") if kind == "search" else None,
        "user_message": event.get("user_message") if kind == "rag" else None,
        # Enum-like fields, for segmentation.
        "location": event.get("location"),
        "search_type": event.get("search_type"),
        "rag_type": event.get("rag_type"),
        "recommendation_type": event.get("recommendation_type"),
        "request_type": (event.get("request") or {}).get("request_type"),
        "is_conversion": event.get("is_conversion"),
        # Numbers, for aggregation.
        "latency": event.get("latency"),
        "tokens": event.get("tokens"),
        "top_score": event.get("top_score"),
        "hallucination_score": event.get("hallucination_score"),
        "rating": rating.get("rating") if isinstance(rating, dict) else None,
        "position": clicked.get("position") if isinstance(clicked, dict) else None,
        "items_count": _count(event.get("items")),
        "results_count": _count(event.get("results")),
        "revenue": sum(item["revenue"] for item in purchase_items) if purchase_items else None,
    }
    return {key: value for key, value in candidates.items() if value is not None}


def check_metadata_bounds(metadata: dict[str, Any], bounds: IngestBounds) -> None:
    """The flat metadata is within the ingest bounds (turret.bounds), like a Turret event's.

    Each value as sent was checked by the schema and the strict body parser; a derived one can still fall
    outside: ``revenue`` is the sum of ``items[].revenue`` (two items of 1.7e308 sum to ``inf``, which JSON
    cannot hold), and a free-form ``location`` is text like any other.
    """
    try:
        bounds.check_metadata(metadata)
    except OutOfBounds as exc:
        message = exc.message
        if exc.field == "metadata.revenue":
            summed = "the sum of items[].revenue is too large to store: it"
            message = message.replace("metadata.revenue", summed, 1)
        elif exc.field and exc.field.startswith("metadata."):
            message = message.replace("metadata.", "", 1)
        field = exc.field.removeprefix("metadata.") if exc.field else None
        if exc.text_too_long:
            raise ApiError("TEXT_TOO_LONG", message, 413, field=field) from None
        raise ApiError("INVALID_REQUEST", message, field=field) from None


# Events that answer a request (search, RAG, recommendation): their request id is what later events name in
# ``request.request_id``. Trieve's own search API returns it; through this endpoint the app sends it as
# ``request_id`` (a Turret extension), or Turret makes one and answers it in REQUEST_ID_HEADER.
REQUEST_EVENT_TYPES = frozenset({"search", "rag", "recommendation"})
REQUEST_ID_HEADER = "TR-Request-Id"


def request_id_of(event: dict[str, Any]) -> tuple[str | None, bool]:
    """``(request id, generated)`` of a search, RAG or recommendation event; ``(None, False)`` otherwise."""
    if event["event_type"] not in REQUEST_EVENT_TYPES:
        return None, False
    if event.get("request_id"):
        return str(uuid.UUID(event["request_id"])), False
    return str(uuid.uuid4()), True


def _session_id(event: dict[str, Any], request_id: str | None) -> str | None:
    """The conversation an event belongs to: the request it follows (``request.request_id``), a RAG
    event's chat thread (``topic_id``), else the event's own request id; None: generate one."""
    req = event.get("request")
    if isinstance(req, dict) and req.get("request_id"):
        return str(uuid.UUID(req["request_id"]))
    if event["event_type"] == "rag" and event.get("topic_id"):
        return event["topic_id"]
    return request_id


@bp.put("/api/analytics/events")
def send_event_data() -> Any:
    """Land one Trieve analytics event; 204 on success."""
    project = auth.authenticate(api_key_from_header(request.headers.get(AUTH_HEADER)), AUTH_HEADER)
    check_dataset(project, request.headers.get(DATASET_HEADER))
    body = read_json_body()
    runtime = current_app.extensions["turret"]
    try:
        event = validate_event(body, build_variants(runtime.settings))
    except SchemaError as exc:
        raise ApiError("INVALID_REQUEST", str(exc)) from None
    metadata = flat_metadata(event)
    check_metadata_bounds(metadata, IngestBounds.from_settings(runtime.settings))
    granted, headers, decision = auth.acquire(project, 1)
    if granted < 1:
        raise auth.rate_limited(decision, headers)

    received_at = utc_now()
    # A request's id is its event id too: the join key of the events that follow it, and a retried
    # search with the same request_id is loaded once.
    request_id, request_id_generated = request_id_of(event)
    session_id = _session_id(event, request_id)
    session_generated = session_id is None or (session_id == request_id and request_id_generated)
    user_id = event.get("user_id") or None  # "" means anonymous in Trieve clients: generate one
    record = make_record(
        project_id=project.project_id,
        contract="trieve",
        event_type=event["event_type"],
        name=event.get("event_name") or event["event_type"],
        metadata=metadata,
        session_id=session_id or str(uuid.uuid4()),
        user_id=user_id or str(uuid.uuid4()),
        session_id_generated=session_generated,
        user_id_generated=user_id is None,
        timestamp=received_at,
        received_at=received_at,
        event_id=request_id or new_event_id(),
        payload=event,
    )
    auth.append([record])
    if request_id is not None:
        headers = {**headers, REQUEST_ID_HEADER: request_id}
    return "", 204, headers
