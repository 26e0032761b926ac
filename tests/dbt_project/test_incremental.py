"""The incremental marts (dbt_project/macros/incremental.sql), run for real on the fixture warehouse.

After an hour that brings new sessions, a late message into an old session, a pooled text that found a
topic, a field typed anew and an event that went away, an incremental build must hold exactly the rows a
full rebuild holds, and must have rewritten only the keys that changed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest
from turret.dbt import build_marts, run_dbt
from turret.journeys import compute_journeys
from turret.session_steps import write_session_steps
from turret.settings import Settings

from tests.fixtures import warehouse as fx

pytestmark = pytest.mark.slow

INCREMENTAL = {
    "fct_events": ("project_id", "event_id", "field"),
    "fct_event_enums": ("project_id", "event_id", "field"),
    "fct_event_numbers": ("project_id", "event_id", "field"),
    "fct_session_transitions": ("project_id", "field", "session_id", "step_index"),
    "fct_session_segments": ("project_id", "field", "session_id", "segment_index"),
    "fct_user_journeys": ("project_id", "field", "user_id", "session_order"),
}
# Marts built from the incremental ones as tables: they must agree too.
DOWNSTREAM = ("agg_topic_transitions", "fct_topic_trends_hourly", "fct_topic_trends_daily",
              "agg_activity_daily", "dim_topics", "agg_topic_segments")


def table(con, name: str, *, leave_out: tuple[str, ...] = ()) -> list[tuple]:
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ? "
        "order by ordinal_position", [name]).fetchall() if c not in ("updated_at", *leave_out)]
    return sorted(con.execute(f"select {', '.join(columns)} from marts.{name}").fetchall(), key=repr)


def stamps(con, name: str) -> dict[tuple, datetime]:
    keys = ", ".join(INCREMENTAL[name])
    found = con.execute(f"select {keys}, updated_at from marts.{name}").fetchall()
    return {tuple(r[:-1]): r[-1] for r in found}


def journey_topics(con, stamp: datetime) -> None:
    """The conversation step's rows for the sessions whose steps carry ``stamp`` (the fixture has no vectors:
    each message keeps its own topic, and a new topic starts a segment)."""
    steps = con.execute(
        "select project_id, field, session_id, event_id, topic_id from pipeline.session_steps "
        "where session_id in (select session_id from pipeline.session_steps where updated_at = ?) "
        "order by project_id, field, session_id, step_index", [stamp]).fetchall()
    con.execute("delete from pipeline.journey_topics where session_id in "
                "(select session_id from pipeline.session_steps where updated_at = ?)", [stamp])
    segment, previous = -1, None
    for project_id, field, session_id, event_id, topic_id in steps:
        if previous is None or previous[:3] != (project_id, field, session_id):
            segment, previous = -1, (project_id, field, session_id, None)
        if topic_id != previous[3]:
            segment += 1
        previous = (project_id, field, session_id, topic_id)
        con.execute("insert into pipeline.journey_topics values (?, ?, ?, ?, ?, 'topical', ?, ?)",
                    [project_id, field, event_id, session_id, topic_id, segment, stamp])


def an_hour_of_changes(path) -> None:
    """What one hourly run writes before dbt, straight into the contract tables."""
    con = duckdb.connect(str(path))
    try:
        now = datetime.now().replace(microsecond=0) + timedelta(seconds=1)
        segment = "date=fixture/later.jsonl"
        con.execute("insert into raw.loaded_segments values (?, ?, 4, 0, 0)", [segment, now])
        late = fx.NOW - timedelta(hours=12)  # before everything else in s6: becomes its first step
        new = [
            ("evt_acme_s8_0", "s8", "u5", fx.NOW, 0, "paid", 5),
            ("evt_acme_s8_1", "s8", "u5", fx.NOW + timedelta(minutes=1), 2, "paid", 6),
            ("evt_acme_s6_late", "s6", "u4", late, 2, "paid", 7),
        ]
        for n, (event_id, session, user, at, topic, tier, latency) in enumerate(new):
            meta = {"prompt": f"{fx.ACME_TEXTS[topic]} ({event_id})", "tier": tier, "latency_ms": latency}
            con.execute(
                "insert into raw.events values "
                "(?, ?, 'turret', null, 'user_message', ?, ?, false, false, ?, ?, ?, ?, ?)",
                [fx.ACME, event_id, session, user, at, at, json.dumps(meta), segment, n],
            )
            con.execute("insert into pipeline.event_texts values (?, ?, 'prompt', ?, ?)",
                        [fx.ACME, event_id, f"h{event_id}", meta["prompt"]])
            con.execute("insert into pipeline.event_topics values "
                        "(?, ?, 'prompt', ?, 'nearest_centroid', 0.8, 'run2')", [fx.ACME, event_id, topic])
        # An enum-only event with no text (counts in the enum table only).
        con.execute(
            "insert into raw.events values "
            "(?, 'evt_acme_enum_only', 'turret', null, 'page_view', 's9', 'u5', false, false, ?, ?, ?, ?, 9)",
            [fx.ACME, fx.NOW, fx.NOW, json.dumps({"tier": "free"}), segment],
        )
        # s5's Unclustered text found a topic (a refit of the pool).
        con.execute("update pipeline.event_topics set topic_id = 1, run_id = 'run2' "
                    "where event_id = 'evt_acme_s5_0'")
        # s7's last message went away (quarantined after a reload), and all of s4, alone in its hour.
        con.execute("delete from raw.events "
                    "where event_id in ('evt_acme_s7_1', 'evt_acme_s4_0', 'evt_acme_s4_1')")
        # trialco's 'query' field is now an enum (set by hand), so its events' enum rows change.
        con.execute(
            "insert into pipeline.fields values (?, 'query', 'text', 'enum', 'enum', 2, 2, '[]', ?, ?) "
            "on conflict (project_id, field) do update set effective_type = 'enum', "
            "override_type = 'enum', typed_at = excluded.typed_at",
            [fx.TRIALCO, now, now],
        )
        write_session_steps(con, stamp=now)
        journey_topics(con, now)
        compute_journeys(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same hour built incrementally in one home and from scratch in another."""
    incremental = Settings(home=tmp_path_factory.mktemp("incremental"))
    con = duckdb.connect(str(fx.build_file(incremental.warehouse)))
    first = datetime.now().replace(microsecond=0)
    write_session_steps(con, stamp=first)
    journey_topics(con, first)
    compute_journeys(con)
    con.close()
    build_marts(incremental)
    con = duckdb.connect(str(incremental.warehouse), read_only=True)
    before = {name: stamps(con, name) for name in INCREMENTAL}
    con.close()
    an_hour_of_changes(incremental.warehouse)
    build_marts(incremental)

    full = Settings(home=tmp_path_factory.mktemp("full"))
    full.warehouse.parent.mkdir(parents=True, exist_ok=True)
    full.warehouse.write_bytes(incremental.warehouse.read_bytes())
    run_dbt(["build", "--full-refresh"], full)
    a = duckdb.connect(str(incremental.warehouse), read_only=True)
    b = duckdb.connect(str(full.warehouse), read_only=True)
    yield a, b, before
    a.close()
    b.close()


@pytest.mark.parametrize("name", [*INCREMENTAL, *DOWNSTREAM])
def test_an_incremental_build_equals_a_full_rebuild(runs, name):
    incremental, full, _ = runs
    got, want = table(incremental, name), table(full, name)
    assert got == want
    assert want  # the comparison means something


def test_the_hour_changed_what_it_should(runs):
    incremental, _, _ = runs
    events = {r[0] for r in incremental.execute("select event_id from marts.fct_events").fetchall()}
    assert {"evt_acme_s8_0", "evt_acme_s6_late"} <= events and "evt_acme_s7_1" not in events
    assert incremental.execute(
        "select topic_id from marts.fct_events where event_id = 'evt_acme_s5_0'").fetchone() == (1,)
    assert incremental.execute(
        "select count(*) from marts.fct_event_enums where project_id = ? and field = 'query'", [fx.TRIALCO]
    ).fetchone() == (2,)
    first = incremental.execute(
        "select first_event_id from marts.fct_session_segments where session_id = 's6' and segment_index = 0"
    ).fetchone()
    assert first == ("evt_acme_s6_late",)


def test_only_the_changed_keys_were_rewritten(runs):
    incremental, _, before = runs
    after = stamps(incremental, "fct_events")
    old = before["fct_events"]
    rewritten = {key[1] for key, at in after.items() if key not in old or at != old[key]}
    # The sessions that changed (s5, s6, s8, s7 lost a message) and trialco's (its field was retyped).
    sessions = {e.rsplit("_", 1)[0].removeprefix("evt_acme_") for e in rewritten if e.startswith("evt_acme_")}
    assert sessions == {"s5", "s6", "s7", "s8"}
    assert not {key for key in after if key[1].startswith("evt_acme_s4_")}
    assert {e for e in rewritten if e.startswith("evt_trial_")} == {"evt_trial_0", "evt_trial_1"}
    untouched = {key for key in old if key[1].startswith(("evt_acme_s1_", "evt_acme_s2_", "evt_acme_s3_"))}
    assert untouched and all(after[key] == old[key] for key in untouched)
    users = stamps(incremental, "fct_user_journeys")
    assert {k[2] for k, at in users.items() if at != max(users.values())} >= {"u1"}
    assert {k[2] for k, at in users.items() if at == max(users.values())} == {"u2", "u3", "u4", "u5", "tu1"}
    hours = incremental.execute(
        "select count(*) from marts.fct_topic_trends_hourly where period_start = ? and events > 0",
        [fx.NOW - timedelta(hours=12) + timedelta(hours=3)]).fetchone()
    assert hours == (0,)  # s4's hour: its messages went away


def test_marts_built_before_they_kept_updated_at_are_rebuilt_in_full(tmp_path):
    """A warehouse from before: facts without `updated_at`, the segments' old `label` column, no hourly
    counts. The next build rebuilds every fact in full instead of failing."""
    settings = Settings(home=tmp_path)
    fx.journey_tables(fx.build_file(settings.warehouse))
    build_marts(settings)
    con = duckdb.connect(str(settings.warehouse))
    try:
        expected = {name: table(con, name) for name in INCREMENTAL}
        for name in INCREMENTAL:
            con.execute(f"alter table marts.{name} drop column updated_at")
        con.execute("alter table marts.fct_session_segments add column label varchar")
        con.execute("drop table intermediate.int_topic_events_hourly")
    finally:
        con.close()
    build_marts(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        for name in INCREMENTAL:
            assert table(con, name, leave_out=("label",)) == expected[name]
            unstamped = con.execute(f"select count(*) from marts.{name} where updated_at is null").fetchone()
            assert unstamped == (0,)
    finally:
        con.close()
