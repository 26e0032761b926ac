"""turret.quality: great-expectations suites on the fixture warehouse; each broken invariant fails with a
message naming it. The marts suite runs on the dbt-built fixture (built once per test process)."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest
from tests.fixtures import warehouse as fx

from turret.quality import DataCheckFailed, validate_marts, validate_raw
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


def test_over_limit_share_above_one_is_allowed(marts_con, settings):
    marts_con.execute("update marts.fct_quota_usage set share_used = 1.5, is_over_limit = true "
                      "where project_name = 'acme'")
    assert validate_marts(marts_con, settings).success


def test_missing_mart_is_a_failed_check_not_a_crash(marts_con, settings):
    marts_con.execute("drop table marts.fct_quota_usage")
    report = validate_marts(marts_con, settings, raise_on_failure=False)
    assert not report.success
    assert {c.name for c in report.failed} == {
        "quota usage never negative", "quota share between 0 and 1 unless over the limit"
    }
    assert all("fct_quota_usage" in c.error for c in report.failed)
