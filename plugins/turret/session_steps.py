"""The steps of a session in order: ``pipeline.session_steps``, the one definition of step order.

A step is one message of a session that has a topic for a text field (a ``pipeline.event_topics`` row of an
event in ``raw.events``). Within (project, field, session) steps are numbered ``1..n`` by the event's own
time, then the time the API received it, then ``event_id``, so ties in time give the same order on every
run. Everything that walks a session reads ``step_index`` from this table instead of ordering events
itself: the conversation model (``turret.journey_topics``), the journey paths and stats
(``turret.journeys``) and dbt's ``int_session_steps`` (and the marts built on it).

The ``assign_journeys`` task writes it before dbt, and only for the sessions that changed: a session gets a
new message (a late one can move every later step), a message's topic changes (a text that waited in the
pool finds a topic), or a message goes away. When a dimension's topics were fitted again since its steps
were written, every session of it is rewritten. Each rewritten step gets the run's ``updated_at``, which the
conversation model and the session-level dbt marts take as the sign that the session changed, so an hour's
cost follows the sessions it touched, not the history (docs/scaling.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# The order of a session's steps; the only place it is written down.
STEP_ORDER = ("occurred_at", "received_at", "event_id")

COLUMNS = ("project_id", "field", "session_id", "user_id", "step_index", "event_id", "topic_id",
           "occurred_at", "updated_at")

# Every message that is a step, as it is now.
_CURRENT_SQL = """
    select t.project_id, t.field, e.session_id, t.event_id, t.topic_id
    from pipeline.event_topics as t
    join raw.events as e on e.project_id = t.project_id and e.event_id = t.event_id
"""

# The sessions whose steps differ from what is stored: a message is new, its topic changed, or it is gone;
# and every session of a dimension whose topics were fitted after its steps were last written.
_CHANGED_SQL = f"""
    create or replace temp table _turret_changed_sessions as
    select distinct project_id, field, session_id from (
        select c.project_id, c.field, c.session_id
        from ({_CURRENT_SQL}) as c
        left join pipeline.session_steps as s
            on s.project_id = c.project_id and s.field = c.field and s.event_id = c.event_id
        where s.event_id is null or s.topic_id <> c.topic_id
        union all
        select s.project_id, s.field, s.session_id
        from pipeline.session_steps as s
        anti join ({_CURRENT_SQL}) as c
            on c.project_id = s.project_id and c.field = s.field and c.event_id = s.event_id
        union all
        select c.project_id, c.field, c.session_id
        from ({_CURRENT_SQL}) as c
        semi join _turret_refitted as r on r.project_id = c.project_id and r.field = c.field
    )
"""

_REFITTED_SQL = """
    create or replace temp table _turret_refitted as
    select m.project_id, m.field
    from pipeline.topic_models as m
    join (
        select project_id, field, max(updated_at) as written_at
        from pipeline.session_steps group by project_id, field
    ) as s on s.project_id = m.project_id and s.field = m.field
    where s.written_at is null or m.fitted_at > s.written_at
"""

_STEPS_SQL = f"""
    insert into pipeline.session_steps ({", ".join(COLUMNS)})
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
        $stamp as updated_at,
    from pipeline.event_topics as t
    join raw.events as e on e.project_id = t.project_id and e.event_id = t.event_id
    semi join _turret_changed_sessions as c
        on c.project_id = t.project_id and c.field = t.field and c.session_id = e.session_id
"""


def write_session_steps(con: duckdb.DuckDBPyConnection, *, stamp: datetime | None = None) -> dict[str, int]:
    """Rewrite the steps of every session that changed (see the module doc) in one transaction.

    ``stamp`` (default: now, UTC) becomes the rewritten steps' ``updated_at``. Returns the number of steps,
    of sessions rewritten and of their steps.
    """
    from turret.warehouse import ensure_schema

    ensure_schema(con)
    stamp = stamp or datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        if _has_topic_models(con):
            con.execute(_REFITTED_SQL)
        else:
            con.execute("create or replace temp table _turret_refitted (project_id varchar, field varchar)")
        con.execute(_CHANGED_SQL)
        con.execute(
            """delete from pipeline.session_steps as s using _turret_changed_sessions as c
               where s.project_id = c.project_id and s.field = c.field and s.session_id = c.session_id"""
        )
        con.execute(_STEPS_SQL, {"stamp": stamp})
        (sessions,) = con.execute("select count(*) from _turret_changed_sessions").fetchone()
        (written,) = con.execute(
            "select count(*) from pipeline.session_steps where updated_at = ?", [stamp]
        ).fetchone()
        (count,) = con.execute("select count(*) from pipeline.session_steps").fetchone()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists _turret_changed_sessions")
        con.execute("drop table if exists _turret_refitted")
    return {"session_steps": int(count), "sessions_changed": int(sessions), "steps_written": int(written)}


def _has_topic_models(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = 'pipeline' "
        "and table_name = 'topic_models' and table_catalog = current_database()"
    ).fetchone()[0])
