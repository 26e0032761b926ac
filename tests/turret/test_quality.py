"""turret.quality: great-expectations suites on the fixture warehouse; each broken invariant fails with a
message naming it. The marts suite runs on the dbt-built fixture (built once per test process)."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest
from turret import tasks
from turret.quality import CHECKED_EVENTS_TABLE, DataCheckFailed, validate_marts, validate_raw
from turret.settings import Settings

from tests.fixtures import warehouse as fx


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
                                "path": report.path, "rows_quarantined": 0}


ROW = "where event_id = 'evt_acme_s1_0'"
TEXT_LIMIT = Settings().max_text_length
RAW_BREAKAGES = [
    pytest.param("event_id unique per project",
                 f"insert into raw.events select * from raw.events {ROW}", id="duplicate"),
    pytest.param("session_id not null", f"update raw.events set session_id = null {ROW}", id="null-session"),
    pytest.param("occurred_at not null", f"update raw.events set occurred_at = null {ROW}", id="null-time"),
    pytest.param("occurred_at between 1970-01-01 and now",
                 f"update raw.events set occurred_at = '2999-01-01', received_at = '2999-01-01' {ROW}",
                 id="future"),
    pytest.param("occurred_at between 1970-01-01 and now",
                 f"update raw.events set occurred_at = '1969-12-31 23:59:59' {ROW}", id="before-1970"),
    pytest.param("occurred_at at most 600 s after received_at",
                 f"update raw.events set occurred_at = received_at + interval 601 seconds {ROW}",
                 id="ahead-of-received"),
    pytest.param(f"metadata texts at most {TEXT_LIMIT} characters",
                 f"update raw.events set metadata = json_object('prompt', repeat('x', {TEXT_LIMIT + 1}))"
                 f" {ROW}",
                 id="text-too-long"),
    pytest.param(f"metadata texts at most {TEXT_LIMIT} characters",
                 f"update raw.events set metadata = json_object('$prompt', repeat('x', {TEXT_LIMIT + 1}))"
                 f" {ROW}",
                 id="text-too-long-under-a-dollar-key"),
    pytest.param("metadata keys 1 to 128 characters",
                 f"update raw.events set metadata = json_object(repeat('k', 129), 'x') {ROW}", id="long-key"),
    pytest.param("metadata keys not blank",
                 f"update raw.events set metadata = json_object(' ', 'x', 'prompt', 'y') {ROW}",
                 id="blank-key"),
    pytest.param("metadata at most 64 keys",
                 f"update raw.events set metadata = (select json_group_object('k' || i, 'x') "
                 f"from range(65) t(i)) {ROW}", id="too-many-keys"),
    pytest.param("name 1 to 200 characters", f"update raw.events set name = repeat('n', 201) {ROW}",
                 id="long-name"),
    pytest.param("ids at most 256 characters", f"update raw.events set user_id = repeat('u', 257) {ROW}",
                 id="long-id"),
]


@pytest.mark.parametrize(("check_name", "sql"), RAW_BREAKAGES)
def test_each_raw_invariant_fails_by_name(raw_con, settings, check_name, sql):
    """The audit (the whole table, nothing moved): every broken bound fails the suite, by name."""
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


@pytest.mark.parametrize("metadata", [
    "json_object('$prompt', 'How do I reset it?', '$browser', 'firefox')",
    "json_object('a.b', 'x', 'c[0]', 'y', 'say \"hi\"', 'z', '$.x', 'w')",
    f"json_object('prompt', repeat('x', {TEXT_LIMIT}), 'k' || repeat('k', 127), 'v')",
], ids=["dollar-keys", "path-like-keys", "at-the-limits"])
def test_keys_are_names_not_json_paths(raw_con, settings, metadata):
    """Keys the API accepts ($-prefixed, with dots or brackets) are read as names; limits are inclusive."""
    raw_con.execute(f"update raw.events set metadata = {metadata} {ROW}")
    report = validate_raw(raw_con, settings)
    assert report.success, report.render()


def test_raw_suite_since_checks_only_recent_events(raw_con, settings):
    drop_constraints(raw_con)
    raw_con.execute("update raw.events set occurred_at = '1969-12-31' where event_id = 'evt_acme_may'")
    since = fx.NOW - timedelta(days=1)
    assert validate_raw(raw_con, settings, since=since).success  # the bad row was received in May
    with pytest.raises(DataCheckFailed, match="evt_acme_may"):
        validate_raw(raw_con, settings)


FUTURE_ROW = (
    "insert into raw.events select * replace ('evt_from_the_future' as event_id, "
    "timestamp '2199-01-01 00:00:00' as occurred_at) from raw.events where event_id = 'evt_acme_s1_0'"
)
FIXTURE_EVENTS = 25  # 15 acme prompt events, 7 acme outcome events, the May event, 2 trialco events


def test_unchecked_only_checks_each_row_once_and_quarantines_bad_rows(raw_con, settings):
    first = validate_raw(raw_con, settings, unchecked_only=True)
    assert first.success and first.rows_in_scope == FIXTURE_EVENTS and first.rows_quarantined == 0
    assert raw_con.execute(f"select count(*) from {CHECKED_EVENTS_TABLE}").fetchone() == (FIXTURE_EVENTS,)
    second = validate_raw(raw_con, settings, unchecked_only=True)
    assert second.success and second.rows_in_scope == 0
    assert second.as_dict()["rows_in_scope"] == 0
    assert {c.rows_checked for c in second.checks} == {0}
    # Rows written straight into raw.events (not via the loader): one out of bounds, one good.
    raw_con.execute(FUTURE_ROW)
    raw_con.execute(
        "insert into raw.events select * replace ('evt_fine' as event_id, line_no + 1000 as line_no) "
        "from raw.events where event_id = 'evt_acme_s1_0'"
    )
    report = validate_raw(raw_con, settings, unchecked_only=True)
    assert report.success, report.render()
    assert (report.rows_in_scope, report.rows_quarantined) == (2, 1)
    assert report.as_dict()["rows_quarantined"] == 1
    assert "! occurred_at between 1970-01-01 and now [raw.events]: 1 row(s) quarantined" in report.render()
    [check] = [c for c in report.checks if c.name == "occurred_at between 1970-01-01 and now"]
    assert (check.success, check.passed, check.quarantined) == (False, True, 1)
    # The bad row left raw.events for raw.quarantine, with its reason and the row itself.
    future = "select count(*) from raw.events where event_id = 'evt_from_the_future'"
    assert raw_con.execute(future).fetchone() == (0,)
    reason, line = raw_con.execute("select reason, line from raw.quarantine").fetchone()
    assert reason == "data check failed: occurred_at between 1970-01-01 and now"
    assert json.loads(line)["event_id"] == "evt_from_the_future"
    # The good row is checked; nothing is left to check.
    assert raw_con.execute(f"select count(*) from {CHECKED_EVENTS_TABLE}").fetchone() == (FIXTURE_EVENTS + 1,)
    assert validate_raw(raw_con, settings, unchecked_only=True).rows_in_scope == 0
    latest = json.loads((settings.home / "quality" / "raw-latest.json").read_text())
    assert latest["rows_in_scope"] == 0


def test_a_batch_level_failure_fails_and_records_nothing(raw_con, settings):
    """Duplicate keys concern the batch, not one row: the suite fails, nothing is moved or recorded, and the
    next run fails the same way until the batch is fixed."""
    drop_constraints(raw_con)
    raw_con.execute(FUTURE_ROW)
    raw_con.execute(
        f"insert into raw.events select * replace (line_no + 1000 as line_no) from raw.events {ROW}"
    )
    for _ in range(2):
        with pytest.raises(DataCheckFailed) as failed:
            validate_raw(raw_con, settings, unchecked_only=True)
        report = failed.value.report
        assert report.failed[0].name == "event_id unique per project"
        assert {c.name for c in report.failed[1:]} == {
            "occurred_at between 1970-01-01 and now", "occurred_at at most 600 s after received_at"
        }
        assert report.rows_quarantined == 0
    assert raw_con.execute(f"select count(*) from {CHECKED_EVENTS_TABLE}").fetchone() == (0,)
    assert raw_con.execute("select count(*) from raw.events").fetchone() == (FIXTURE_EVENTS + 2,)


def test_unchecked_only_with_since_leaves_older_rows_for_later(raw_con, settings):
    report = validate_raw(raw_con, settings, unchecked_only=True, since=fx.NOW - timedelta(days=1))
    assert report.success and report.rows_in_scope == FIXTURE_EVENTS - 1  # not the May event
    assert validate_raw(raw_con, settings, unchecked_only=True).rows_in_scope == 1


def test_check_raw_task_quarantines_and_goes_on(tmp_path):
    settings = Settings(home=tmp_path / "home")
    fx.build_file(settings.warehouse)
    assert tasks.check_raw(settings)["rows_in_scope"] == FIXTURE_EVENTS
    again = tasks.check_raw(settings)
    assert again["success"] and again["rows_in_scope"] == 0
    con = duckdb.connect(str(settings.warehouse))
    con.execute(FUTURE_ROW)
    con.close()
    result = tasks.check_raw(settings)
    assert result["success"] and result["rows_quarantined"] == 1


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
