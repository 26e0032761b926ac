"""End to end: events posted through the real HTTP API, the hourly DAG run by Airflow, marts checked.

One module-scoped home: the demo runner posts a generated week of conversations through `turret serve`
(`--skip-pipeline`), and every event that once stopped the pipeline (tests/fixtures/poison.py) is posted
through the ingest API into a project of its own; then `turret pipeline run` runs the DAG with `airflow dags
test` (real embedding model, real dbt through cosmos, real great-expectations) and must succeed with nothing
quarantined. The tests then read the marts, re-run the same hour and compare the warehouse, and finally write
a bad row behind the API's back to see it quarantined while the run goes on.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

SESSIONS = 300  # ~2,200 events: enough for the default granularity (the demo posts 450 sessions)
SEED = 7
LOGICAL_DATE = "2026-11-20T10:00:00+00:00"
# Columns that record when something ran, not what it computed: excluded from the idempotence comparison.
# pipeline.runs.stats is the run log's account of what an execution did (a rerun reports "nothing new").
AUDIT_COLUMNS = {"loaded_at", "started_at", "finished_at", "updated_at", "created_at", "quarantined_at",
                 "checked_at", "published_at", "stats"}


def _turret(*args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "turret"), *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-home")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW", "OPENAI_"))}
    environ.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    posted = subprocess.run(
        [sys.executable, "-m", "turret.demo", "--sessions", str(SESSIONS), "--seed", str(SEED),
         "--skip-pipeline"],
        env=environ, capture_output=True, text=True, timeout=600,
    )
    assert posted.returncode == 0, posted.stdout + posted.stderr
    poisoned = _post_poison(home)
    environ["_POISON_PROJECT_ID"] = poisoned["project_id"]
    run = _turret("pipeline", "run", "--logical-date", LOGICAL_DATE, env=environ)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    environ["_FIRST_RUN_OUTPUT"] = run.stdout
    return environ


def _post_poison(home: Path) -> dict:
    from turret.settings import Settings

    from tests.fixtures import poison

    sent = poison.post_all(Settings(home=home))
    assert set(sent["accepted"].values()) <= {200, 204}, sent["accepted"]
    assert all(status >= 400 for status, _ in sent["refused"].values()), sent["refused"]
    return sent


@pytest.fixture(scope="module")
def gold():
    """The generated events (messages and their outcomes) with their gold topics, keyed by the event id the
    runner posted them under."""
    from turret.demo.dataset import generate, outcomes

    messages = generate(seed=SEED, n_sessions=SESSIONS)
    return {e.event_id: e for e in messages + outcomes(messages, SEED)}


@contextlib.contextmanager
def _warehouse(env) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, always closed: an open one would keep the next pipeline run from writing."""
    con = duckdb.connect(str(Path(env["TURRET_HOME"]) / "warehouse.duckdb"), read_only=True)
    try:
        yield con
    finally:
        con.close()


def test_run_reports_every_task(env):
    out = env["_FIRST_RUN_OUTPUT"]
    from turret.tasks import HOURLY_TASKS

    for task in HOURLY_TASKS:
        if task != "dbt_build":
            assert f"✓ {task}" in out
    assert "✓ dbt_build." in out
    assert "Pipeline run finished" in out
    assert "Rows quarantined this run: 0 " in out


def test_poisoned_events_load_and_pass_every_check(env):
    """Every event the API acknowledged from the poison project was loaded, none was quarantined, and every
    text of theirs reached the marts."""
    from turret.settings import Settings

    from tests.fixtures import poison

    project = env["_POISON_PROJECT_ID"]
    with _warehouse(env) as con:
        loaded = con.execute("select count(*) from raw.events where project_id = ?", [project]).fetchone()[0]
        texts, in_marts = (set(con.execute(
            f"select event_id, field from {table} where project_id = ?", [project]).fetchall())
            for table in ("pipeline.event_texts", "marts.fct_events"))
        quarantined = con.execute("select count(*) from marts.fct_quarantined_rows").fetchone()[0]
    assert loaded == len(poison.accepted(Settings(home=Path(env["TURRET_HOME"]))))
    assert texts and in_marts == texts
    assert quarantined == 0


def test_every_posted_event_is_loaded_once(env, gold):
    with _warehouse(env) as con:
        ids = [r[0] for r in con.execute(
            "select event_id from raw.events where project_id <> ?", [env["_POISON_PROJECT_ID"]]).fetchall()]
        assert len(ids) == len(set(ids))
        assert set(ids) == set(gold)


def test_topics_are_found_and_named(env, gold):
    with _warehouse(env) as con:
        topics = con.execute(
            "select topic_id, label, events from marts.dim_topics where field = 'prompt' and topic_id <> -1"
        ).fetchall()
        assert len(topics) >= 10
        unnamed = [(t, label) for t, label, _ in topics
                   if not (label and label.strip()) or label.startswith("Topic ")]
        assert not unnamed, topics
        # Most topics are pure: the share of events whose topic's majority gold topic is their own.
        rows = con.execute(
            "select event_id, topic_id from marts.fct_events where field = 'prompt' and topic_id <> -1"
            " and project_id <> ?", [env["_POISON_PROJECT_ID"]]).fetchall()
        by_topic = collections.defaultdict(collections.Counter)
        for event_id, topic_id in rows:
            if not gold[event_id].is_ack:
                by_topic[topic_id][gold[event_id].topic] += 1
        pure = sum(c.most_common(1)[0][1] for c in by_topic.values())
        total = sum(sum(c.values()) for c in by_topic.values())
        assert pure / total >= 0.8


def test_planted_transitions_are_recovered(env, gold):
    """The strong transitions planted in the data are the top way out of their source topic."""
    from turret.demo.dataset import PLANTED_TRANSITIONS

    with _warehouse(env) as con:
        rows = con.execute(
            "select e.event_id, t.topic_id from marts.fct_events t"
            " join raw.events e using (project_id, event_id)"
            " where t.field = 'prompt' and t.project_id <> ?", [env["_POISON_PROJECT_ID"]]
        ).fetchall()
        majority = collections.defaultdict(collections.Counter)
        for event_id, topic_id in rows:
            majority[topic_id][gold[event_id].topic] += 1
        topic_gold = {t: c.most_common(1)[0][0] for t, c in majority.items() if t != -1}
        moves = collections.defaultdict(collections.Counter)
        for from_id, to_id, n in con.execute(
            "select from_topic_id, to_topic_id, transitions from marts.agg_topic_transitions"
            " where field = 'prompt'"
        ).fetchall():
            a, b = topic_gold.get(from_id), topic_gold.get(to_id)
            if a and b and a != b:
                moves[a][b] += n
        for (source, target), _p in PLANTED_TRANSITIONS.items():
            assert moves[source], f"no transitions out of {source}"
            top, _ = moves[source].most_common(1)[0]
            assert top == target, f"{source}: top next topic {top}, planted {target}: {moves[source]}"


def test_acknowledgements_keep_the_conversation_topic(env, gold):
    """"thanks!" and "ok that worked" are conversational, not topics: they carry the session's topic."""
    with _warehouse(env) as con:
        rows = con.execute(
            "select event_id, session_id, journey_topic_id, message_kind from marts.fct_events"
            " where field = 'prompt' and project_id <> ?"
            " order by session_id, occurred_at, received_at, event_id", [env["_POISON_PROJECT_ID"]]
        ).fetchall()
        segments = con.execute(
            "select session_id, segment_index, topic_id, previous_topic_id, messages"
            " from marts.fct_session_segments"
            " where field = 'prompt' and project_id <> ? order by 1, 2", [env["_POISON_PROJECT_ID"]]
        ).fetchall()
    assert all(kind is not None for _, _, _, kind in rows), "every message went through the conversation step"
    acks = [(e, s, t, k) for e, s, t, k in rows if gold[e].is_ack]
    assert acks
    assert sum(k != "topical" for _, _, _, k in acks) >= 0.8 * len(acks)
    previous = {}
    inherited = []
    for event_id, session_id, topic, _kind in rows:
        if gold[event_id].is_ack and session_id in previous:
            inherited.append(topic == previous[session_id])
        previous[session_id] = topic
    assert sum(inherited) >= 0.9 * len(inherited)
    # Segments: consecutive segments of a session are on different topics, each with a topical message.
    assert segments
    assert all(prev != topic and messages >= 1 for _, _, topic, prev, messages in segments)


def test_revenue_is_credited_to_the_topics_users_upgrade_from(env, gold):
    """The demo's purchases follow answers about plans: the conversion marts credit most revenue to topics
    whose messages are mostly about plans (a few plan questions are in other languages and stay out of the
    topics, or carry the conversation's earlier topic), and count every click and purchase the demo sent."""
    from turret.demo.dataset import UPGRADE_TOPICS

    project = env["_POISON_PROJECT_ID"]
    with _warehouse(env) as con:
        per_topic = con.execute(
            "select topic_id, sum(clicks), sum(purchases), sum(revenue)"
            " from marts.agg_topic_conversions_daily where field = 'prompt' and project_id <> ?"
            " group by topic_id", [project]).fetchall()
        members = con.execute(
            "select event_id, topic_id from marts.fct_events where field = 'prompt' and project_id <> ?",
            [project]).fetchall()
    majority = collections.defaultdict(collections.Counter)
    for event_id, topic_id in members:
        majority[topic_id][gold[event_id].topic] += 1
    sent = collections.Counter(e.name for e in gold.values())
    revenue_sent = sum(e.metadata.get("revenue", 0) for e in gold.values())
    assert sum(p for _, _, p, _ in per_topic) == sent["purchase"] > 0
    assert sum(c for _, c, _, _ in per_topic) == sent["click"]
    assert sum(r for *_, r in per_topic) == pytest.approx(revenue_sent)
    on_plans = sum(r for t, _, _, r in per_topic if majority[t].most_common(1)[0][0] in UPGRADE_TOPICS)
    assert on_plans >= 0.75 * revenue_sent


def test_published_copy_is_readable(env):
    published = Path(env["TURRET_HOME"]) / "published" / "turret.duckdb"
    assert published.exists()
    with contextlib.closing(duckdb.connect(str(published), read_only=True)) as con:
        assert con.execute("select count(*) from marts.dim_topics").fetchone()[0] > 0


def test_bi_doc_queries_return_rows_on_the_demo_snapshot(env):
    """Every example query of docs/bi.md, as written, returns rows on the demo's published snapshot, and the
    DuckDB 1.x CLI from PyPI opens that snapshot at its stable path."""
    from tests.fixtures.bi import doc_queries, duckdb_cli, run_cli

    published = Path(env["TURRET_HOME"]) / "published" / "turret.duckdb"
    queries = doc_queries()
    assert len(queries) >= 9
    with contextlib.closing(duckdb.connect(str(published), read_only=True)) as con:
        empty = [q for q in queries if not con.execute(q).fetchall()]
    assert not empty, "docs/bi.md queries with no rows on the demo data:\n\n" + "\n\n".join(empty)
    cli = duckdb_cli()
    if cli is not None:
        done = run_cli(cli, published, queries[0])
        assert done.returncode == 0 and done.stdout.strip(), done.stderr


def test_dashboard_pages_on_the_demo_snapshot(env):
    """Every dashboard page answers on the demo's published marts, signed in, with the demo's topics on it
    (the browser tests in tests/turret/ui drive chromium over the fixture marts)."""
    import re

    from markupsafe import escape
    from turret.settings import Settings
    from turret.ui import create_app

    home = Path(env["TURRET_HOME"])
    app = create_app(Settings(home=home, ui_password="e2e"), {"WTF_CSRF_ENABLED": False})
    client = app.test_client()
    try:
        assert client.post("/login", data={"password": "e2e"}).status_code == 302
        published = home / "published" / "turret.duckdb"
        with contextlib.closing(duckdb.connect(str(published), read_only=True)) as con:
            top_id, top_label = con.execute(
                "select topic_id, label from marts.dim_topics where field = 'prompt' and topic_id <> -1 "
                "and not is_conversational and project_id <> ? order by events desc limit 1",
                [env["_POISON_PROJECT_ID"]]).fetchone()
            events = con.execute(
                "select count(*) from marts.fct_events where field = 'prompt' and project_id <> ?",
                [env["_POISON_PROJECT_ID"]]).fetchone()[0]
        overview = client.get("/").get_data(as_text=True)
        assert re.search(rf'id="kpi-events">{events:,}<', overview)
        for path in ("/", "/topics", f"/topics/{top_id}", "/journeys", "/journeys?scope=user", "/map",
                     "/settings/metadata", "/projects/", "/?enum.platform=web"):
            page = client.get(path)
            assert page.status_code == 200, (path, page.get_data(as_text=True)[:500])
            if path not in ("/projects/", "/settings/metadata"):
                body = page.get_data(as_text=True)
                assert top_label in body or str(escape(top_label)) in body, path
    finally:
        app.extensions["turret_marts"].close()
        app.extensions["turret_control_plane"].dispose()


def _snapshot(env) -> dict[str, tuple]:
    with _warehouse(env) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema in ('raw', 'pipeline', 'marts') and table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        snap = {}
        for schema, table in tables:
            cols = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " order by ordinal_position", [schema, table]).fetchall() if c not in AUDIT_COLUMNS]
            select = ", ".join(f'"{c}"' for c in cols)
            count, digest = con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) "
                f"from (select ({select})::varchar as r from {schema}.{table})"
            ).fetchone()
            snap[f"{schema}.{table}"] = (count, digest)
        return snap


def test_rerunning_the_same_hour_changes_nothing(env):
    before = _snapshot(env)
    run = _turret("pipeline", "run", "--logical-date", LOGICAL_DATE, "--quiet", "--all-steps", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    after = _snapshot(env)
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert not changed


def test_an_hour_with_nothing_new_stops_after_loading(env):
    published = Path(env["TURRET_HOME"]) / "published" / "turret.duckdb"
    before = os.path.realpath(published)
    run = _turret("pipeline", "run", "--logical-date", "2026-11-20T12:00:00+00:00", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "✓ load_landed" in run.stdout and "✓ has_new_events" in run.stdout
    assert "✓ check_raw" not in run.stdout and "✓ dbt_build." not in run.stdout
    assert "later steps were skipped" in run.stdout
    assert os.path.realpath(published) == before  # nothing published again


# What an attempt to report usage leaves in the logs of the tools a run uses, sent or failed: cosmos' Scarf
# gateway ("Unable to emit usage metrics to https://astronomer.gateway.scarf.sh/..."), dbt's Snowplow
# tracker, great-expectations' analytics, the Hugging Face hub's telemetry endpoint.
TELEMETRY_TRACES = re.compile(
    r"scarf\.sh|usage metrics|telemetry is enabled|snowplow|fishtownanalytics|send an event|posthog"
    r"|huggingface\.co/api/telemetry",
    re.IGNORECASE,
)


def test_no_tool_tries_to_report_usage(env):
    """Every log the runs so far wrote under TURRET_HOME (the demo's API log, the pipeline logs with each
    task's output, dbt's and Airflow's own logs), and what `turret pipeline run` printed."""
    home = Path(env["TURRET_HOME"])
    logs = [p for p in home.rglob("*") if p.is_file() and (p.suffix == ".log" or "logs" in p.parts)]
    assert any(p.name.startswith("pipeline-") for p in logs), "the pipeline log is where task output goes"
    traces = [
        f"{p.relative_to(home)}: {line.strip()[:200]}"
        for p in logs
        for line in p.read_text(errors="replace").splitlines()
        if TELEMETRY_TRACES.search(line)
    ]
    traces += [line for line in env["_FIRST_RUN_OUTPUT"].splitlines() if TELEMETRY_TRACES.search(line)]
    assert traces == []


def test_a_bad_row_is_quarantined_and_the_run_goes_on(env):
    """Runs last: it writes a row from the future straight into raw.events, behind the API's back. A
    row-level check fails on it: the row moves to quarantine, is counted, and the run publishes."""
    con = duckdb.connect(str(Path(env["TURRET_HOME"]) / "warehouse.duckdb"))
    con.execute(
        "insert into raw.events select project_id, 'evt_from_the_future', contract, event_type, name,"
        " session_id, user_id, session_id_generated, user_id_generated, timestamp '2199-01-01 00:00:00',"
        " received_at, metadata, segment, line_no + 100000 from raw.events limit 1"
    )
    con.close()
    # Written behind the loader's back, so no segment is newer than the snapshot: --all-steps.
    run = _turret("pipeline", "run", "--logical-date", "2026-11-20T11:00:00+00:00", "--all-steps", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "Rows quarantined this run: 1" in run.stdout
    with _warehouse(env) as con:
        left = con.execute(
            "select count(*) from raw.events where event_id = 'evt_from_the_future'").fetchall()
        marts = con.execute(
            "select stage, reason from marts.fct_quarantined_rows where event_id = 'evt_from_the_future'"
        ).fetchall()
    assert left == [(0,)]
    assert marts == [("data_check", "data check failed: occurred_at between 1970-01-01 and now")]

