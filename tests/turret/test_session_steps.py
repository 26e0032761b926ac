"""pipeline.session_steps: the one definition of a session's step order, rewritten for the sessions that
changed."""

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
    assert write_session_steps(con)["session_steps"] == 5
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
    assert write_session_steps(con)["session_steps"] == 2
    assert steps(con) == [(1, "e1"), (2, "e2")]
    # Without its topic row an event is no step.
    con.execute("delete from pipeline.event_topics where event_id = 'e2'")
    write_session_steps(con)
    assert steps(con) == [(1, "e1")]


def stamps(con) -> dict[str, datetime]:
    return dict(con.execute("select event_id, updated_at from pipeline.session_steps").fetchall())


def test_only_sessions_that_changed_are_rewritten(con):
    add_event(con, "a1", "sa", occurred=T0, received=T0)
    add_event(con, "b1", "sb", occurred=T0, received=T0)
    first = datetime(2026, 3, 2, 10)
    written = write_session_steps(con, stamp=first)
    assert written == {"session_steps": 2, "sessions_changed": 2, "steps_written": 2}
    # Nothing changed: nothing is written.
    assert write_session_steps(con, stamp=first + timedelta(hours=1))["sessions_changed"] == 0
    # A new message in sa rewrites sa's steps only.
    add_event(con, "a0", "sa", occurred=T0 - timedelta(minutes=1), received=T0)
    second = first + timedelta(hours=2)
    written = write_session_steps(con, stamp=second)
    assert written == {"session_steps": 3, "sessions_changed": 1, "steps_written": 2}
    assert stamps(con) == {"a0": second, "a1": second, "b1": first}
    assert steps(con, "sa") == [(1, "a0"), (2, "a1")]
    # A message whose topic changed (a pooled text found a topic) rewrites its session.
    con.execute("update pipeline.event_topics set topic_id = 7 where event_id = 'b1'")
    third = first + timedelta(hours=3)
    assert write_session_steps(con, stamp=third)["sessions_changed"] == 1
    assert stamps(con)["b1"] == third and stamps(con)["a1"] == second
    # A message that went away rewrites its session too.
    con.execute("delete from pipeline.event_topics where event_id = 'a0'")
    assert write_session_steps(con, stamp=third + timedelta(hours=1))["sessions_changed"] == 1
    assert steps(con, "sa") == [(1, "a1")]


def test_a_new_topic_fit_rewrites_every_session_of_its_dimension(con):
    from turret.topics.store import ensure_state

    ensure_state(con)
    add_event(con, "a1", "sa", occurred=T0, received=T0)
    add_event(con, "b1", "sb", occurred=T0, received=T0)
    add_event(con, "q1", "sa", occurred=T0, received=T0, field="query")
    first = datetime(2026, 3, 2, 10)
    write_session_steps(con, stamp=first)
    con.execute(
        "insert into pipeline.topic_models (project_id, field, model, fitted_run_id, fitted_at, n_fit, "
        "min_cluster_size, mean_similarity, next_topic_id, pool_attempt_size, params) "
        "values (?, 'prompt', 'm', 'r2', ?, 2, 2, 0.5, 1, 0, '{}')",
        [P, first + timedelta(minutes=30)],
    )
    later = first + timedelta(hours=1)
    assert write_session_steps(con, stamp=later)["sessions_changed"] == 2
    assert stamps(con) == {"a1": later, "b1": later, "q1": first}
    # Once written after the fit, the dimension is quiet again.
    assert write_session_steps(con, stamp=later + timedelta(hours=1))["sessions_changed"] == 0
