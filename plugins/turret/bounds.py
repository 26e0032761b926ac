"""The ingest bounds: what one event may hold, written once (docs/adr/0009-ingest-bounds-one-owner.md).

The ingest API refuses an event outside these bounds (400, or 413 for a long text), the loader quarantines
a landed record outside them (a record written under looser settings, or by hand), and the raw data check
(``turret.quality``) quarantines a row of ``raw.events`` outside them, whatever way it got there. All three
read this module, so whatever the API acknowledges passes every later check.

Fixed bounds are constants; the ones an operator may tune (text length, key count, id length, clock skew)
are ``TURRET_*`` settings, read through :meth:`IngestBounds.from_settings`. Metadata keys are free names:
a key such as ``$browser`` or ``a.b`` is a name, never a JSON path, so every reader of ``metadata`` in SQL
walks the object with ``json_each`` (key and value pairs) instead of ``metadata ->> key``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turret.settings import Settings

# The earliest event time: the Unix epoch. Backfills reach back decades, not centuries; a year-0999
# timestamp is a client bug (a wrong field, seconds read as milliseconds), not an event.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TIMESTAMP_TEXT = "1970-01-01T00:00:00Z"
# Longest timestamp string parsed at all (ISO 8601 with offset and nanoseconds is 35 characters).
MAX_TIMESTAMP_LENGTH = 64
# Event names (Turret ``name``, Trieve ``event_name``) are labels, not text.
MAX_NAME_LENGTH = 200
# Metadata keys become field names in the warehouse (pipeline.fields); a sentence is not a field name.
MAX_METADATA_KEY_LENGTH = 128
# Numbers in metadata are stored as JSON numbers: finite doubles and signed 64-bit integers.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class OutOfBounds(ValueError):
    """A value outside the bounds. ``field`` names it (``metadata.prompt``); ``text_too_long`` marks the
    one case the API answers 413 rather than 400."""

    def __init__(self, message: str, field: str | None = None, *, text_too_long: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.text_too_long = text_too_long


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


@dataclass(frozen=True)
class IngestBounds:
    """The tunable bounds, from :class:`~turret.settings.Settings`, with the checks that use them."""

    max_text_length: int
    max_metadata_keys: int
    max_id_length: int
    max_future_skew_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestBounds:
        return cls(
            max_text_length=settings.max_text_length,
            max_metadata_keys=settings.max_metadata_keys,
            max_id_length=settings.max_id_length,
            max_future_skew_seconds=settings.max_future_skew_seconds,
        )

    # ---- one value at a time (the API's messages)

    def check_name(self, value: Any, field: str = "name") -> str:
        """A non-blank string of at most :data:`MAX_NAME_LENGTH` characters."""
        if not isinstance(value, str):
            raise OutOfBounds(f"{field} must be a string, got {json_type(value)}", field)
        if not value.strip():
            raise OutOfBounds(f"{field} is blank; an event name is required", field)
        if len(value) > MAX_NAME_LENGTH:
            raise OutOfBounds(f"{field} is {len(value)} characters; the maximum is {MAX_NAME_LENGTH}", field)
        return value

    def check_id(self, value: Any, field: str) -> str:
        """A non-blank string of at most ``max_id_length`` characters, kept as sent."""
        if not isinstance(value, str):
            raise OutOfBounds(f"{field} must be a string, got {json_type(value)}", field)
        if not value.strip():
            raise OutOfBounds(
                f"{field} is an empty string; omit it or send null to have one generated", field
            )
        if len(value) > self.max_id_length:
            raise OutOfBounds(
                f"{field} is {len(value)} characters; the maximum is {self.max_id_length}", field
            )
        return value

    def check_timestamp(self, at: datetime, received_at: datetime, shown: str | None = None) -> datetime:
        """An aware event time from :data:`MIN_TIMESTAMP` to ``received_at`` plus the allowed clock skew."""
        shown = shown if shown is not None else at.isoformat()
        if at < MIN_TIMESTAMP:
            raise OutOfBounds(
                f"timestamp {shown!r} is before {MIN_TIMESTAMP_TEXT}; the earliest accepted timestamp is "
                f"{MIN_TIMESTAMP_TEXT} (the Unix epoch)",
                "timestamp",
            )
        if at > received_at + timedelta(seconds=self.max_future_skew_seconds):
            ahead = int((at - received_at).total_seconds())
            raise OutOfBounds(
                f"timestamp {shown!r} is {ahead} seconds in the future; at most "
                f"{self.max_future_skew_seconds} seconds ahead of the server clock is accepted",
                "timestamp",
            )
        return at

    def check_metadata_key(self, key: Any) -> str:
        """A non-blank string of at most :data:`MAX_METADATA_KEY_LENGTH` characters (any characters: it is a
        name, never a path)."""
        if not isinstance(key, str) or not key.strip():
            raise OutOfBounds("metadata has an empty key; every key must name a field", "metadata")
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise OutOfBounds(
                f"metadata key {key[:40]!r}... is {len(key)} characters; "
                f"the maximum is {MAX_METADATA_KEY_LENGTH}",
                "metadata",
            )
        return key

    def check_metadata_value(self, key: str, value: Any, where: str | None = None) -> None:
        """A string of at most ``max_text_length`` characters, a storable number, a boolean or null."""
        where = where or f"metadata.{key}"
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, str):
            if len(value) > self.max_text_length:
                raise OutOfBounds(
                    f"{where} is {len(value)} characters; the maximum is {self.max_text_length}",
                    where,
                    text_too_long=True,
                )
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise OutOfBounds(f"{where} is not a finite number (beyond about ±1.8e308)", where)
            return
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise OutOfBounds(f"{where} does not fit in a signed 64-bit integer", where)
            return
        raise OutOfBounds(
            f"{where} is an {json_type(value)}; metadata values must be a string, number, boolean or null "
            "(flatten nested data into separate keys)",
            where,
        )

    def check_metadata(self, value: Any) -> dict[str, Any]:
        """A flat object of at most ``max_metadata_keys`` keys, each key and value within bounds."""
        if not isinstance(value, dict):
            raise OutOfBounds(f"metadata must be an object, got {json_type(value)}", "metadata")
        if len(value) > self.max_metadata_keys:
            raise OutOfBounds(
                f"metadata has {len(value)} keys; the maximum is {self.max_metadata_keys}", "metadata"
            )
        for key, item in value.items():
            self.check_metadata_value(self.check_metadata_key(key), item)
        return value

    # ---- a whole landing record (the loader)

    def record_problem(self, record: dict[str, Any]) -> str | None:
        """``None`` if a landing record (already of the right shape, ``turret.landing.validate_record``) is
        within bounds, else the first reason it is not."""
        from turret.landing import parse_iso

        try:
            self.check_name(record["name"])
            for field in ("event_id", "session_id", "user_id"):
                self.check_id(record[field], field)
            self.check_timestamp(
                parse_iso(record["timestamp"]), parse_iso(record["received_at"]), record["timestamp"]
            )
            self.check_metadata(record["metadata"])
        except OutOfBounds as exc:
            return f"out of bounds: {exc.message}"
        return None
