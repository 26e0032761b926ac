"""Validation of Turret events (``POST /track`` and each item of ``POST /track/batch``).

Pure functions over the parsed JSON: they raise :class:`~ingest_api.errors.ApiError` with the code and a
sentence naming the field and the limit, so the same rules serve the single and the batch endpoint. The
bounds themselves (lengths, timestamps, key names, sizes) live in :mod:`turret.bounds`, which the loader and
the data checks read too; this module adds the shape of a Turret event (its fields, required text).
docs/api.md lists the rules; docs/adr/0001-ingest-contract.md says why each was chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from turret.bounds import MAX_TIMESTAMP_LENGTH, IngestBounds, OutOfBounds, json_type
from turret.landing import make_record, new_event_id
from turret.settings import Settings

from .errors import ApiError

TRACK_FIELDS = ("name", "session_id", "user_id", "metadata", "timestamp", "event_id")
_TRACK_FIELD_SET = frozenset(TRACK_FIELDS)
ID_FIELDS = ("session_id", "user_id", "event_id")


@dataclass(frozen=True)
class TrackEvent:
    """A validated event; ``None`` ids mean "generate one"."""

    name: str
    metadata: dict[str, Any]
    session_id: str | None
    user_id: str | None
    event_id: str | None
    timestamp: datetime | None


def _invalid(message: str, field: str | None = None) -> ApiError:
    return ApiError("INVALID_REQUEST", message, 400, field=field)


def _missing(message: str, field: str) -> ApiError:
    return ApiError("MISSING_REQUIRED_FIELD", message, 400, field=field)


def _from_bounds(exc: OutOfBounds) -> ApiError:
    if exc.text_too_long:
        return ApiError("TEXT_TOO_LONG", exc.message, 413, field=exc.field)
    return _invalid(exc.message, exc.field)


def check_id(value: Any, field: str, bounds: IngestBounds) -> str | None:
    """An id is absent (``None``) or a non-blank string within ``max_id_length``, kept as sent."""
    if value is None:
        return None
    try:
        return bounds.check_id(value, field)
    except OutOfBounds as exc:
        raise _from_bounds(exc) from None


def parse_timestamp(value: Any, now: datetime, bounds: IngestBounds) -> datetime | None:
    """ISO 8601 to aware UTC; naive means UTC; within :meth:`IngestBounds.check_timestamp` of ``now``."""
    if value is None:
        return None
    example = "e.g. 2025-01-31T12:00:00Z"
    if not isinstance(value, str):
        raise _invalid(f"timestamp must be an ISO 8601 string ({example}), got {json_type(value)}",
                       "timestamp")
    if len(value) > MAX_TIMESTAMP_LENGTH:
        raise _invalid(f"timestamp is not an ISO 8601 date-time ({example})", "timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"timestamp {value!r} is not an ISO 8601 date-time ({example})", "timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _invalid(f"timestamp {value!r} is out of range in UTC", "timestamp") from None
    try:
        return bounds.check_timestamp(parsed, now, value)
    except OutOfBounds as exc:
        raise _from_bounds(exc) from None


def check_metadata(value: Any, bounds: IngestBounds) -> dict[str, Any]:
    """A flat object within the bounds, with at least one non-blank string (the text to cluster)."""
    if value is None:
        raise _missing("metadata is required: an object holding the text to cluster, "
                       "e.g. {\"prompt\": \"...\"}",
                       "metadata")
    try:
        bounds.check_metadata(value)
    except OutOfBounds as exc:
        raise _from_bounds(exc) from None
    if not any(isinstance(item, str) and item.strip() for item in value.values()):
        raise _missing(
            "metadata has no non-empty string value; at least one key must hold the text to cluster, "
            "e.g. {\"prompt\": \"How do I reset my password?\"}",
            "metadata",
        )
    return value


def validate_event(body: Any, settings: Settings, now: datetime) -> TrackEvent:
    """Check one event object; raise ``ApiError`` for the first problem found (fields in a fixed order)."""
    if not isinstance(body, dict):
        raise _invalid(f"an event must be a JSON object, got {json_type(body)}")
    if not _TRACK_FIELD_SET.issuperset(body):
        unknown = sorted(set(body) - _TRACK_FIELD_SET)
        raise _invalid(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(repr(u[:60]) for u in unknown[:5])}; "
            f"allowed fields are {', '.join(TRACK_FIELDS)} (put your own data in metadata)",
            unknown[0][:60],
        )
    get = body.get
    bounds = IngestBounds.from_settings(settings)
    name = get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise _missing("name is required: a non-empty event name such as \"user_message\"", "name")
    try:
        bounds.check_name(name)
    except OutOfBounds as exc:
        raise _from_bounds(exc) from None
    session_id = check_id(get("session_id"), "session_id", bounds)
    user_id = check_id(get("user_id"), "user_id", bounds)
    event_id = check_id(get("event_id"), "event_id", bounds)
    timestamp = parse_timestamp(get("timestamp"), now, bounds)
    metadata = check_metadata(get("metadata"), bounds)
    return TrackEvent(
        name=name,
        metadata=metadata,
        session_id=session_id,
        user_id=user_id,
        event_id=event_id,
        timestamp=timestamp,
    )


def uuid4_strings(n: int) -> list[str]:
    """``n`` random UUID4s as canonical strings, from one ``os.urandom`` call (``uuid.uuid4`` makes one
    each)."""
    if n <= 0:
        return []
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _record(event: TrackEvent, project_id: str, received_at: datetime, uuids: list[str]) -> dict[str, Any]:
    return make_record(
        project_id=project_id,
        contract="turret",
        name=event.name,
        metadata=event.metadata,
        session_id=event.session_id or uuids.pop(),
        user_id=event.user_id or uuids.pop(),
        session_id_generated=event.session_id is None,
        user_id_generated=event.user_id is None,
        timestamp=event.timestamp or received_at,
        received_at=received_at,
        event_id=event.event_id or new_event_id(),
    )


def _missing_ids(event: TrackEvent) -> int:
    return (event.session_id is None) + (event.user_id is None)


def to_record(event: TrackEvent, project_id: str, received_at: datetime) -> dict[str, Any]:
    """The landing record of a validated event; missing ids are generated here (UUID4, flagged)."""
    return _record(event, project_id, received_at, uuid4_strings(_missing_ids(event)))


def to_records(events: list[TrackEvent], project_id: str, received_at: datetime) -> list[dict[str, Any]]:
    """:func:`to_record` for a batch: the random bytes of every generated UUID4 come from one call."""
    uuids = uuid4_strings(sum(_missing_ids(event) for event in events))
    return [_record(event, project_id, received_at, uuids) for event in events]
