"""The demo runner against the real control plane, the real ingest API (gunicorn) and the real loader."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from turret.demo import runner
from turret.demo.dataset import generate


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "turret.demo", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _landed(settings) -> list[dict]:
    from turret import landing

    records = []
    for path in landing.iter_sealed_segments(settings.landing_root):
        for line in landing.read_segment(path):
            assert line.record is not None, line.error
            records.append(line.record)
    return records


def test_select_events_keeps_whole_sessions_first():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    chosen = runner.select_events(7, None, 230, now)
    assert len(chosen) == 230
    sessions = Counter(e.session_id for e in chosen)
    full = Counter(e.session_id for e in runner.select_events(7, None, None, now))
    # All sessions but the last one are complete, their outcomes included.
    assert sum(1 for sid, n in sessions.items() if n != full[sid]) <= 1
    assert len(sessions) >= 20
    assert {"user_prompt", "click"} <= {e.name for e in chosen}
    assert len(full) == len({e.session_id for e in generate(seed=7, now=now)})
    # More events than 450 sessions give: more sessions are generated.
    assert len(runner.select_events(7, None, 6000, now)) == 6000
    assert len({e.session_id for e in runner.select_events(7, 30, None, now)}) == 30


def test_demo_posts_through_the_api_and_reruns_without_duplicates(settings):
    first = _demo("--events", "230", "--skip-pipeline")
    assert first.returncode == 0, first.stdout + first.stderr
    for step in range(1, 5):
        assert f"[{step}/6]" in first.stdout
    assert "created project" in first.stdout
    assert "all 230 events acknowledged" in first.stdout
    assert "0 open" in first.stdout  # SIGTERM sealed every segment

    landed = _landed(settings)
    expected = {e.event_id: e for e in runner.select_events(7, None, 230, _today())}
    assert {r["event_id"] for r in landed} == set(expected)
    for r in landed:
        e = expected[r["event_id"]]
        assert (r["session_id"], r["user_id"], r["metadata"]) == (e.session_id, e.user_id, e.metadata)
        assert not r["session_id_generated"] and not r["user_id_generated"]
        assert "topic" not in r["metadata"] and "is_ack" not in r["metadata"]

    second = _demo("--events", "230", "--skip-pipeline")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "reusing project" in second.stdout and "(rotated)" in second.stdout
    landed = _landed(settings)
    assert len(landed) == 460 and len({r["event_id"] for r in landed}) == 230

    # The loader keeps one row per (project, event_id): the re-run duplicated nothing.
    from turret import loader, warehouse

    con = warehouse.connect(settings)
    try:
        stats = loader.load_landing(con, settings.landing_root)
        counts = con.execute("select count(*), count(distinct event_id) from raw.events").fetchone()
        assert counts == (230, 230)
        assert stats.rows_duplicate == 230
    finally:
        con.close()


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_missing_pipeline_command_stops_with_a_clear_message(settings, monkeypatch):
    from turret import cli

    monkeypatch.setattr(cli, "COMMANDS", {k: v for k, v in cli.COMMANDS.items() if k != "pipeline"})
    result = CliRunner().invoke(runner.main, ["--events", "50"])
    assert result.exit_code == 1, result.output
    assert "[4/6]" in result.output and "[5/6]" in result.output and "[6/6]" not in result.output
    assert "`turret pipeline run` is not available" in result.output
    assert "Traceback" not in result.output


def test_wrong_key_is_reported_without_a_traceback(settings, tmp_path):
    server = runner.IngestServer(settings, {**os.environ, **settings.as_env()}, "127.0.0.1",
                                 runner.free_port(), tmp_path / "ingest.log")
    server.start()
    try:
        with pytest.raises(runner.DemoError, match="answered 401"):
            runner.post_events(server.url, "trt_not-a-real-key", generate(seed=1, n_sessions=2)[:5])
    finally:
        assert server.stop() is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "0"], "--events"),
        (["--sessions", "-3"], "--sessions"),
        (["--batch-size", "501"], "--batch-size"),
        (["--port", "x"], "--port"),
    ],
)
def test_bad_options_are_rejected(settings, args, message):
    result = CliRunner().invoke(runner.main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_demo_ends_with_the_dashboard_url_and_how_to_sign_in(settings, capsys):
    from turret.demo.runner import _report_dashboard

    _report_dashboard(settings)
    first = capsys.readouterr().out
    password = (settings.home / "ui_password").read_text().strip()
    assert "Dashboard: http://127.0.0.1:8050" in first and password in first
    _report_dashboard(settings)  # shown once: later runs say where it is
    second = capsys.readouterr().out
    assert password not in second and str(settings.home / "ui_password") in second
