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
    log = LOG.replace("airflow.sdk.exceptions.AirflowFailException: data checks", "duckdb.IOException: data checks")
    assert task_errors(log.splitlines())[0][1].startswith("IOException: data checks")
    assert task_errors([line for line in LOG.splitlines() if not line.startswith(("  ", "Traceback", "airflow."))]) == []
