"""The conversion queries of the dashboard (turret.ui.marts) on a hand-made snapshot: several days, where the
median time to convert is an estimate, and filters the conversion marts cannot follow."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from turret.publish import CURRENT_NAME
from turret.ui import marts
from turret.ui.filters import Filters

PROJECT = "p1"
# The columns of the mart (dbt_project/models/marts/_conversions.yml).
COLUMNS = ("project_id varchar, field varchar, topic_id integer, topic_label varchar, message_date date, "
           "messages bigint, views bigint, clicks bigint, messages_clicked bigint, "
           "click_through_rate double, "
           "add_to_carts bigint, purchases bigint, conversions bigint, messages_converted bigint, "
           "conversion_rate double, revenue double, median_seconds_to_conversion double")
# (day, messages, clicks, messages_clicked, conversions, messages_converted, revenue, median seconds)
DAYS = [
    (date(2025, 6, 1), 10, 4, 3, 1, 1, 10.0, 10.0),
    (date(2025, 6, 2), 10, 6, 5, 4, 3, 30.0, 100.0),
    (date(2025, 6, 3), 5, 0, 0, 0, 0, 0.0, None),
    (date(2025, 6, 4), 5, 2, 2, 1, 1, 5.0, 1000.0),
]


@pytest.fixture
def reader(tmp_path):
    snapshot = tmp_path / "turret-1.duckdb"
    con = duckdb.connect(str(snapshot))
    con.execute("create schema marts")
    con.execute(f"create table marts.agg_topic_conversions_daily ({COLUMNS})")
    con.executemany(
        "insert into marts.agg_topic_conversions_daily values "
        "(?, 'prompt', 0, 'Pricing', ?, ?, 0, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
        [(PROJECT, day, n, clicks, clicked, clicked / n, conv, converted, converted / n, revenue, median)
         for day, n, clicks, clicked, conv, converted, revenue, median in DAYS])
    con.execute("create table marts.fct_events as select 'p1' as project_id, 'prompt' as field, "
                "unnest(['search', 'user_message']) as event_name")
    con.close()
    (tmp_path / CURRENT_NAME).symlink_to(snapshot.name)
    reader = marts.MartsReader(tmp_path)
    yield reader
    reader.close()


def test_several_days_sum_and_estimate_the_median(reader):
    got = marts.topic_conversions(reader, Filters(project_id=PROJECT, field="prompt"), 0)
    totals = got["totals"]
    assert (totals["messages"], totals["clicks"], totals["conversions"]) == (30, 12, 6)
    assert totals["revenue"] == 45.0
    assert totals["click_through_rate"] == pytest.approx(10 / 30)
    assert totals["conversion_rate"] == pytest.approx(5 / 30)
    # Daily medians 10 (1 message converted), 100 (3), 1000 (1): the weighted median is 100, an estimate.
    assert totals["median_seconds_to_conversion"] == 100.0 and totals["median_exact"] is False
    assert [r["day"] for r in got["daily"]] == [d[0] for d in DAYS]
    one_day = Filters(project_id=PROJECT, field="prompt", start=date(2025, 6, 4), end=date(2025, 6, 4))
    exact = marts.topic_conversions(reader, one_day, 0)["totals"]
    assert exact["median_seconds_to_conversion"] == 1000.0 and exact["median_exact"] is True
    assert marts.topic_conversions(reader, Filters(project_id=PROJECT, field="prompt"), 7)["totals"] is None


def test_filters_the_marts_cannot_follow_give_a_note_not_figures(reader):
    two_enums = Filters(project_id=PROJECT, field="prompt", enums=(("a", "1"), ("b", "2")))
    assert "one enum field at a time" in marts.conversion_totals(reader, two_enums)["note"]
    some_messages = Filters(project_id=PROJECT, field="prompt", event_name="search")
    assert "not split by event name" in marts.topic_conversions(reader, some_messages, 0)["note"]
    no_messages = Filters(project_id=PROJECT, field="prompt", event_name="nosuch")
    assert marts.conversion_totals(reader, no_messages)["conversions"] is None  # nothing: shown as 0
    assert marts.has_outcomes(reader, PROJECT, "prompt") and not marts.has_outcomes(reader, PROJECT, "query")
