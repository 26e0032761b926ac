"""Events that once stopped every project's pipeline, sent through the ingest API, then loaded and checked
by the pipeline's own tasks: what the API acknowledges passes every check, what it refuses never lands, and
a row that is bad anyway (written behind the API's back) is quarantined and counted while the run goes on.
The whole DAG over the same events runs in tests/e2e/test_pipeline_e2e.py."""

from __future__ import annotations

import json

import duckdb
import pytest
from turret import tasks
from turret.settings import Settings

from tests.fixtures import poison


@pytest.fixture
def settings(tmp_path):
    return Settings(home=tmp_path / "home")


def test_poisons_through_the_api_load_and_pass_the_raw_checks(settings):
    sent = poison.post_all(settings)
    assert set(sent["accepted"].values()) <= {200, 204}, sent["accepted"]
    for label, (status, body) in sent["refused"].items():
        assert status == poison.refused(settings)[label][2], (label, status, body)
        assert body is not None, label  # a JSON body naming the problem
    loaded = tasks.load_landed(settings)
    assert (loaded["rows_loaded"], loaded["rows_quarantined"]) == (len(sent["accepted"]), 0)
    checked = tasks.check_raw(settings)
    assert checked["success"] and checked["rows_quarantined"] == 0, checked
    assert checked["rows_in_scope"] == len(sent["accepted"])
    typed = tasks.type_fields(settings)
    assert typed
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        keys = {k for (k,) in con.execute(
            "select distinct j.key from raw.events, json_each(metadata) j where project_id = ?",
            [sent["project_id"]]).fetchall()}
        fields = {f for (f,) in con.execute(
            "select field from pipeline.fields where project_id = ?", [sent["project_id"]]).fetchall()}
    assert {"$prompt", "$browser", "a.b", "c[0]", 'say "hi"', "$.x"} <= keys
    assert "$prompt" in fields and "prompt" in fields


def test_bad_rows_are_quarantined_counted_and_the_run_goes_on(settings):
    from turret.dbt import run_dbt

    sent = poison.post_all(settings)
    # A malformed line in a sealed segment, and an event written straight into raw.events out of bounds.
    folder = settings.landing_root / "date=2025-06-15" / "hour=12"
    folder.mkdir(parents=True)
    (folder / "h-1-20250615T120000000000Z-aa.jsonl").write_text("{not json\n", encoding="utf-8")
    assert tasks.load_landed(settings)["rows_quarantined"] == 1
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(
            "insert into raw.events select * replace ('evt_from_the_future' as event_id, "
            "timestamp '2199-01-01' as occurred_at, line_no + 1000 as line_no) from raw.events "
            "where project_id = ? limit 1", [sent["project_id"]])
    checked = tasks.check_raw(settings)
    assert checked["success"] and checked["rows_quarantined"] == 1
    run_dbt(["build", "--select", "+fct_quarantined_rows"], settings)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.execute(
            "select stage, project_id, event_id, reason from marts.fct_quarantined_rows order by stage"
        ).fetchall()
        quarantined_line = con.execute(
            "select line from raw.quarantine where reason like 'data check failed:%'").fetchone()[0]
    assert rows == [
        ("data_check", sent["project_id"], "evt_from_the_future",
         "data check failed: occurred_at between 1970-01-01 and now"),
        ("malformed", None, None, rows[1][3]),
    ]
    assert "invalid JSON" in rows[1][3]
    assert json.loads(quarantined_line)["event_id"] == "evt_from_the_future"
