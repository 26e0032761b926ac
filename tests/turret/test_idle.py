"""turret.idle: an hour has work to do when a segment was loaded after the published snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from turret import idle, tasks, warehouse
from turret.publish import publish
from turret.settings import Settings


@pytest.fixture
def settings(tmp_path):
    """A warehouse with the contract tables and one mart, enough to publish."""
    s = Settings(home=tmp_path / "home")
    with warehouse.connect(s) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_events as select 'e1' as event_id")
    return s


def _load_segment(settings: Settings, name: str, at: datetime) -> None:
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("insert into raw.loaded_segments values (?, ?, 0, 1, 0)", [name, at])


def test_work_until_published_then_none_until_the_next_load(settings):
    with duckdb.connect(str(settings.warehouse)) as con:
        assert idle.work_to_do(con, settings) == "nothing published yet"
        publish(settings, con)
        assert idle.published_at(settings) is not None
        assert idle.work_to_do(con, settings) is None
    # A segment loaded after the snapshot (even one whose lines were all quarantined) is work to do.
    _load_segment(settings, "date=2026-01-01/hour=10/late.jsonl", datetime.now(UTC).replace(tzinfo=None))
    with duckdb.connect(str(settings.warehouse)) as con:
        reason = idle.work_to_do(con, settings)
        assert reason and "not in the snapshot" in reason
        publish(settings, con)
        assert idle.work_to_do(con, settings) is None


def test_a_load_older_than_the_snapshot_is_no_work(settings):
    with duckdb.connect(str(settings.warehouse)) as con:
        publish(settings, con)
    _load_segment(settings, "old.jsonl", datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1))
    result = tasks.has_new_events(settings)
    assert result["new"] is False and "cover every loaded segment" in result["reason"]
