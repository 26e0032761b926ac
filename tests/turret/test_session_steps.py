"""pipeline.session_steps: the one definition of a session's step order, rebuilt whole each run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest
from turret.session_steps import STEP_ORDER, write_session_steps
from turret.warehouse import ensure_schema

P = "proj"
T0 = datetime(2026, 3, 2, 9, 0, 0)


def add_event(con, event_id, session, *, occurred, received, topic=0, field="prompt", user="u1"):
    con.execute(
        "insert into raw.events values "
        "(?, ?, 'turret', null, 'user_prompt', ?, ?, false, false, ?, ?, ?, 'seg', 0)",
        [P, event_id, session, user, occurred, received, json.dumps({field: event_id})],
    )
    con.execute("insert into pipeline.event_topics values (?, ?, ?, ?, 'cluster', null, 'r1')",
                [P, event_id, field, topic])


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)
    yield c
    c.close()


def steps(con, session="s1"):
    return con.execute(
        "select step_index, event_id from pipeline.session_steps where session_id = ? order by step_index",
        [session],
    ).fetchall()


def test_steps_follow_occurred_at_then_received_at_then_event_id(con):
    assert STEP_ORDER == ("occurred_at", "received_at", "event_id")
    later = T0 + timedelta(seconds=1)
    add_event(con, "e_late", "s1", occurred=later, received=T0)
    add_event(con, "e_b", "s1", occurred=T0, received=later)  # same time: the earlier receipt goes first
    add_event(con, "e_a", "s1", occurred=T0, received=T0)
    add_event(con, "e_tie2", "s1", occurred=later, received=later)  # full tie: by event_id
    add_event(con, "e_tie1", "s1", occurred=later, received=later)
    assert write_session_steps(con) == 5
    assert steps(con) == [(1, "e_a"), (2, "e_b"), (3, "e_late"), (4, "e_tie1"), (5, "e_tie2")]


def test_each_field_and_session_counts_from_one(con):
    add_event(con, "x1", "s1", occurred=T0, received=T0)
    add_event(con, "x2", "s2", occurred=T0, received=T0)
    con.execute("insert into pipeline.event_topics values (?, 'x1', 'query', 3, 'cluster', null, 'r1')", [P])
    write_session_steps(con)
    got = con.execute(
        "select field, session_id, step_index, topic_id from pipeline.session_steps order by 1, 2"
    ).fetchall()
    assert got == [("prompt", "s1", 1, 0), ("prompt", "s2", 1, 0), ("query", "s1", 1, 3)]


def test_rebuild_replaces_and_follows_a_late_event(con):
    add_event(con, "e2", "s1", occurred=T0 + timedelta(minutes=2), received=T0)
    write_session_steps(con)
    assert steps(con) == [(1, "e2")]
    # An event that happened earlier but arrived later moves the existing step down.
    add_event(con, "e1", "s1", occurred=T0, received=T0 + timedelta(hours=1))
    assert write_session_steps(con) == 2
    assert steps(con) == [(1, "e1"), (2, "e2")]
    # Without its topic row an event is no step.
    con.execute("delete from pipeline.event_topics where event_id = 'e2'")
    write_session_steps(con)
    assert steps(con) == [(1, "e1")]
