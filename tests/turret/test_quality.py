"""turret.quality: great-expectations suites on the fixture warehouse; each broken invariant fails with a
message naming it. The marts suite runs on the dbt-built fixture (built once per test process)."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest
from tests.fixtures import warehouse as fx

from turret import tasks
from turret.quality import CHECKED_EVENTS_TABLE, DataCheckFailed, validate_marts, validate_raw
from turret.settings import Settings


@pytest.fixture
def raw_con(tmp_path):
    con = duckdb.connect(str(fx.build_file(tmp_path / "w.duckdb")))
    yield con
    con.close()


@pytest.fixture
def marts_con(tmp_path):
    con = duckdb.connect(str(fx.built_warehouse(tmp_path / "built.duckdb")))
    yield con
    con.close()


@pytest.fixture
def settings(tmp_path):
    return Settings(home=tmp_path / "home")


def drop_constraints(con):
    # The loader's table has NOT NULL and a primary key; the checks exist for when a bug or a schema change
    # lets bad rows in anyway, so the tests rebuild the table without its constraints.
    con.execute("create or replace table raw.events as select * from raw.events")


def test_raw_suite_passes_on_good_data_and_writes_json(raw_con, settings):
    report = validate_raw(raw_con, settings)
    assert report.success and len(report.checks) >= 10
    folder = settings.home / "quality"
    latest = json.loads((folder / "raw-latest.json").read_text())
    assert latest["suite"] == "raw" and latest["success"] is True
    assert [p.name for p in folder.glob("raw-2*.json")] == [report.path.rsplit("/", 1)[-1]]
    assert {c["name"] for c in latest["checks"]} >= {"event_id unique per project", "session_id not null"}
    assert report.as_dict() == {"suite": "raw", "success": True, "checks": len(report.checks), "failed": [],
                                "path": report.path}


ROW = "where event_id = 'evt_acme_s1_0'"
RAW_BREAKAGES = [
    pytest.param("event_id unique per project",
                 f"insert into raw.events select * from raw.events {ROW}", id="duplicate"),
    pytest.param("session_id not null", f"update raw.events set session_id = null {ROW}", id="null-session"),
    pytest.param("occurred_at not null", f"update raw.events set occurred_at = null {ROW}", id="null-time"),
    pytest.param("occurred_at between 2000 and now",
                 f"update raw.events set occurred_at = '2999-01-01' {ROW}", id="future"),
    pytest.param("occurred_at between 2000 and now",
                 f"update raw.events set occurred_at = '1999-12-31' {ROW}", id="before-2000"),
    pytest.param("metadata texts at most 10000 characters",
                 f"update raw.events set metadata = json_object('prompt', repeat('x', 10001)) {ROW}",
                 id="text-too-long"),
]


@pytest.mark.parametrize(("check_name", "sql"), RAW_BREAKAGES)
def test_each_raw_invariant_fails_by_name(raw_con, settings, check_name, sql):
    drop_constraints(raw_con)
    raw_con.execute(sql)
    with pytest.raises(DataCheckFailed) as failed:
        validate_raw(raw_con, settings)
    report = failed.value.report
    assert [c.name for c in report.failed] == [check_name]
    message = str(failed.value)
    assert f"x {check_name} [raw.events" in message
    assert "evt_acme_s1_0" in message  # the example row
    latest = json.loads((settings.home / "quality" / "raw-latest.json").read_text())
    assert latest["success"] is False


def test_raw_suite_since_checks_only_recent_events(raw_con, settings):
    drop_constraints(raw_con)
    raw_con.execute("update raw.events set occurred_at = '1999-12-31' where event_id = 'evt_acme_may'")
    since = fx.NOW - timedelta(days=1)
    assert validate_raw(raw_con, settings, since=since).success  # the bad row was received in May
    with pytest.raises(DataCheckFailed, match="evt_acme_may"):
        validate_raw(raw_con, settings)


FUTURE_ROW = (
    "insert into raw.events select * replace ('evt_from_the_future' as event_id, "
    "timestamp '2199-01-01 00:00:00' as occurred_at) from raw.events where event_id = 'evt_acme_s1_0'"
)
FIXTURE_EVENTS = 18  # 15 acme prompt events, the May event, 2 trialco events


def test_unchecked_only_checks_each_row_once_and_failing_rows_until_fixed(raw_con, settings):
    first = validate_raw(raw_con, settings, unchecked_only=True)
    assert first.success and first.rows_in_scope == FIXTURE_EVENTS
    assert raw_con.execute(f"select count(*) from {CHECKED_EVENTS_TABLE}").fetchone() == (FIXTURE_EVENTS,)
    second = validate_raw(raw_con, settings, unchecked_only=True)
    assert second.success and second.rows_in_scope == 0
    assert second.as_dict()["rows_in_scope"] == 0
    assert {c.rows_checked for c in second.checks} == {0}
    # A row written straight into raw.events (same segment and line as a checked one, not via the loader).
    raw_con.execute(FUTURE_ROW)
    for _ in range(2):  # a failing suite records nothing: the next run fails the same way
        with pytest.raises(DataCheckFailed) as failed:
            validate_raw(raw_con, settings, unchecked_only=True)
        assert [c.name for c in failed.value.report.failed] == ["occurred_at between 2000 and now"]
        assert failed.value.report.rows_in_scope == 1
        assert "evt_from_the_future" in str(failed.value)
    assert raw_con.execute(f"select count(*) from {CHECKED_EVENTS_TABLE}").fetchone() == (FIXTURE_EVENTS,)
    raw_con.execute("update raw.events set occurred_at = timestamp '2025-06-15 00:00:00' "
                    "where event_id = 'evt_from_the_future'")
    fixed = validate_raw(raw_con, settings, unchecked_only=True)
    assert fixed.success and fixed.rows_in_scope == 1
    latest = json.loads((settings.home / "quality" / "raw-latest.json").read_text())
    assert latest["rows_in_scope"] == 1


def test_unchecked_only_with_since_leaves_older_rows_for_later(raw_con, settings):
    report = validate_raw(raw_con, settings, unchecked_only=True, since=fx.NOW - timedelta(days=1))
    assert report.success and report.rows_in_scope == FIXTURE_EVENTS - 1  # not the May event
    assert validate_raw(raw_con, settings, unchecked_only=True).rows_in_scope == 1


def test_check_raw_task_validates_only_rows_not_checked_before(tmp_path):
    settings = Settings(home=tmp_path / "home")
    fx.build_file(settings.warehouse)
    assert tasks.check_raw(settings)["rows_in_scope"] == FIXTURE_EVENTS
    again = tasks.check_raw(settings)
    assert again["success"] and again["rows_in_scope"] == 0
    con = duckdb.connect(str(settings.warehouse))
    con.execute(FUTURE_ROW)
    con.close()
    with pytest.raises(DataCheckFailed, match="occurred_at"):
        tasks.check_raw(settings)


def test_marts_suite_passes_on_built_fixture(marts_con, settings):
    report = validate_marts(marts_con, settings)
    assert report.success, report.render()
    assert (settings.home / "quality" / "marts-latest.json").exists()


MARTS_BREAKAGES = {
    "transition probabilities sum to 1 per from-topic": (
        "update marts.agg_topic_transitions set probability = 0.5 "
        "where from_topic_id = 0 and to_topic_id = 1",
        "1 of 3 rows fail",
    ),
    "every event's topic is in dim_topics": (
        "update marts.fct_events set topic_id = 99 where event_id = 'evt_acme_s1_0'",
        "1 of 6 rows fail",  # one row per (project, field, topic) used: 5 known + topic 99
    ),
    "every text field has an Unclustered topic": (
        f"delete from marts.dim_topics where topic_id = -1 and project_id = '{fx.TRIALCO}'",
        "1 of 2 rows fail",
    ),
    "quota usage never negative": (
        "update marts.fct_quota_usage set projected_events = -1 where project_name = 'acme'",
        "1 of 3 rows fail",
    ),
    "quota share between 0 and 1 unless over the limit": (
        "update marts.fct_quota_usage set share_used = 1.5 where project_name = 'acme'",
        "1 of 3 rows fail",
    ),
    # A text the topic engine never assigned (no pipeline.event_topics row, not even -1).
    "every text has a topic row": (
        f"insert into pipeline.event_texts values ('{fx.ACME}', 'evt_acme_may', 'prompt', 'hx', 'hello')",
        "1 of 2 rows fail",  # one row per (project, field): acme/prompt, trialco/query
    ),
    "every topic row reaches fct_events": (
        "delete from marts.fct_events where event_id = 'evt_acme_s5_0'",  # the Unclustered (-1) one
        "1 of 2 rows fail",
    ),
    "journey paths are well-formed": (
        "update marts.journey_paths set share = 1.5 where scope = 'session' and path_length = 3",
        "1 of 8 rows fail",  # acme: 5 session paths, 3 user paths; trialco none
    ),
    "journey topic stats are consistent": (
        f"update marts.journey_topic_stats set user_exits = 9 where project_id = '{fx.ACME}' "
        "and topic_id = 0",
        "1 of 5 rows fail",
    ),
}

EXAMPLE_IN_MESSAGE = {
    "every text has a topic row": "example_event_id=evt_acme_may",
    "every topic row reaches fct_events": "example_event_id=evt_acme_s5_0",
    "journey paths are well-formed": "problem=share outside 0..1",
    "journey topic stats are consistent": "problem=user entries or exits above user visits",
}


@pytest.mark.parametrize("check_name", list(MARTS_BREAKAGES))
def test_each_marts_invariant_fails_by_name(marts_con, settings, check_name):
    sql, count_text = MARTS_BREAKAGES[check_name]
    marts_con.execute(sql)
    with pytest.raises(DataCheckFailed) as failed:
        validate_marts(marts_con, settings)
    assert [c.name for c in failed.value.report.failed] == [check_name]
    message = str(failed.value)
    assert check_name in message and count_text in message
    assert "data checks 'marts': FAILED" in message.splitlines()[0]
    assert EXAMPLE_IN_MESSAGE.get(check_name, "") in message


def test_over_limit_share_above_one_is_allowed(marts_con, settings):
    marts_con.execute("update marts.fct_quota_usage set share_used = 1.5, is_over_limit = true "
                      "where project_name = 'acme'")
    assert validate_marts(marts_con, settings).success


def test_missing_journey_tables_fail_their_checks(marts_con, settings):
    marts_con.execute("drop table marts.journey_paths")
    marts_con.execute("drop table marts.journey_topic_stats")
    report = validate_marts(marts_con, settings, raise_on_failure=False)
    assert {c.name for c in report.failed} == {
        "journey paths are well-formed", "journey topic stats are consistent"
    }


def test_missing_mart_is_a_failed_check_not_a_crash(marts_con, settings):
    marts_con.execute("drop table marts.fct_quota_usage")
    report = validate_marts(marts_con, settings, raise_on_failure=False)
    assert not report.success
    assert {c.name for c in report.failed} == {
        "quota usage never negative", "quota share between 0 and 1 unless over the limit"
    }
    assert all("fct_quota_usage" in c.error for c in report.failed)
