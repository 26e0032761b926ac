"""Trieve-compatible ingestion: ``PUT /api/analytics/events`` (docs seed 004).

Headers: ``TR-Dataset`` (the project's id, or its name as Trieve's "tracking id") and ``Authorization``
(the API key, raw or ``Bearer <key>``). Success is ``204`` with an empty body; errors are
``{"message": "..."}`` like Trieve's ``ErrorResponseBody``.

Each event lands as ``contract="trieve"``. Its ``metadata`` is a flat object built for the topic engine:
the free text (``query`` of a search, ``user_message`` of a RAG event) plus flat enum-like fields and
numbers; the whole event as sent is kept under ``payload``. ``session_id`` is ``request.request_id``
when the event carries one, else the RAG ``topic_id`` (Trieve's chat thread), else a generated UUID4.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from flask import Blueprint, current_app, request

from turret.landing import make_record, new_event_id, utc_now

from . import auth
from .body import INT64_MAX, INT64_MIN, read_json_body
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
    """The flat metadata the topic engine sees: free text, enum-like fields and numbers. Nulls are left out."""
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


def check_derived_numbers(metadata: dict[str, Any]) -> None:
    """Every number in the flat metadata is storable: floats finite, integers within 64 bits.

    Each number as sent was checked by the strict body parser; a derived one (``revenue``, the sum of
    ``items[].revenue``) can still overflow: two items of 1.7e308 sum to ``inf``, which JSON cannot hold.
    """
    for key, value in metadata.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, float):
            if math.isfinite(value):
                continue
            limit = "it is not a finite number (beyond about ±1.8e308)"
        elif INT64_MIN <= value <= INT64_MAX:
            continue
        else:
            limit = "it does not fit in a signed 64-bit integer"
        source = "the sum of items[].revenue" if key == "revenue" else key
        raise ApiError("INVALID_REQUEST", f"{source} is too large to store: {limit}", field=key)


def _session_id(event: dict[str, Any]) -> str | None:
    req = event.get("request")
    if isinstance(req, dict) and req.get("request_id"):
        return req["request_id"]
    if event["event_type"] == "rag" and event.get("topic_id"):
        return event["topic_id"]
    return None


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
    check_derived_numbers(metadata)
    granted, headers, decision = auth.acquire(project, 1)
    if granted < 1:
        raise auth.rate_limited(decision, headers)

    received_at = utc_now()
    session_id = _session_id(event)
    user_id = event.get("user_id") or None  # "" means anonymous in Trieve clients: generate one
    record = make_record(
        project_id=project.project_id,
        contract="trieve",
        event_type=event["event_type"],
        name=event.get("event_name") or event["event_type"],
        metadata=metadata,
        session_id=session_id or str(uuid.uuid4()),
        user_id=user_id or str(uuid.uuid4()),
        session_id_generated=session_id is None,
        user_id_generated=user_id is None,
        timestamp=received_at,
        received_at=received_at,
        event_id=new_event_id(),
        payload=event,
    )
    auth.append([record])
    return "", 204, headers
