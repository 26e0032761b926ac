"""Every query the dashboard runs, in one place, over the published marts (docs/marts.md) only.

The dashboard never opens the warehouse: the pipeline writes it, and DuckDB lets no reader in while it does
(nor a writer while a reader holds it). It reads ``<published>/turret.duckdb``, the snapshot the pipeline
switches atomically after each run, and reopens when the link points at a new snapshot. Aggregation happens
in DuckDB; Python only shapes the rows for the templates and charts. A mart column renamed upstream is a
change here only.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from turret.conversation import NON_TOPICAL_KINDS
from turret.publish import CURRENT_NAME
from turret.ui.filters import Filters, copied_scope, event_scope, time_scope

UNCLUSTERED = -1
SPARK_DAYS = 14
MAP_EXAMPLES_PER_TOPIC = 40
MAX_SANKEY_LINKS = 40
# Snapshots published before dim_topics.is_conversational (the pipeline's own rule, turret.conversation)
# call a topic conversational when most of its messages are greetings, thanks or confirmations.
CONVERSATIONAL_SHARE = 0.5
_KINDS_SQL = ", ".join(f"'{k}'" for k in sorted(NON_TOPICAL_KINDS))


class MartsUnavailable(RuntimeError):
    """Nothing published yet (or the snapshot cannot be opened); the message says what to do."""


class NotFound(LookupError):
    """A project, field or topic that the published marts do not have."""


@dataclass(frozen=True)
class Snapshot:
    """One opened snapshot: its file and a read-only connection (cursors per request)."""

    path: Path
    con: Any


class MartsReader:
    """Read-only access to the current published snapshot, reopened when ``turret.duckdb`` is switched."""

    def __init__(self, published: Path) -> None:
        self.link = Path(published) / CURRENT_NAME
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self.closed = False  # set by close(): the snapshot watcher (ui/warm.py) stops

    def snapshot(self) -> Snapshot:
        import duckdb

        try:
            target = Path(os.path.realpath(self.link, strict=True))
        except OSError:
            raise MartsUnavailable(
                f"no published marts at {self.link}: run the pipeline first (turret pipeline run)"
            ) from None
        with self._lock:
            if self.closed:
                raise MartsUnavailable("the dashboard is shutting down")
            if self._snapshot is None or self._snapshot.path != target:
                try:
                    con = duckdb.connect(str(target), read_only=True)
                except duckdb.Error as exc:
                    raise MartsUnavailable(f"cannot open the published marts {target}: {exc}") from None
                # The previous connection is left to the garbage collector: a request may still use a cursor.
                self._snapshot = Snapshot(target, con)
                self._cache.clear()
            return self._snapshot

    def cursor(self) -> Any:
        return self.snapshot().con.cursor()

    def cached(self, key: tuple, compute: Any) -> Any:
        """``compute()`` once per snapshot and key (options lists, the topic map layout)."""
        snap = self.snapshot()
        full = (snap.path, *key)
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
        value = compute()
        with self._lock:
            self._cache[full] = value
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return value

    def close(self, timeout: float = 30.0) -> None:
        """Close the snapshot's connection. No new query starts once this is called; one still running
        (the snapshot watcher's, ui/warm.py) is waited for, since DuckDB will not close a busy connection."""
        import time

        import duckdb

        self.closed = True
        with self._lock:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                snapshot.con.close()
                return
            except duckdb.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _rows(cur: Any, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _in_scope(f: Filters, column: str, key: str = "event_id") -> str:
    """``and <column> in (<key> of the filtered events)`` when filters narrow the events, else nothing: the
    project and field conditions every query has already select them all, and the join would cost."""
    return f" and {column} in (select {key} from ev)" if f.narrows_events else ""


def _journey_scope(reader: MartsReader, f: Filters, table: str, alias: str) -> tuple[str, list]:
    """``and`` conditions selecting the rows of a journey mart whose event is in scope: a transition's
    departing event (``fct_session_transitions``, ``from_*``), a segment's first message
    (``fct_session_segments``, ``first_*``). Column predicates on the copies of the event's time, name and
    enum values the mart keeps; for a snapshot published before those copies, a semi join with the events."""
    prefix, occurred = ("from_", "from_occurred_at") if table == "fct_session_transitions" else (
        "first_", "started_at")
    where, params = time_scope(f, f"{alias}.{occurred}")  # the event's own occurred_at
    if _snapshot_has(reader, table, f"{prefix}enum_values"):
        more, more_params = copied_scope(f, f"{alias}.{prefix}event_name", f"{alias}.{prefix}enum_values")
        return where + more, params + more_params
    if f.event_name or f.enums:
        events, event_params = event_scope(f, enum_values=_has_enum_values(reader))
        where += (f" and {alias}.{prefix}event_id in "
                  f"(select e.event_id from marts.fct_events e where {events})")
        params += event_params
    return where, params


def _narrowing(reader: MartsReader, f: Filters) -> Filters:
    """``f`` without an event filter that keeps every event of the field (its only event name): such a
    filter narrows nothing, and the joins it would bring cost."""
    if not f.event_name:
        return f
    names = reader.cached(("event_names", f.project_id, f.field), lambda: [r["event_name"] for r in _rows(
        reader.cursor(), "select distinct event_name from marts.fct_events "
                         "where project_id = ? and field = ?", [f.project_id, f.field])])
    from dataclasses import replace

    return replace(f, event_name=None) if names == [f.event_name] else f


def _scoped(f: Filters, reader: MartsReader | None = None) -> tuple[str, list]:
    """A CTE ``ev`` of the filtered events, to prefix a query with. An enum filter is a predicate on
    ``fct_events.enum_values`` unless ``reader``'s snapshot was published before that column."""
    where, params = event_scope(f, enum_values=reader is None or _has_enum_values(reader))
    return f"with ev as (select e.* from marts.fct_events e where {where})", params


def _has_enum_values(reader: MartsReader) -> bool:
    return _snapshot_has(reader, "fct_events", "enum_values")


def _snapshot_has(reader: MartsReader, table: str, column: str | None = None) -> bool:
    """Whether the snapshot has this mart (and column): one published by an older version may not."""
    def compute() -> bool:
        sql = ("select count(*) from information_schema.columns where table_schema = 'marts' "
               "and table_name = ?" + (" and column_name = ?" if column else ""))
        return bool(reader.cursor().execute(sql, [table, column] if column else [table]).fetchone()[0])

    return reader.cached(("has", table, column), compute)


# --------------------------------------------------------------------------------------------- options


def projects(reader: MartsReader) -> list[dict[str, Any]]:
    """Projects with marts, busiest first."""
    return reader.cached(("projects",), lambda: _rows(
        reader.cursor(),
        "select project_id, project_name, plan, events from marts.dim_projects "
        "order by events desc nulls last, project_name",
    ))


def text_fields(reader: MartsReader, project_id: str) -> list[str]:
    return reader.cached(("fields", project_id), lambda: [r["field"] for r in _rows(
        reader.cursor(),
        "select field, sum(events) as n from marts.dim_topics where project_id = ? group by field "
        "order by n desc nulls last, field", [project_id])])


def default_scope(reader: MartsReader, f: Filters) -> Filters:
    """Fill in project and text field; raises NotFound for ones the marts do not have."""
    known = projects(reader)
    if not known:
        raise MartsUnavailable("the published marts have no projects yet: send events and run the pipeline")
    ids = {p["project_id"] for p in known}
    names = {p["project_name"]: p["project_id"] for p in known}
    project_id = f.project_id or known[0]["project_id"]
    project_id = names.get(project_id, project_id)
    if project_id not in ids:
        raise NotFound(f"no project {f.project_id!r} in the published marts")
    fields = text_fields(reader, project_id)
    field = f.field or ("prompt" if "prompt" in fields else (fields[0] if fields else None))
    if field is None:
        raise NotFound("this project has no text field with topics yet")
    if field not in fields:
        raise NotFound(f"no text field {field!r} in this project (known: {', '.join(fields)})")
    from dataclasses import replace

    return replace(f, project_id=project_id, field=field)


def filter_options(reader: MartsReader, project_id: str) -> dict[str, Any]:
    """Event names and enum fields with their values (most frequent first) for the filter bar."""
    def compute() -> dict[str, Any]:
        cur = reader.cursor()
        events = [r["event_name"] for r in _rows(
            cur, "select event_name, count(*) as n from marts.fct_events where project_id = ? "
                 "group by event_name order by n desc limit 50", [project_id])]
        enum_rows = _rows(
            cur,
            "select field, value, n from (select field, value, count(*) as n, "
            "row_number() over (partition by field order by count(*) desc, value) as rank, "
            "count(*) over (partition by field) as n_values "
            "from marts.fct_event_enums where project_id = ? group by field, value) "
            "where rank <= 50 order by field, n desc, value", [project_id])
        enums: dict[str, list[str]] = {}
        for r in enum_rows:
            enums.setdefault(r["field"], []).append(str(r["value"]))
        return {"events": events, "enums": enums}

    return reader.cached(("options", project_id), compute)


# ---------------------------------------------------------------------------------------------- overview


def overview(reader: MartsReader, f: Filters) -> dict[str, Any]:
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    cur = reader.cursor()
    if f.event_name or f.enums or not _snapshot_has(reader, "agg_activity_daily"):
        series = _rows(cur, f"""{cte}
            select occurred_at::date as day, count(*) as events, count(distinct session_id) as sessions,
                   count(distinct user_id) as users
            from ev group by 1 order by 1""", params)
    else:  # the date filter takes whole days: the daily mart holds the series
        days, day_params = "", []
        if f.start:
            days += " and event_date >= ?"
            day_params.append(f.start)
        if f.end:
            days += " and event_date <= ?"
            day_params.append(f.end)
        series = _rows(cur, f"""select event_date as day, events, sessions, users
            from marts.agg_activity_daily where project_id = ? and field = ? {days} order by 1""",
            [f.project_id, f.field, *day_params])
    totals = event_totals(reader, f)
    # Counted per topic first, labelled after: joining dim_topics row by row costs more than the count.
    # Conversational topics (thanks, greetings) are not what users ask about: left out, as on Topics.
    top = _rows(cur, f"""{cte},
        per_topic as (select topic_id, count(*) as events from ev group by topic_id)
        select p.topic_id, coalesce(t.label, 'Topic ' || p.topic_id) as label, t.theme, p.events
        from per_topic p left join marts.dim_topics t
          on t.project_id = ? and t.field = ? and t.topic_id = p.topic_id
        where not coalesce({_is_conversational_sql(reader)}, false)
        order by p.events desc, p.topic_id limit 10""", [*params, f.project_id, f.field])
    week = (week_topics(cur, f, totals["last_at"], reader) if totals["last_at"]
            else {"new": [], "growing": []})
    conversions = (conversion_totals(reader, f) if has_outcomes(reader, f.project_id, f.field) else None)
    return {"totals": totals, "series": series, "top": top, **week, "conversions": conversions}


def event_totals(reader: MartsReader, f: Filters) -> dict[str, Any]:
    """Events, sessions and users in scope and the newest event's time. Apart from the daily series: over
    grouping sets ((day), ()) each distinct count takes passes of its own."""
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    sql = f"""{cte}
        select count(*) as events, count(distinct session_id) as sessions, count(distinct user_id) as users,
               max(occurred_at) as last_at
        from ev"""
    if f.narrows_events:
        return _rows(reader.cursor(), sql, params)[0]
    # The whole field's figures change only with the snapshot (two distinct counts over every event).
    return dict(reader.cached(("totals", f.project_id, f.field),
                              lambda: _rows(reader.cursor(), sql, params)[0]))


def week_topics(cur: Any, f: Filters, last_at: datetime,
                reader: MartsReader | None = None) -> dict[str, list[dict[str, Any]]]:
    """Topics first seen in the 7 days up to the newest filtered event, and those growing most against the
    7 days before."""
    cte, params = _scoped(f, reader)
    conversational = _is_conversational_sql(reader) if reader is not None else "null"
    week_start, previous_start = last_at - timedelta(days=7), last_at - timedelta(days=14)
    rows = _rows(cur, f"""{cte},
        per_topic as (
            select topic_id, count(*) filter (where occurred_at > ?) as this_week,
                   count(*) filter (where occurred_at > ? and occurred_at <= ?) as previous_week
            from ev where topic_id <> {UNCLUSTERED} and occurred_at > ? group by topic_id
        )
        select p.topic_id, t.label, t.theme, t.first_seen_at, p.this_week, p.previous_week
        from per_topic p join marts.dim_topics t
          on t.project_id = ? and t.field = ? and t.topic_id = p.topic_id
        where not coalesce({conversational}, false)
        order by p.topic_id""",
        [*params, week_start, previous_start, week_start, previous_start, f.project_id, f.field])
    new = [r for r in rows if r["first_seen_at"] and r["first_seen_at"] > week_start and r["this_week"]]
    new = sorted(new, key=lambda r: -r["this_week"])[:5]
    growing = [dict(r, growth=(r["this_week"] - r["previous_week"]) / r["previous_week"])
               for r in rows if r["previous_week"] and r["this_week"] > r["previous_week"]]
    growing.sort(key=lambda r: (-r["growth"], -r["this_week"]))
    return {"new": new, "growing": growing[:5]}


# ------------------------------------------------------------------------------------------------ topics


def _is_conversational_sql(reader: MartsReader, alias: str = "t") -> str:
    """Whether a topic is conversational, as the pipeline decided it (``dim_topics.is_conversational``, the
    rule ``turret topics`` follows too); null for topics dim_topics does not know."""
    if _snapshot_has(reader, "dim_topics", "is_conversational"):
        return f"{alias}.is_conversational"
    return "null"


def topic_table(reader: MartsReader, f: Filters) -> dict[str, Any]:
    """One row per topic with events in scope: label, theme, events, share, daily sparkline, whether
    conversational (:func:`_is_conversational_sql`); and, when anything followed the field's messages
    (:func:`has_outcomes`), the topic's click-through rate, conversions, conversion rate and revenue over
    the filters (null where the conversion marts cannot answer for them, :func:`conversion_scope`)."""
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    cur = reader.cursor()
    conversions = conversion_scope(reader, f) if has_outcomes(reader, f.project_id, f.field) else None
    if conversions is not None and conversions.available:
        conv_cte = f""",
        conv as (
            select c.topic_id, {_CONVERSION_SUMS}
            from {conversions.table} c where {conversions.where} group by c.topic_id
        )"""
        conv_columns = ", conv.* exclude (topic_id)"
        conv_join = "left join conv on conv.topic_id = p.topic_id"
        conv_params = list(conversions.params)
    else:
        conv_cte, conv_columns, conv_join, conv_params = "", "", "", []
    rows = _rows(cur, f"""{cte},
        per_topic as (
            select topic_id, count(*) as events,
                   avg(case when message_kind in ({_KINDS_SQL}) then 1.0 else 0.0 end)
                       as conversational_share,
                   max(occurred_at) as last_at
            from ev group by topic_id
        ){conv_cte}
        select p.topic_id, coalesce(t.label, 'Topic ' || p.topic_id) as label, t.theme, t.status,
               p.events, p.events / sum(p.events) over () as share, p.conversational_share,
               {_is_conversational_sql(reader)} as is_conversational{conv_columns}
        from per_topic p left join marts.dim_topics t
          on t.project_id = ? and t.field = ? and t.topic_id = p.topic_id
        {conv_join}
        order by p.events desc, p.topic_id""", [*params, *conv_params, f.project_id, f.field])
    spark = _rows(cur, f"""{cte}, bounds as (select max(occurred_at)::date as last_day from ev)
        select topic_id, (bounds.last_day - occurred_at::date) as days_ago, count(*) as events
        from ev, bounds where occurred_at::date > bounds.last_day - {SPARK_DAYS}
        group by all""", params)
    series: dict[int, list[int]] = {}
    for r in spark:
        series.setdefault(r["topic_id"], [0] * SPARK_DAYS)[SPARK_DAYS - 1 - r["days_ago"]] = r["events"]
    topical, conversational = [], []
    for r in rows:
        r["spark"] = series.get(r["topic_id"], [0] * SPARK_DAYS)
        marked = r.pop("is_conversational")
        chat = marked if marked is not None else r["conversational_share"] >= CONVERSATIONAL_SHARE
        (conversational if chat else topical).append(r)
    return {"topics": topical, "conversational": conversational, "conversions": conversions}


def topic_detail(reader: MartsReader, f: Filters, topic_id: int) -> dict[str, Any]:
    cur = reader.cursor()
    topic = _rows(cur, "select * from marts.dim_topics where project_id = ? and field = ? and topic_id = ?",
                  [f.project_id, f.field, topic_id])
    if not topic:
        raise NotFound(f"no topic {topic_id} in field {f.field!r} of this project")
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    mine = [*params, topic_id]
    examples = _rows(cur, f"""{cte} select text, occurred_at, message_kind from ev where topic_id = ?
        order by occurred_at desc, event_id limit 10""", mine)
    trend = _rows(cur, f"""{cte} select date_trunc('day', occurred_at)::date as day, count(*) as events
        from ev where topic_id = ? group by 1 order by 1""", mine)
    enums, numbers = _topic_fields(reader, cur, f, topic_id, (cte, params))
    steps = _journey_scope(reader, f, "fct_session_transitions", "s")
    come_from = _transitions_around(cur, f, topic_id, "to_topic_id", "from_topic_id", steps)
    go_to = _transitions_around(cur, f, topic_id, "from_topic_id", "to_topic_id", steps)
    conversions = (topic_conversions(reader, f, topic_id) if has_outcomes(reader, f.project_id, f.field)
                   else None)
    return {"topic": topic[0], "examples": examples, "trend": trend, "enums": enums, "numbers": numbers,
            "come_from": come_from, "go_to": go_to, "events": sum(r["events"] for r in trend),
            "conversions": conversions}


def _topic_fields(reader: MartsReader, cur: Any, f: Filters, topic_id: int,
                  scoped: tuple[str, list]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The topic's breakdown by every enum field and the aggregates of every number field."""
    if not f.narrows_events:  # the topic's events are all in scope: the aggregate marts hold the answer
        enums = _rows(cur, """select enum_field as field, enum_value as value, events, share
            from marts.agg_topic_segments where project_id = ? and field = ? and topic_id = ?
            order by field, events desc, value""", [f.project_id, f.field, topic_id])
        numbers = _rows(cur, """select number_field as field, values_count, avg_value, min_value, p50_value,
                   p90_value, max_value
            from marts.agg_topic_numbers where project_id = ? and field = ? and topic_id = ?
            order by field""", [f.project_id, f.field, topic_id])
        return enums, numbers
    cte, params = scoped
    mine = [*params, topic_id]
    # An enum or number row has its event's occurred_at: the date range narrows the rows the join probes.
    when, when_params = time_scope(f, "x.occurred_at")
    if _has_enum_values(reader):  # the values are on the topic's own rows: no join with the long table
        enums = _rows(cur, f"""{cte},
            pairs as (
                select string_split(unnest(string_split(trim(enum_values, '|'), '|')), '=') as pair
                from ev where topic_id = ? and enum_values is not null
            ),
            decoded as (
                select replace(replace(replace(pair[1], '%3D', '='), '%7C', '|'), '%25', '%') as field,
                       replace(replace(replace(pair[2], '%3D', '='), '%7C', '|'), '%25', '%') as value
                from pairs
            )
            select field, value, count(*) as events,
                   count(*) / sum(count(*)) over (partition by field) as share
            from decoded group by field, value order by field, events desc, value""", mine)
    else:
        enums = _rows(cur, f"""{cte}, mine as (select event_id from ev where topic_id = ?)
            select x.field, x.value::varchar as value, count(*) as events,
                   count(*) / sum(count(*)) over (partition by x.field) as share
            from marts.fct_event_enums x join mine using (event_id)
            where x.project_id = ? {when} group by x.field, x.value order by x.field, events desc, value""",
            [*mine, f.project_id, *when_params])
    numbers = _rows(cur, f"""{cte}, mine as (select event_id from ev where topic_id = ?)
        select x.field, count(*) as values_count, avg(x.value) as avg_value, min(x.value) as min_value,
               quantile_cont(x.value, 0.5) as p50_value, quantile_cont(x.value, 0.9) as p90_value,
               max(x.value) as max_value
        from marts.fct_event_numbers x join mine using (event_id)
        where x.project_id = ? {when} group by x.field order by x.field""",
        [*mine, f.project_id, *when_params])
    return enums, numbers


def _transitions_around(cur: Any, f: Filters, topic_id: int, here: str, there: str,
                        steps: tuple[str, list]) -> list[dict[str, Any]]:
    """The 10 topics users come from (``here`` = ``to_topic_id``) or go to next, among the transitions in
    scope (``steps``, :func:`_journey_scope`)."""
    when, when_params = steps
    return _rows(cur, f"""
        with counted as (
            select s.{there} as topic_id, count(*) as transitions
            from marts.fct_session_transitions s
            where s.project_id = ? and s.field = ? and not s.is_repeat and s.{here} = ? {when}
            group by 1
        )
        select c.topic_id, coalesce(t.label, 'Topic ' || c.topic_id) as label, c.transitions,
               c.transitions / sum(c.transitions) over () as share
        from counted c left join marts.dim_topics t
          on t.project_id = ? and t.field = ? and t.topic_id = c.topic_id
        order by c.transitions desc, c.topic_id limit 10""",
        [f.project_id, f.field, topic_id, *when_params, f.project_id, f.field])


# ------------------------------------------------------------------------------------------- conversions

CONVERSIONS_DAILY = "marts.agg_topic_conversions_daily"
CONVERSIONS_SEGMENTS = "marts.agg_topic_conversions_segments"
# The measures of a group of conversion-mart rows (alias c). Rates are recomputed from the sums, never
# averaged; a group without messages has null rates.
_CONVERSION_SUMS = """
    sum(c.messages) as messages, sum(c.views) as views, sum(c.clicks) as clicks,
    sum(c.messages_clicked) as messages_clicked,
    sum(c.messages_clicked) / nullif(sum(c.messages), 0) as click_through_rate,
    sum(c.add_to_carts) as add_to_carts, sum(c.purchases) as purchases, sum(c.conversions) as conversions,
    sum(c.messages_converted) as messages_converted,
    sum(c.messages_converted) / nullif(sum(c.messages), 0) as conversion_rate,
    sum(c.revenue) as revenue"""


@dataclass(frozen=True)
class ConversionScope:
    """The conversion-mart rows (alias ``c``) that some filters select, or why the marts cannot answer.

    The marts are per topic and message day (``agg_topic_conversions_daily``) and per one enum value
    (``agg_topic_conversions_segments``): the date range and one enum filter select rows exactly. They keep
    no event name, nor combinations of enum values, so an event filter that leaves out some of the field's
    messages, or a second enum filter, cannot be answered: ``note`` says so and no figure is made up.
    """

    table: str = CONVERSIONS_DAILY
    where: str = "false"
    params: tuple = ()
    note: str | None = None

    @property
    def available(self) -> bool:
        return self.note is None


def has_outcomes(reader: MartsReader, project_id: str, field: str) -> bool:
    """Whether any view, click, add-to-cart, purchase or conversion followed a message of the field, in any
    day of the snapshot. Conversion figures are shown only then (as ``turret topics`` does): a project that
    sends no outcome events gets no columns of zeros. False too for a snapshot older than the marts."""
    def compute() -> bool:
        cur = reader.cursor()
        present = cur.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'agg_topic_conversions_daily'").fetchone()[0]
        if not present:
            return False
        return bool(cur.execute(
            f"select exists (select 1 from {CONVERSIONS_DAILY} where project_id = ? and field = ? "
            "and views + clicks + add_to_carts + purchases + conversions > 0)",
            [project_id, field]).fetchone()[0])

    return reader.cached(("has_outcomes", project_id, field), compute)


def message_event_names(reader: MartsReader, project_id: str, field: str) -> list[str]:
    """The event names of the field's messages (the rows the conversion marts count)."""
    return reader.cached(("message_events", project_id, field), lambda: [r["event_name"] for r in _rows(
        reader.cursor(),
        "select distinct event_name from marts.fct_events where project_id = ? and field = ? order by 1",
        [project_id, field])])


def conversion_scope(reader: MartsReader, f: Filters) -> ConversionScope:
    """The conversion-mart rows of the filters: project, field, the messages' days, at most one enum value;
    an event filter only when it keeps every message of the field (or none)."""
    if len(f.enums) > 1:
        return ConversionScope(note="Conversions are split by one enum field at a time: keep one enum "
                                    "filter to see them.")
    where, params = ["c.project_id = ?", "c.field = ?"], [f.project_id, f.field]
    if f.start:
        where.append("c.message_date >= ?")
        params.append(f.start)
    if f.end:
        where.append("c.message_date <= ?")
        params.append(f.end)
    table = CONVERSIONS_DAILY
    if f.enums:
        table = CONVERSIONS_SEGMENTS
        ((name, value),) = f.enums
        where.extend(["c.enum_field = ?", "c.enum_value = ?"])
        params.extend([name, value])
    if f.event_name:
        names = message_event_names(reader, f.project_id, f.field)
        if f.event_name not in names:
            where.append("false")  # no message has that name: nothing followed them
        elif len(names) > 1:
            return ConversionScope(note="Conversions are not split by event name: clear the event filter "
                                        "to see them.")
    return ConversionScope(table=table, where=" and ".join(where), params=tuple(params))


def conversion_totals(reader: MartsReader, f: Filters) -> dict[str, Any]:
    """Conversions and revenue of every topic of the field in scope (the Overview's KPIs)."""
    scope = conversion_scope(reader, f)
    if not scope.available:
        return {"note": scope.note}
    totals = _rows(reader.cursor(), f"select {_CONVERSION_SUMS} from {scope.table} c where {scope.where}",
                   list(scope.params))[0]
    return {**totals, "note": None}


def topic_conversions(reader: MartsReader, f: Filters, topic_id: int) -> dict[str, Any]:
    """One topic's conversion measures over the filters, per day and in all, with the median time from a
    message to its conversion.

    The marts keep one median per topic and day (per enum value), and medians do not add up: over one day
    with conversions the figure is that day's median (``median_exact``); over several it is the median of
    the daily medians weighted by the messages converted on each day, an estimate the page marks as one.
    """
    scope = conversion_scope(reader, f)
    if not scope.available:
        return {"note": scope.note, "totals": None, "daily": []}
    cur = reader.cursor()
    mine = [*scope.params, topic_id]
    rows = _rows(cur, f"""
        select c.message_date as day, {_CONVERSION_SUMS},
               max(c.median_seconds_to_conversion) as median_seconds_to_conversion
        from {scope.table} c where {scope.where} and c.topic_id = ?
        group by grouping sets ((c.message_date), ()) order by day nulls first""", mine)
    daily = [r for r in rows if r["day"] is not None]
    totals = rows[0] if rows and rows[0]["day"] is None and daily else None
    median = _rows(cur, f"""
        with days as (
            select c.median_seconds_to_conversion as seconds, c.messages_converted as weight
            from {scope.table} c
            where {scope.where} and c.topic_id = ? and c.messages_converted > 0
                  and c.median_seconds_to_conversion is not null
        ),
        ranked as (
            select seconds, count(*) over () as days, sum(weight) over () as total,
                   sum(weight) over (order by seconds rows between unbounded preceding and current row)
                       as running
            from days
        )
        select min(seconds) filter (where 2 * running >= total) as seconds, max(days) as days
        from ranked""", mine)[0]
    if totals is not None:
        totals["median_seconds_to_conversion"] = median["seconds"]
        totals["median_exact"] = (median["days"] or 0) <= 1
    return {"note": None, "totals": totals, "daily": daily}


# ---------------------------------------------------------------------------------------------- journeys


def journeys(reader: MartsReader, f: Filters, scope: str, from_topic: int | None,
             to_topic: int | None) -> dict[str, Any]:
    """Topic-to-next-topic flows (session: consecutive topics of a conversation, repeats collapsed; user:
    first topics of a user's consecutive sessions), top paths, and entries/exits/drop-off per topic."""
    cur = reader.cursor()
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    ends, end_params = "", []
    if from_topic is not None:
        ends += " and from_topic_id = ?"
        end_params.append(from_topic)
    if to_topic is not None:
        ends += " and to_topic_id = ?"
        end_params.append(to_topic)
    when, when_params = "", []
    if scope == "user":
        flows_sql = f"""{cte},
            steps as (
                select u.first_topic_id as to_topic_id,
                       lag(u.first_topic_id) over (partition by u.user_id order by u.session_order)
                           as from_topic_id,
                       u.session_id
                from marts.fct_user_journeys u
                where u.project_id = ? and u.field = ?
            ),
            flows as (
                select from_topic_id, to_topic_id, count(*) as transitions from steps
                where from_topic_id is not null and from_topic_id <> to_topic_id
                  {_in_scope(f, "session_id", "session_id")} {ends}
                group by all
            )"""
    else:
        when, when_params = _journey_scope(reader, f, "fct_session_transitions", "s")
        flows_sql = f"""{cte},
            flows as (
                select s.from_topic_id, s.to_topic_id, count(*) as transitions
                from marts.fct_session_transitions s
                where s.project_id = ? and s.field = ? and not s.is_repeat
                      {when} {ends}
                group by all
            )"""
    flows = _rows(cur, f"""{flows_sql}
        select flows.*, coalesce(a.label, 'Topic ' || flows.from_topic_id) as from_label,
               coalesce(b.label, 'Topic ' || flows.to_topic_id) as to_label,
               flows.transitions / sum(flows.transitions) over (partition by flows.from_topic_id)
                   as probability
        from flows
        left join marts.dim_topics a on a.project_id = ? and a.field = ? and a.topic_id = flows.from_topic_id
        left join marts.dim_topics b on b.project_id = ? and b.field = ? and b.topic_id = flows.to_topic_id
        order by transitions desc, from_topic_id, to_topic_id limit {MAX_SANKEY_LINKS}""",
        [*params, f.project_id, f.field, *when_params, *end_params, f.project_id, f.field, f.project_id,
         f.field])
    path_where, path_params = "", []
    if from_topic is not None:
        path_where += " and path_topic_ids[1] = ?"
        path_params.append(from_topic)
    if to_topic is not None:
        path_where += " and path_topic_ids[path_length] = ?"
        path_params.append(to_topic)
    paths = _rows(cur, f"""select path, path_topic_ids, path_length, sessions, share from marts.journey_paths
        where project_id = ? and field = ? and scope = ? {path_where}
        order by sessions desc, path_length desc, path limit 10""",
        [f.project_id, f.field, scope, *path_params])
    stats = _topic_stats(reader, cur, f)
    for r in stats:
        r["dropoff_rate"] = r["exits"] / r["visits"] if r["visits"] else None
    return {"flows": flows, "paths": paths, "stats": stats}


def _topic_stats(reader: MartsReader, cur: Any, f: Filters) -> list[dict[str, Any]]:
    """Per topic: sessions that enter it (their first segment in scope), leave it (their last segment) and
    visit it; the 25 most visited."""
    if not f.narrows_events:  # every segment is in scope: journey_topic_stats holds these counts
        return _rows(cur, """select j.topic_id, coalesce(t.label, 'Topic ' || j.topic_id) as label,
                   j.entries, j.exits, j.visits
            from marts.journey_topic_stats j left join marts.dim_topics t
              on t.project_id = j.project_id and t.field = j.field and t.topic_id = j.topic_id
            where j.project_id = ? and j.field = ?
            order by j.visits desc, j.topic_id limit 25""", [f.project_id, f.field])
    when, when_params = _journey_scope(reader, f, "fct_session_segments", "g")
    # A session enters at its first segment in scope (one per session: counted, not distinct-counted) and
    # leaves at its last segment (one per session); only visits need a distinct count. Two aggregations
    # beat a row_number() window over every segment.
    return _rows(cur, f"""
        with segments as (
            select g.session_id, g.topic_id, g.is_last_segment, g.segment_index
            from marts.fct_session_segments g
            where g.project_id = ? and g.field = ? {when}
        ),
        firsts as (select arg_min(topic_id, segment_index) as topic_id from segments group by session_id),
        entries as (select topic_id, count(*) as entries from firsts group by topic_id),
        counted as (
            select topic_id, count(*) filter (where is_last_segment) as exits,
                   count(distinct session_id) as visits
            from segments group by topic_id
        )
        select c.topic_id, coalesce(t.label, 'Topic ' || c.topic_id) as label,
               coalesce(e.entries, 0) as entries, c.exits, c.visits
        from counted c left join entries e on e.topic_id = c.topic_id
        left join marts.dim_topics t on t.project_id = ? and t.field = ? and t.topic_id = c.topic_id
        order by c.visits desc, c.topic_id limit 25""",
        [f.project_id, f.field, *when_params, f.project_id, f.field])


def topic_choices(reader: MartsReader, f: Filters) -> list[dict[str, Any]]:
    return reader.cached(("topics", f.project_id, f.field), lambda: _rows(
        reader.cursor(),
        "select topic_id, label from marts.dim_topics where project_id = ? and field = ? "
        "order by events desc nulls last, topic_id", [f.project_id, f.field]))


# --------------------------------------------------------------------------------------------- topic map


def topic_map(reader: MartsReader, f: Filters) -> list[dict[str, Any]]:
    """Topics as points: position from the layout of the (project, field), size the filtered volume."""
    from turret.ui.topic_map import layout

    positions = reader.cached(("map", f.project_id, f.field), lambda: layout(_map_texts(reader, f)))
    f = _narrowing(reader, f)
    cte, params = _scoped(f, reader)
    rows = _rows(reader.cursor(), f"""{cte},
        counts as (select topic_id, count(*) as events from ev group by 1)
        select t.topic_id, t.label, coalesce(t.theme, 'No theme') as theme, coalesce(c.events, 0) as events
        from marts.dim_topics t left join counts c using (topic_id)
        where t.project_id = ? and t.field = ? and t.topic_id <> {UNCLUSTERED}
        order by t.topic_id""", [*params, f.project_id, f.field])
    out = []
    for r in rows:
        if r["topic_id"] in positions:
            point = positions[r["topic_id"]]
            out.append({**r, "x": point["x"], "y": point["y"], "examples": point["examples"]})
    return out


def _map_texts(reader: MartsReader, f: Filters) -> dict[int, dict[str, Any]]:
    rows = _rows(reader.cursor(), f"""
        with sample as (
            select topic_id, text,
                   row_number() over (partition by topic_id order by hash(event_id)) as rank
            from marts.fct_events
            where project_id = ? and field = ? and topic_id <> {UNCLUSTERED} and text is not null
        )
        select s.topic_id, t.label, t.keywords::varchar as keywords,
               list(s.text order by s.rank) as texts
        from sample s join marts.dim_topics t
          on t.project_id = ? and t.field = ? and t.topic_id = s.topic_id
        where s.rank <= {MAP_EXAMPLES_PER_TOPIC}
        group by all""", [f.project_id, f.field, f.project_id, f.field])
    return {r["topic_id"]: r for r in rows}


# -------------------------------------------------------------------------------------------- metadata


def field_summary(reader: MartsReader, project_id: str) -> list[dict[str, Any]]:
    """The project's metadata fields as the marts hold them: text fields (with topics), enums, numbers.
    Once per snapshot and project: it reads every value, and only a new snapshot changes it."""
    return reader.cached(("field_summary", project_id), lambda: _rows(reader.cursor(), """
        select field, 'text' as type, count(*) as n_values, count(distinct text) as n_distinct,
               list(distinct text)[1:3] as examples
        from marts.fct_events where project_id = ? group by field
        union all
        select field, 'enum', count(*), count(distinct value), list(distinct value::varchar)[1:5]
        from marts.fct_event_enums where project_id = ? group by field
        union all
        select field, 'number', count(*), count(distinct value), list(distinct value)[1:5]::varchar[]
        from marts.fct_event_numbers where project_id = ? group by field
        order by type, field""", [project_id, project_id, project_id]))
