"""The filters every dashboard page takes from its query string, and the SQL scope they select.

``?project=<id>&field=prompt&event=user_prompt&start=2026-11-01&end=2026-11-07&enum.platform=web``

``project`` and ``field`` choose whose topics are shown (they default to the busiest project and its
``prompt`` field, else its first text field); the others narrow the events counted. Invalid values are a
client's mistake and raise :class:`FilterError` (a 400 with a message), never a server error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

ENUM_PREFIX = "enum."
MAX_ENUM_FILTERS = 8
_NAME = re.compile(r"^[\w.\- ]{1,128}$")


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


@dataclass(frozen=True)
class Filters:
    project_id: str | None = None
    field: str | None = None
    event_name: str | None = None
    start: date | None = None
    end: date | None = None  # inclusive
    enums: tuple[tuple[str, str], ...] = ()

    @property
    def narrows_events(self) -> bool:
        """Whether anything beyond project and text field is chosen (precomputed marts no longer apply)."""
        return bool(self.event_name or self.start or self.end or self.enums)

    def with_defaults(self, project_id: str | None, text_field: str | None) -> Filters:
        return replace(self, project_id=self.project_id or project_id, field=self.field or text_field)

    def query_args(self, **changes: str | None) -> dict[str, str]:
        """The query string of these filters (with ``changes``), for links that keep them."""
        args: dict[str, str] = {}
        for key, value in (("project", self.project_id), ("field", self.field), ("event", self.event_name),
                           ("start", self.start.isoformat() if self.start else None),
                           ("end", self.end.isoformat() if self.end else None)):
            if value:
                args[key] = value
        for name, value in self.enums:
            args[ENUM_PREFIX + name] = value
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return args


def _date(args: Mapping[str, str], name: str) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FilterError(f"{name}: {raw[:40]!r} is not a date (use YYYY-MM-DD)") from None


def _name(args: Mapping[str, str], name: str) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not _NAME.match(raw):
        raise FilterError(f"{name}: {raw[:40]!r} is not a valid name")
    return raw


def parse(args: Mapping[str, str]) -> Filters:
    """Filters from a request's query arguments; :class:`FilterError` for a value that cannot be used."""
    start, end = _date(args, "start"), _date(args, "end")
    if start and end and end < start:
        raise FilterError(f"end ({end}) is before start ({start})")
    enums = []
    for key in sorted(args):
        if key.startswith(ENUM_PREFIX):
            name = key[len(ENUM_PREFIX):]
            value = (args.get(key) or "").strip()
            if not value:
                continue
            if not _NAME.match(name) or len(value) > 256:
                raise FilterError(f"{key}: not a valid enum filter")
            enums.append((name, value))
    if len(enums) > MAX_ENUM_FILTERS:
        raise FilterError(f"at most {MAX_ENUM_FILTERS} enum filters")
    return Filters(project_id=_name(args, "project"), field=_name(args, "field"),
                   event_name=_name(args, "event"), start=start, end=end, enums=tuple(enums))


def enum_value_key(field: str, value: str) -> str:
    """One enum value as ``fct_events.enum_values`` holds it (the dbt macro ``enum_value_key``):
    ``field=value`` with ``%``, ``|`` and ``=`` written ``%25``, ``%7C`` and ``%3D``, so ``|field=value|``
    matches a whole value only."""
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("|", "%7C").replace("=", "%3D")

    return f"{escape(field)}={escape(value)}"


def event_scope(f: Filters, alias: str = "e", enum_values: bool = True) -> tuple[str, list]:
    """``where`` conditions on ``marts.fct_events`` (as ``alias``) selecting the filtered events.

    An enum filter is a predicate on the ``enum_values`` column (a few milliseconds over 1M events); with
    ``enum_values=False`` (a snapshot published before that column) a semi join with ``fct_event_enums``."""
    where = [f"{alias}.project_id = ?", f"{alias}.field = ?"]
    params: list = [f.project_id, f.field]
    if f.event_name:
        where.append(f"{alias}.event_name = ?")
        params.append(f.event_name)
    if f.start:
        where.append(f"{alias}.occurred_at >= ?")
        params.append(datetime.combine(f.start, datetime.min.time()))
    if f.end:
        where.append(f"{alias}.occurred_at < ?")
        params.append(datetime.combine(f.end + timedelta(days=1), datetime.min.time()))
    for name, value in f.enums:
        if enum_values:
            where.append(f"contains({alias}.enum_values, ?)")
            params.append(f"|{enum_value_key(name, value)}|")
            continue
        # An uncorrelated IN is a semi join DuckDB runs about twice as fast as the equivalent EXISTS here.
        where.append(f"{alias}.event_id in (select x.event_id from marts.fct_event_enums x "
                     "where x.project_id = ? and x.field = ? and x.value = ?)")
        params.extend([f.project_id, name, value])
    return " and ".join(where), params


def copied_scope(f: Filters, event_name: str, enum_values: str) -> tuple[str, list]:
    """``and`` conditions of the event name and enum filters on another mart's copies of the event's
    ``event_name`` and ``enum_values`` (a transition's departing event, a segment's first message)."""
    where, params = "", []
    if f.event_name:
        where += f" and {event_name} = ?"
        params.append(f.event_name)
    for name, value in f.enums:
        where += f" and contains({enum_values}, ?)"
        params.append(f"|{enum_value_key(name, value)}|")
    return where, params


def time_scope(f: Filters, column: str) -> tuple[str, list]:
    """``and`` conditions of the date range on another timestamp equal to the event's ``occurred_at`` (an
    enum row's, a transition's ``from_occurred_at``): narrows the rows a join with the events has to probe."""
    where, params = "", []
    if f.start:
        where += f" and {column} >= ?"
        params.append(datetime.combine(f.start, datetime.min.time()))
    if f.end:
        where += f" and {column} < ?"
        params.append(datetime.combine(f.end + timedelta(days=1), datetime.min.time()))
    return where, params
