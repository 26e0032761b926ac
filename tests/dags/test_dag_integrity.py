"""The DAG files import cleanly and are wired the way docs/architecture.md says."""

from __future__ import annotations

from pathlib import Path

import pytest
from turret.airflow_env import DAGS_FOLDER, WAREHOUSE_POOL
from turret.tasks import HOURLY_TASKS
from turret_airflow.pipeline import DEFAULT_QUEUE, EMBED_POOL, WAREHOUSE_QUEUE

pytestmark = pytest.mark.slow

EXPECTED = {"turret_hourly", "turret_refit"}


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_its_dag(dagbag):
    stems = {p.stem for p in Path(DAGS_FOLDER).glob("*.py") if not p.name.startswith("_")}
    assert stems == EXPECTED
    assert EXPECTED <= set(dagbag.dag_ids)
    for dag_id in EXPECTED:
        assert Path(dagbag.dags[dag_id].fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_settings(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "turret" in dag.tags
    assert dag.doc_md and "airflow" in dag.doc_md.lower()
    assert dag.start_date is not None and dag.start_date.year == 2026
    for t in dag.tasks:
        assert t.retries >= 1, t.task_id
        # Only the mapped embedding runs outside the one-slot pool: it never opens the warehouse.
        assert t.pool == (EMBED_POOL if t.task_id == "embed_partition" else WAREHOUSE_POOL), t.task_id
        # Under Celery, the same split by queue: warehouse writers only where the warehouse file is.
        assert t.queue == (DEFAULT_QUEUE if t.task_id == "embed_partition" else WAREHOUSE_QUEUE), t.task_id


def test_hourly_schedule(dagbag):
    assert dagbag.dags["turret_hourly"].schedule == "@hourly"
    assert dagbag.dags["turret_refit"].schedule == "@daily"
    assert dagbag.dags["turret_refit"].params["topic_mode"] == "refit"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tasks_run_in_pipeline_order(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    order = [t.task_id for t in dag.topological_sort()] if hasattr(dag, "topological_sort") else None
    if order is None:
        order = _toposort(dag)
    plain = [t for t in order if not t.startswith("dbt_build.")]
    expected = [t for t in HOURLY_TASKS if t != "dbt_build"]
    assert plain == expected
    dbt_tasks = [t for t in order if t.startswith("dbt_build.")]
    assert dbt_tasks, "dbt models are rendered as tasks by cosmos"
    first_dbt = order.index(dbt_tasks[0])
    last_dbt = order.index(dbt_tasks[-1])
    # Python writes pipeline.* before dbt; dbt alone builds marts.*, checked after it.
    assert order.index("compute_journeys") < first_dbt and last_dbt < order.index("check_marts")


def _toposort(dag) -> list[str]:
    seen: list[str] = []
    pending = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    while pending:
        ready = sorted(t for t, ups in pending.items() if not ups - set(seen))
        assert ready, "cycle"
        # Keep a stable, dependency-respecting order.
        seen.append(ready[0])
        pending.pop(ready[0])
    return seen
