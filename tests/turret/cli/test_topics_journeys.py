"""`turret topics` and `turret journeys` on the dbt-built fixture warehouse (tests/fixtures/warehouse.py),
through click's runner over the real `cli` group, reading the warehouse or the published copy."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from turret.cli import cli

from tests.fixtures import warehouse as fx


@pytest.fixture
def home(settings):
    fx.built_warehouse(settings.warehouse)
    return settings


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


def test_topics_table_is_fixed_width_and_sorted_by_events(home):
    result = run("topics", "--project", "acme")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("acme · prompt · 15 events")
    header, rule, *rows = lines[1:]
    # The fixture has outcome events (fx.ACME_OUTCOMES): conversion columns follow.
    assert header.split() == ["id", "label", "events", "share", "theme", "status", "trend", "ctr", "conv",
                              "revenue"]
    assert [r.split()[0] for r in rows] == ["0", "2", "1", "-1"]  # 5, 5, 4, 1 events; ties by id
    assert "Password reset" in rows[0] and "33.3%" in rows[0] and "Account" in rows[0]
    assert "continued" in rows[0] and "split" in rows[1]
    # Every column starts at the same offset on every line.
    offset = header.index("events") + len("events")
    assert all(r[offset - 1] != " " and (len(r) == offset or r[offset] == " ") for r in rows)


def test_topics_json_document(home):
    result = run("topics", "--project", fx.ACME, "--json", "--limit", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["project"] == {"id": fx.ACME, "name": "acme"}
    assert doc["field"] == "prompt" and doc["total_events"] == 15
    assert [t["topic_id"] for t in doc["topics"]] == [0, 2, 1]
    first = doc["topics"][0]
    assert first["events"] == 5 and first["share"] == pytest.approx(5 / 15)
    assert first["theme"] == "Account" and first["is_unclustered"] is False
    # All 15 events fall in the 24 hours before the latest one.
    assert first["trend"] == {"last_24h": 5, "previous_24h": 0, "change": None}


def test_conversational_topics_are_listed_only_when_asked(home):
    con = duckdb.connect(str(home.warehouse))
    con.execute("update marts.dim_topics set is_conversational = true where topic_id = 1")
    con.close()
    result = run("topics", "--project", "acme")
    assert result.exit_code == 0, result.output
    rows = [line.split()[0] for line in result.output.splitlines()[3:]
            if line[:5].strip().lstrip("-").isdigit()]
    assert rows == ["0", "2", "-1"]
    assert "1 conversational topics (thanks, greetings, yes/no: 26.7% of events) not listed" in result.output
    doc = json.loads(run("topics", "--project", "acme", "--json", "--conversational").output)
    assert [t["topic_id"] for t in doc["topics"]] == [0, 2, 1, -1]
    assert next(t for t in doc["topics"] if t["topic_id"] == 1)["is_conversational"] is True
    assert doc["conversational"] == {"topics": 1, "events": 4, "share": pytest.approx(4 / 15), "listed": True}


def test_topics_trend_compares_the_last_24h_with_the_24h_before(home):
    con = duckdb.connect(str(home.warehouse))
    con.execute("update marts.fct_events set occurred_at = occurred_at - interval 30 hour "
                "where topic_id = 1 and event_id <> 'evt_acme_s6_0'")
    con.close()
    doc = json.loads(run("topics", "--project", "acme", "--json").output)
    pricing = next(t for t in doc["topics"] if t["topic_id"] == 1)
    assert pricing["trend"]["last_24h"] == 1 and pricing["trend"]["previous_24h"] == 3
    assert pricing["trend"]["change"] == pytest.approx(-2 / 3)
    assert "-67%" in run("topics", "--project", "acme").output


def test_journeys_session_scope(home):
    doc = json.loads(run("journeys", "--project", "acme", "--json").output)
    assert doc["scope"] == "session"
    moves = {
        (t["from_topic_id"], t["to_topic_id"]): (t["count"], t["probability"]) for t in doc["transitions"]
    }
    assert {k: v[0] for k, v in moves.items()} == fx.EXPECTED_TRANSITIONS
    assert moves[(0, 1)][1] == pytest.approx(2 / 3)
    paths = {tuple(p["topic_ids"]): p for p in doc["paths"]}
    assert paths[(0, 1, 2)]["labels"] == ["Password reset", "Pricing plans", "Billing questions"]
    assert paths[(0, 1)]["count"] == 2 and paths[(0, 1)]["share"] == pytest.approx(2 / 7)

    stats = {s["topic_id"]: (s["entries"], s["exits"], s["visits"]) for s in doc["topic_stats"]}
    assert stats == {0: (3, 1, 4), 1: (2, 2, 4), 2: (1, 4, 4), -1: (1, 0, 1)}

    text = run("journeys", "--project", "acme").output
    assert "Top transitions" in text and "Password reset > Pricing plans > Billing questions" in text


def test_journeys_from_and_to_by_label_or_id(home):
    doc = json.loads(run("journeys", "--project", "acme", "--from", "password", "--json").output)
    assert doc["from"] == {"topic_id": 0, "label": "Password reset"}
    assert {(t["from_topic_id"], t["to_topic_id"]) for t in doc["transitions"]} == {(0, 1), (0, 2)}
    assert all(p["topic_ids"][0] == 0 for p in doc["paths"]) and doc["paths"]
    assert [(s["topic_id"], s["dropoff_rate"]) for s in doc["topic_stats"]] == [(0, 0.25)]

    doc = json.loads(run("journeys", "--project", "acme", "--to", "2", "--json").output)
    assert {(t["from_topic_id"], t["to_topic_id"]) for t in doc["transitions"]} == {(1, 2), (0, 2)}
    assert {tuple(p["topic_ids"]) for p in doc["paths"]} == {(1, 2), (0, 2), (0, 1, 2)}


def test_journeys_user_scope(home):
    doc = json.loads(run("journeys", "--project", "acme", "--scope", "user", "--json").output)
    # Users' first topics per session: u1 0>1, u2 0>2, u3 0>-1.
    assert {(t["from_topic_id"], t["to_topic_id"]): t["count"] for t in doc["transitions"]} == {
        (0, 1): 1, (0, 2): 1, (0, -1): 1
    }
    assert doc["topic_stats"] == []
    shares = {tuple(p["topic_ids"]): p["share"] for p in doc["paths"]}
    assert shares == {(0, 1): 0.25, (0, 2): 0.25, (0, -1): 0.25}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["topics"], 2, "several projects have topics, choose one with --project (acme, trialco)"),
        (["topics", "--project", "nope"], 2, "no project 'nope' (projects: acme, bigcorp, trialco)"),
        (["topics", "--project", "acme", "--field", "tier"], 2, "no text field 'tier'"),
        (["topics", "--project", "bigcorp"], 1, "no topics yet"),
        (["topics", "--project", "acme", "--limit", "0"], 2, "--limit"),
        (["journeys", "--project", "acme", "--from", "i"], 2, "matches 2 topics"),
        (["journeys", "--project", "acme", "--from", "77"], 2, "no topic 77"),
        (["journeys", "--project", "acme", "--scope", "team"], 2, "'team' is not one of"),
    ],
)
def test_bad_input_is_explained(home, args, code, message):
    result = run(*args)
    assert result.exit_code == code
    assert message in result.output


def test_trialco_is_chosen_by_field_default_and_published_copy_is_read(home):
    from turret.publish import publish

    con = duckdb.connect(str(home.warehouse))
    publish(home, con)
    con.close()
    home.warehouse.unlink()  # only the published copy is left
    doc = json.loads(run("topics", "--project", "trialco", "--json").output)
    assert doc["field"] == "query" and doc["topics"][0]["label"] == "Shipping times"


def test_without_any_data_the_commands_say_what_to_do(settings):
    for command in ("topics", "journeys"):
        result = run(command)
        assert result.exit_code == 1
        assert "run the pipeline first" in result.output


def test_warehouse_held_by_a_writer_gives_a_clear_error(home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    # The pipeline holds the warehouse for writing (no published copy yet): the command, in its own
    # process like a user's shell, must explain instead of crashing.
    writer = duckdb.connect(str(home.warehouse))
    try:
        turret = Path(sys.executable).parent / "turret"
        done = subprocess.run([str(turret), "topics", "--project", "acme"], capture_output=True, text=True,
                              env={**os.environ, "TURRET_HOME": str(home.home)}, timeout=120)
    finally:
        writer.close()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot open the warehouse" in done.stderr and "publish the marts" in done.stderr


def test_topics_show_conversions_when_anything_followed_the_messages(home):
    con = duckdb.connect(str(home.warehouse))
    columns = [r[0] for r in con.execute("describe marts.agg_topic_conversions_daily").fetchall()]
    # Nothing followed the messages (the fixture's outcome events taken out): no conversion columns.
    measures = [c for c in columns if c not in
                ("project_id", "field", "topic_id", "topic_label", "message_date", "messages")]
    con.execute("update marts.agg_topic_conversions_daily set "
                + ", ".join(f"{c} = {'null' if c.startswith('median') else 0}" for c in measures))
    con.close()
    assert "ctr" not in run("topics", "--project", "acme").output.splitlines()[1].split()
    con = duckdb.connect(str(home.warehouse))
    # Two days of outcomes for "Password reset" (topic 0), as the conversions mart would hold them.
    base = {c: 0 for c in columns} | {"project_id": fx.ACME, "field": "prompt", "topic_id": 0,
                                      "topic_label": "Password reset"}
    days = [
        base | {"message_date": "2025-06-14", "messages": 3, "clicks": 2, "messages_clicked": 1,
                "purchases": 1, "conversions": 1, "messages_converted": 1, "revenue": 10.5},
        base | {"message_date": "2025-06-15", "messages": 1, "clicks": 1, "messages_clicked": 1,
                "conversions": 2, "messages_converted": 1, "revenue": 1000.0},
    ]
    con.execute("delete from marts.agg_topic_conversions_daily where project_id = ? and field = 'prompt' "
                "and topic_id = 0", [fx.ACME])
    for row in days:
        names = ", ".join(f"? as {name}" for name in row)
        insert = f"insert into marts.agg_topic_conversions_daily by name select {names}"
        con.execute(insert, list(row.values()))
    con.close()
    doc = json.loads(run("topics", "--project", "acme", "--json").output)
    by_id = {t["topic_id"]: t["conversions"] for t in doc["topics"]}
    assert by_id[0] == {"messages": 4, "views": 0, "clicks": 3, "click_through_rate": 0.5,
                        "add_to_carts": 0, "purchases": 1, "conversions": 3, "conversion_rate": 0.5,
                        "revenue": 1010.5}
    assert by_id[1] == {"messages": 4, "views": 0, "clicks": 0, "click_through_rate": 0.0,
                        "add_to_carts": 0, "purchases": 0, "conversions": 0, "conversion_rate": 0.0,
                        "revenue": 0.0}
    lines = run("topics", "--project", "acme").output.splitlines()
    assert lines[1].split()[-3:] == ["ctr", "conv", "revenue"]
    row = next(line for line in lines[3:] if line.split()[0] == "0")
    assert row.split()[-3:] == ["50.0%", "3", "1,010.50"]
