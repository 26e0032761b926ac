"""Validation of Turret events (``POST /track`` and each item of ``POST /track/batch``).

Pure functions over the parsed JSON: they raise :class:`~ingest_api.errors.ApiError` with the code and a
sentence naming the field and the limit, so the same rules serve the single and the batch endpoint.
docs/api.md lists the rules; docs/adr/0001-ingest-contract.md says why each was chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from turret.landing import make_record, new_event_id
from turret.settings import Settings

from .errors import ApiError

TRACK_FIELDS = ("name", "session_id", "user_id", "metadata", "timestamp", "event_id")
_TRACK_FIELD_SET = frozenset(TRACK_FIELDS)
ID_FIELDS = ("session_id", "user_id", "event_id")
MAX_NAME_LENGTH = 200
# Metadata keys become field names in the warehouse (pipeline.fields); a sentence is not a field name.
MAX_METADATA_KEY_LENGTH = 128
MAX_TIMESTAMP_LENGTH = 64
# The earliest accepted ``timestamp``: the Unix epoch. Backfills reach back decades, not centuries; a
# year-0999 timestamp is a client bug (a wrong field, seconds read as milliseconds), not an event.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TIMESTAMP_TEXT = "1970-01-01T00:00:00Z"


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


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_id(value: Any, field: str, max_length: int) -> str | None:
    """An id is absent (``None``) or a non-blank string of at most ``max_length`` characters, kept as sent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{field} must be a string, got {json_type(value)}", field)
    if not value.strip():
        raise _invalid(f"{field} is an empty string; omit it or send null to have one generated", field)
    if len(value) > max_length:
        raise _invalid(f"{field} is {len(value)} characters; the maximum is {max_length}", field)
    return value


def parse_timestamp(value: Any, now: datetime, max_future_skew_seconds: int) -> datetime | None:
    """ISO 8601 to aware UTC; naive means UTC; from :data:`MIN_TIMESTAMP` (backfills) to ``now`` + skew."""
    if value is None:
        return None
    example = "e.g. 2025-01-31T12:00:00Z"
    if not isinstance(value, str):
        raise _invalid(f"timestamp must be an ISO 8601 string ({example}), got {json_type(value)}", "timestamp")
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
    if parsed < MIN_TIMESTAMP:
        raise _invalid(
            f"timestamp {value!r} is before {MIN_TIMESTAMP_TEXT}; the earliest accepted timestamp is "
            f"{MIN_TIMESTAMP_TEXT} (the Unix epoch)",
            "timestamp",
        )
    if parsed > now + timedelta(seconds=max_future_skew_seconds):
        ahead = int((parsed - now).total_seconds())
        raise _invalid(
            f"timestamp {value!r} is {ahead} seconds in the future; at most {max_future_skew_seconds} "
            "seconds ahead of the server clock is accepted",
            "timestamp",
        )
    return parsed


def check_metadata(value: Any, settings: Settings) -> dict[str, Any]:
    """A flat object of str/number/bool/null values with at least one non-blank string (the text to cluster)."""
    if value is None:
        raise _missing("metadata is required: an object holding the text to cluster, e.g. {\"prompt\": \"...\"}",
                       "metadata")
    if not isinstance(value, dict):
        raise _invalid(f"metadata must be an object, got {json_type(value)}", "metadata")
    if len(value) > settings.max_metadata_keys:
        raise _invalid(
            f"metadata has {len(value)} keys; the maximum is {settings.max_metadata_keys}", "metadata"
        )
    has_text = False
    for key, item in value.items():
        if not key.strip():
            raise _invalid("metadata has an empty key; every key must name a field", "metadata")
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise _invalid(
                f"metadata key {key[:40]!r}... is {len(key)} characters; the maximum is {MAX_METADATA_KEY_LENGTH}",
                "metadata",
            )
        where = f"metadata.{key}"
        if isinstance(item, dict | list):
            raise _invalid(
                f"{where} is an {json_type(item)}; metadata values must be a string, number, boolean or null "
                "(flatten nested data into separate keys)",
                where,
            )
        if isinstance(item, str):
            if len(item) > settings.max_text_length:
                raise ApiError(
                    "TEXT_TOO_LONG",
                    f"{where} is {len(item)} characters; the maximum is {settings.max_text_length}",
                    413,
                    field=where,
                )
            if item.strip():
                has_text = True
    if not has_text:
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
    name = get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise _missing("name is required: a non-empty event name such as \"user_message\"", "name")
    if not isinstance(name, str):
        raise _invalid(f"name must be a string, got {json_type(name)}", "name")
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(f"name is {len(name)} characters; the maximum is {MAX_NAME_LENGTH}", "name")
    max_id = settings.max_id_length
    session_id = check_id(get("session_id"), "session_id", max_id)
    user_id = check_id(get("user_id"), "user_id", max_id)
    event_id = check_id(get("event_id"), "event_id", max_id)
    timestamp = parse_timestamp(get("timestamp"), now, settings.max_future_skew_seconds)
    metadata = check_metadata(get("metadata"), settings)
    return TrackEvent(
        name=name,
        metadata=metadata,
        session_id=session_id,
        user_id=user_id,
        event_id=event_id,
        timestamp=timestamp,
    )


def uuid4_strings(n: int) -> list[str]:
    """``n`` random UUID4s as canonical strings, from one ``os.urandom`` call (``uuid.uuid4`` makes one each)."""
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
