"""dbt_project, run for real (dbtRunner, dbt-duckdb) on the fixture warehouse and on an empty one.

Each dbt invocation takes 5-20 s, so each warehouse is built once per module and the tests only read it.
Expected numbers come from tests/fixtures/warehouse.py.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from turret.dbt import DbtFailed, build_marts, run_dbt
from turret.settings import Settings

from tests.fixtures import warehouse as fx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture warehouse after `dbt build` and `dbt docs generate`; yields a read-only connection."""
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    fx.journey_tables(fx.build_file(settings.warehouse))
    # No as_of: the quota mart takes the data's clock (the fixture's run ends at fx.NOW), as in the DAG.
    build = build_marts(settings)
    docs = run_dbt(["docs", "generate"], settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con, settings, build, docs
    con.close()


def rows(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


def test_build_and_docs_pass(built):
    _, settings, build, docs = built
    # 45 models; 213 data tests and 4 unit tests: all pass, none skipped or warned.
    assert build["success"] is True
    assert build["statuses"] == {"success": 45, "pass": 217}
    assert docs.success
    catalog = json.loads((settings.home / "dbt" / "target" / "catalog.json").read_text())
    assert "model.turret.dim_topics" in catalog["nodes"]


def test_every_built_column_is_documented(built):
    """Each column dbt built (catalog.json) has a description in the YAML, in every layer, and the YAML
    names no column the model lacks."""
    settings = built[1]
    target = settings.home / "dbt" / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert len(models) == 45
    for unique_id, node in models.items():
        built_columns = {c.lower() for c in catalog["nodes"][unique_id]["columns"]}
        documented = {name.lower(): c["description"] for name, c in node["columns"].items()}
        assert set(documented) == built_columns, unique_id
        assert all(d.strip() for d in documented.values()), unique_id


def test_marts_land_in_schema_named_exactly_marts(built):
    con = built[0]
    schemas = {s for (s,) in rows(con, "select distinct table_schema from information_schema.tables")}
    assert {"marts", "staging", "intermediate"} <= schemas
    assert not any(s.startswith("main_") for s in schemas)
    tables = {t for (t,) in rows(con, "select table_name from information_schema.tables "
                                     "where table_schema = 'marts' and table_type = 'BASE TABLE'")}
    assert {"fct_events", "dim_topics", "fct_session_transitions", "agg_topic_transitions",
            "fct_topic_trends_hourly", "fct_topic_trends_daily", "agg_topic_segments", "agg_topic_numbers",
            "fct_quota_usage", "fct_user_journeys", "fct_event_enums", "fct_event_numbers",
            "journey_paths", "journey_topic_stats"} <= tables


def test_transition_probabilities_match_the_fixture(built):
    con = built[0]
    got = {
        (a, b): (n, p)
        for a, b, n, p in rows(
            con,
            "select from_topic_id, to_topic_id, transitions, probability from marts.agg_topic_transitions "
            "where project_id = ? and field = 'prompt'",
            [fx.ACME],
        )
    }
    assert {k: v[0] for k, v in got.items()} == fx.EXPECTED_TRANSITIONS
    assert got[(0, 1)][1] == pytest.approx(2 / 3)
    assert got[(0, 2)][1] == pytest.approx(1 / 3)
    assert got[(1, 2)][1] == 1.0
    sums = rows(con, "select sum(probability) from marts.agg_topic_transitions group by project_id, field, "
                     "from_topic_id")
    assert all(abs(s - 1) <= 1e-9 for (s,) in sums)


def test_session_transitions_keep_repeats_flagged(built):
    con = built[0]
    repeats = rows(con, "select session_id, step_index, seconds_between from marts.fct_session_transitions "
                        "where is_repeat and project_id = ? order by 1", [fx.ACME])
    # s1 steps 1->2 (topic 0 twice) and s7 (topic 2 twice), one minute apart.
    assert repeats == [("s1", 2, 60.0), ("s7", 2, 60.0)]
    (n,) = rows(con, "select count(*) from marts.fct_session_transitions where project_id = ?", [fx.ACME])[0]
    assert n == 15 - 7  # events minus one per session


def test_dim_topics_has_unclustered_row_and_lineage_status(built):
    con = built[0]
    topics = {
        (f, t): (label, status, unclustered, events, theme)
        for f, t, label, status, unclustered, events, theme in rows(
            con, "select field, topic_id, label, status, is_unclustered, events, theme from marts.dim_topics "
                 "where project_id in (?, ?)", [fx.ACME, fx.TRIALCO],
        )
    }
    assert topics[("prompt", -1)][0] == "Unclustered" and topics[("prompt", -1)][2] is True
    assert topics[("query", -1)][2] is True and topics[("query", -1)][3] == 0
    assert topics[("prompt", 0)][1] == "continued"  # latest lineage row wins over the older "new"
    assert topics[("prompt", 2)][1] == "split"
    assert topics[("prompt", 0)][3:] == (5, "Account")
    assert topics[("prompt", 1)][3:] == (4, "Money")


def test_fct_events_grain_and_enum_number_tables(built):
    con = built[0]
    assert rows(con, "select count(*) from marts.fct_events where project_id = ?", [fx.ACME]) == [(15,)]
    # The May event has no text field: not in fct_events, but its enum value is kept.
    assert rows(con, "select count(*) from marts.fct_events where event_id = 'evt_acme_may'") == [(0,)]
    assert rows(con, "select value from marts.fct_event_enums where event_id = 'evt_acme_may'") == [("free",)]
    assert rows(con, "select count(*) from marts.fct_event_numbers where field = 'latency_ms'") == [(15,)]


def test_segments_and_numbers_per_topic(built):
    con = built[0]
    seg = dict(
        ((v, (n, s)) for v, n, s in rows(
            con, "select enum_value, events, share from marts.agg_topic_segments where project_id = ? "
                 "and topic_id = 0 and enum_field = 'tier'", [fx.ACME]))
    )
    # Topic 0: s1 x2 free, s3 paid, s4 free, s5 free.
    assert seg == {"free": (4, 0.8), "paid": (1, pytest.approx(0.2))}
    (count, avg, lo, hi, p50) = rows(
        con, "select values_count, avg_value, min_value, max_value, p50_value from marts.agg_topic_numbers "
             "where project_id = ? and topic_id = 0 and number_field = 'latency_ms'", [fx.ACME])[0]
    # latencies 100, 120, 50, 300, 410
    assert (count, lo, hi, p50) == (5, 50.0, 410.0, 120.0)
    assert avg == pytest.approx(196.0)


def test_conversions_by_topic_from_the_fixture_outcome_events(built):
    """The outcome events of fx.ACME_OUTCOMES, credited to the latest message before them in their session."""
    con = built[0]
    got = {topic: tuple(measures) for topic, *measures in rows(
        con, "select topic_id, messages, clicks, conversions, messages_converted, revenue, "
             "median_seconds_to_conversion from marts.agg_topic_conversions_daily where project_id = ?",
        [fx.ACME])}
    assert got == fx.EXPECTED_CONVERSIONS
    paid = rows(con, "select sum(messages), sum(conversions), sum(revenue) "
                     "from marts.agg_topic_conversions_segments "
                     "where project_id = ? and enum_field = 'tier' and enum_value = 'paid'", [fx.ACME])
    assert paid == [(8, 1, 99.0)]


def test_quota_usage_per_plan(built):
    con = built[0]
    q = {
        name: (plan, str(start), str(end), events, limit, days_left, share)
        for name, plan, start, end, events, limit, days_left, share in rows(
            con, "select project_name, plan, period_start, period_end, events_accepted, event_limit, "
                 "days_left, share_used from marts.fct_quota_usage")
    }
    # acme: 15 prompt events and 7 outcome events in June (fx.EXPECTED_ACME_EVENTS_JUNE).
    assert q["acme"][:6] == ("pro", "2025-06-01 00:00:00", "2025-07-01 00:00:00", 22, 1_000_000, 16)
    assert q["trialco"][:6] == ("trial", "2025-06-10 12:00:00", "2025-06-24 12:00:00", 2, 250_000, 9)
    assert q["bigcorp"][:6] == ("enterprise", "2025-06-01 00:00:00", "2025-07-01 00:00:00", 0, 100, 16)
    assert q["acme"][6] == pytest.approx(22 / 1_000_000)
    assert rows(con, "select distinct as_of_at from marts.fct_quota_usage") == [(fx.NOW,)]
    (projected,) = rows(
        con, "select projected_events from marts.fct_quota_usage where project_name = 'acme'"
    )[0]
    assert projected == pytest.approx(22 * 30 / 14.5)  # 14.5 of June's 30 days elapsed


def test_hourly_trends_are_dense_with_growth(built):
    con = built[0]
    series = rows(con, "select period_start, events, previous_events, growth, is_new_topic "
                       "from marts.fct_topic_trends_hourly where project_id = ? and topic_id = 2 "
                       "order by period_start", [fx.ACME])
    # Topic 2 has events in the hours of s2 (1), s3 (1), s4 (1), s7 (2): hours 1, 2, 3, 6 after start.
    assert [r[1] for r in series] == [1, 1, 1, 0, 0, 2]
    assert [r[4] for r in series] == [True, False, False, False, False, False]
    assert series[1][3] == 0.0 and series[3][3] == -1.0 and series[5][3] is None
    daily = rows(con, "select events from marts.fct_topic_trends_daily where project_id = ? and topic_id = 2",
                 [fx.ACME])
    assert daily == [(5,)]


def test_user_journeys_link_sessions(built):
    con = built[0]
    got = rows(
        con,
        "select user_id, session_order, session_id, first_topic_id, previous_session_last_topic_id "
        "from marts.fct_user_journeys where project_id = ? order by 1, 2",
        [fx.ACME],
    )
    assert got == [
        ("u1", 1, "s1", 0, None), ("u1", 2, "s2", 1, 1),
        ("u2", 1, "s3", 0, None), ("u2", 2, "s7", 2, 2),
        ("u3", 1, "s4", 0, None), ("u3", 2, "s5", -1, 2),
        ("u4", 1, "s6", 1, None),
    ]


def test_build_and_docs_on_empty_warehouse(tmp_path):
    settings = Settings(home=tmp_path)
    fx.build_empty_file(settings.warehouse)
    assert run_dbt(["build"], settings).success  # no as_of: the current time
    assert run_dbt(["docs", "generate"], settings).success
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from marts.dim_topics").fetchone() == (0,)
        assert con.execute("select count(*) from marts.fct_quota_usage").fetchone() == (0,)
    finally:
        con.close()


def test_failing_data_test_raises_with_the_test_named(tmp_path):
    settings = Settings(home=tmp_path)
    fx.build_file(settings.warehouse)
    con = duckdb.connect(str(settings.warehouse))
    con.execute("insert into raw.events select * replace ('bogus' as contract, 'evt_x' as event_id) "
                "from raw.events limit 1")
    con.close()
    with pytest.raises(DbtFailed, match="accepted_values_raw_events_contract"):
        run_dbt(["build", "--select", "source:raw.events"], settings)


def test_source_freshness_flags_a_stale_warehouse(tmp_path):
    settings = Settings(home=tmp_path)
    fx.build_file(settings.warehouse)
    # The fixture's newest event was received in June 2025: far past error_after (1 day).
    result = run_dbt(["source", "freshness"], settings, raise_on_failure=False)
    assert not result.success
    assert any("source.turret.raw.events" in line for line in result.failures)


def test_trend_and_number_tests_catch_planted_errors(tmp_path):
    settings = Settings(home=tmp_path)
    fx.built_warehouse(settings.warehouse)
    con = duckdb.connect(str(settings.warehouse))
    # A duplicated hour (grain), an hour whose count no longer adds up to fct_events, and a p90 above max.
    con.execute("insert into marts.fct_topic_trends_hourly select * from marts.fct_topic_trends_hourly "
                "where topic_id = 1 limit 1")
    con.execute("update marts.fct_topic_trends_daily set events = events + 1 where topic_id = 2")
    con.execute("update marts.agg_topic_numbers set p90_value = max_value + 10 where topic_id = 0")
    con.close()
    result = run_dbt(
        ["test", "--select", "fct_topic_trends_hourly fct_topic_trends_daily agg_topic_numbers"],
        settings, raise_on_failure=False,
    )
    # Failure lines open with the test's unique id: test.turret.<name>[.<hash> for generic tests].
    failed = sorted(line.split(":", 1)[0].split(".")[2] for line in result.failures)
    assert failed == [
        "assert_topic_trends_match_fct_events",
        "unique_combination_fct_topic_trends_hourly_project_id__field__topic_id__period_start",
        "values_in_order_agg_topic_numbers_min_value__p50_value__p90_value__max_value",
    ], result.failures


def test_journey_marts_label_the_pipeline_journey_tables(built):
    """dbt builds marts.journey_* from what turret.journeys wrote to pipeline.journey_* before it, spelling
    each path in dim_topics' labels (the fixture's paths are listed in tests/fixtures/warehouse.py)."""
    con = built[0]
    assert rows(con, "select count(*) from marts.journey_paths") == rows(
        con, "select count(*) from pipeline.journey_paths"
    )
    paths = {
        tuple(ids): path
        for ids, path in rows(con, "select path_topic_ids, path from marts.journey_paths "
                                   "where project_id = ? and scope = 'session'", [fx.ACME])
    }
    assert paths[(0, 1, 2)] == "Password reset > Pricing plans > Billing questions"
    assert paths[(-1, 0)] == "Unclustered > Password reset"
    stats = rows(con, "select topic_id, entries, exits, visits from marts.journey_topic_stats "
                      "where project_id = ? order by topic_id", [fx.ACME])
    assert stats == [(-1, 1, 0, 1), (0, 3, 1, 4), (1, 2, 2, 4), (2, 1, 4, 4)]


def test_journey_tests_catch_planted_errors(tmp_path):
    """A broken row in the pipeline's journey tables fails dbt's tests on the journey marts."""
    settings = Settings(home=tmp_path)
    fx.journey_tables(fx.build_file(settings.warehouse))
    con = duckdb.connect(str(settings.warehouse))
    con.execute("update pipeline.journey_paths set share = 1.5 where scope = 'session' and path_length = 3")
    con.execute(f"update pipeline.journey_topic_stats set exits = 9 where project_id = '{fx.ACME}' "
                "and topic_id = 0")
    con.close()
    # The journey marts and their parents; not the trend test, whose other parents are not selected.
    result = run_dbt(["build", "--select", "+journey_paths +journey_topic_stats",
                      "--exclude", "assert_topic_trends_match_fct_events"],
                     settings, raise_on_failure=False, dbt_vars={"as_of": fx.AS_OF})
    failed = sorted(line.split(":", 1)[0].split(".")[2] for line in result.failures)
    assert failed == [
        "between_journey_paths_share__1__0",
        "values_in_order_journey_topic_stats_exits__visits",
    ], result.failures
