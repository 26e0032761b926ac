"""`turret pipeline run` failure reporting: the failing task and its message, read from Airflow's log."""

from __future__ import annotations

from turret.cli.pipeline import task_errors

LOG = """\
2026-12-01T20:15:19.533821Z [info     ] [DAG TEST] starting task_id=load_landed map_index=-1 [airflow]
2026-12-01T20:15:19.633821Z [info     ] [DAG TEST] end task task_id=load_landed map_index=-1 [airflow]
2026-12-01T20:15:19.733821Z [info     ] [DAG TEST] starting task_id=check_raw map_index=-1 [airflow]
2026-12-01T20:15:23.887506Z [error    ] Task failed with exception     [task] loc=task_runner.py:1639
Traceback (most recent call last):
  File "/x/plugins/turret_airflow/pipeline.py", line 50, in _call
    raise AirflowFailException(str(exc)) from None
airflow.sdk.exceptions.AirflowFailException: data checks 'raw': FAILED (11/12 checks passed)
  x occurred_at between 2000 and now [raw.events]: 1 of 1 rows fail
  full results: /home/quality/raw.json
2026-12-01T20:15:23.890830Z [info     ] ::group::Post Execute          [task] loc=task_runner.py:1640
"""


def test_the_failing_task_and_its_whole_message_are_found():
    assert task_errors(LOG.splitlines()) == [(
        "check_raw",
        "data checks 'raw': FAILED (11/12 checks passed)\n"
        "  x occurred_at between 2000 and now [raw.events]: 1 of 1 rows fail\n"
        "  full results: /home/quality/raw.json",
    )]


def test_other_exceptions_keep_their_type_and_a_log_without_traceback_has_none():
    log = LOG.replace("airflow.sdk.exceptions.AirflowFailException: data checks",
                      "duckdb.IOException: data checks")
    assert task_errors(log.splitlines())[0][1].startswith("IOException: data checks")
    assert task_errors([line for line in LOG.splitlines()
                        if not line.startswith(("  ", "Traceback", "airflow."))]) == []


def test_a_segment_its_writer_does_not_seal_is_reported_before_the_run(tmp_path, monkeypatch):
    """A live writer that does not answer the seal request keeps its segment open: the run says so."""
    import os
    from datetime import UTC, datetime, timedelta

    from click.testing import CliRunner
    from turret import airflow_env, landing
    from turret.cli.pipeline import pipeline

    started = datetime.now(UTC) - timedelta(minutes=5)
    folder = landing.hour_dir(tmp_path / "landing", started)
    folder.mkdir(parents=True)
    # Named after this (live) process, so it is no orphan; nothing here answers the seal request.
    name = f"testhost-{os.getpid()}-{started.strftime('%Y%m%dT%H%M%S%fZ')}-abcd1234{landing.OPEN_SUFFIX}"
    (folder / name).write_text("")

    class Stop(Exception):
        pass

    def stop_before_airflow(*_a, **_k):
        raise Stop

    monkeypatch.setenv("TURRET_HOME", str(tmp_path))
    monkeypatch.setattr(airflow_env, "ensure_airflow_ready", stop_before_airflow)
    result = CliRunner().invoke(pipeline, ["run", "--seal-timeout", "0.2"])
    assert isinstance(result.exception, Stop)
    assert "1 landing segment(s) opened before this run are still open" in result.output
    assert (folder / name).exists()
