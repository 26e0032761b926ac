"""The steps of a session in order: ``pipeline.session_steps``, the one definition of step order.

A step is one message of a session that has a topic for a text field (a ``pipeline.event_topics`` row of an
event in ``raw.events``). Within (project, field, session) steps are numbered ``1..n`` by the event's own
time, then the time the API received it, then ``event_id``, so ties in time give the same order on every
run. Everything that walks a session reads ``step_index`` from this table instead of ordering events
itself: the conversation model (``turret.journey_topics``), the journey paths and stats
(``turret.journeys``) and dbt's ``int_session_steps`` (and the marts built on it).

The table is rebuilt whole by the ``assign_journeys`` task, before dbt: a late event can move every later
step of its session, and one window over the assignments costs well under a second per 100k messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# The order of a session's steps; the only place it is written down.
STEP_ORDER = ("occurred_at", "received_at", "event_id")

_STEPS_SQL = f"""
    insert into pipeline.session_steps
    select
        t.project_id,
        t.field,
        e.session_id,
        e.user_id,
        cast(row_number() over (
            partition by t.project_id, t.field, e.session_id
            order by {", ".join(f"e.{column}" for column in STEP_ORDER)}
        ) as integer) as step_index,
        t.event_id,
        t.topic_id,
        e.occurred_at,
    from pipeline.event_topics as t
    join raw.events as e on e.project_id = t.project_id and e.event_id = t.event_id
"""


def write_session_steps(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild ``pipeline.session_steps`` from ``pipeline.event_topics`` and ``raw.events`` in one
    transaction; returns the number of steps."""
    from turret.warehouse import ensure_schema

    ensure_schema(con)
    con.execute("begin transaction")
    try:
        con.execute("delete from pipeline.session_steps")
        con.execute(_STEPS_SQL)
        (count,) = con.execute("select count(*) from pipeline.session_steps").fetchone()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return int(count)
