"""The Turret pipeline as an Airflow DAG: load → check → type → embed (planned, mapped over partitions,
merged) → topics → label → session steps and
conversation-aware journey topics → journeys → dbt → check marts → publish. Python tasks write only
``raw.*`` and ``pipeline.*``; the dbt task group alone builds and tests ``marts.*``. The hourly and the
re-fit DAG files are two calls of ``build_pipeline_dag``.

Every task body is one call into ``turret.tasks`` (imported inside the task, so parsing stays fast). Tasks
that write the DuckDB warehouse run in the one-slot ``turret_warehouse`` pool (and, under Celery, on the
``turret_warehouse`` queue); ``turret.warehouse.writer`` also serialises them with a file lock, so two runs
can never write at once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = Path(os.environ.get("TURRET_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project"))
WAREHOUSE_POOL = "turret_warehouse"
# Airflow's own pool, for tasks that do not write the warehouse (the mapped embedding).
EMBED_POOL = "default_pool"
# Under Celery, tasks that write the warehouse go to their own queue, served only by workers on the host
# that has the warehouse file (TURRET_WAREHOUSE_QUEUE, docs/scaling.md); the rest to Airflow's default
# queue, which any worker may serve. Other executors ignore queues.
WAREHOUSE_QUEUE = os.environ.get("TURRET_WAREHOUSE_QUEUE") or "turret_warehouse"
DEFAULT_QUEUE = "default"

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

DEFAULT_ARGS = {
    "owner": "turret",
    # Transient failures (a locked file, a slow LLM) are retried; `turret pipeline run` sets 0 to fail fast.
    "retries": int(os.environ.get("TURRET_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "pool": WAREHOUSE_POOL,
    "queue": WAREHOUSE_QUEUE,
    "execution_timeout": timedelta(minutes=50),
}


def _settings():
    from turret.settings import Settings

    return Settings.from_env()


def _call(step: str, **kwargs):
    """Run one step of ``turret.tasks``; a failed data check fails the task at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException
    from turret import tasks
    from turret.quality import DataCheckFailed

    try:
        return getattr(tasks, step)(_settings(), **kwargs)
    except DataCheckFailed as exc:
        raise AirflowFailException(str(exc)) from None


def dbt_task_group(group_id: str = "dbt_build"):
    """The dbt project rendered by astronomer-cosmos: one task per model (built and tested together)."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    settings = _settings()
    env = {"TURRET_WAREHOUSE": str(Path(settings.warehouse).resolve())}
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            install_dbt_deps=False,
            env_vars=env,
        ),
        profile_config=ProfileConfig(
            profile_name="turret",
            target_name="default",
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            # One task per model runs `dbt build` on it (model, then its tests); tests that span several
            # models (relationships) get their own task after all their parents.
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        operator_args={"pool": WAREHOUSE_POOL, "queue": WAREHOUSE_QUEUE, "install_deps": False},
        default_args=DEFAULT_ARGS,
    )


def build_pipeline_dag(dag_id: str, *, schedule: str | None, mode: str, doc_md: str, tags: list[str]):
    """Build one pipeline DAG. ``mode`` is the topic mode: ``auto`` (incremental) or ``refit``."""
    from airflow.sdk import Param, chain, dag, task

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["turret", *tags],
        doc_md=doc_md,
        params={
            "topic_mode": Param(mode, enum=["auto", "incremental", "refit"]),
            # An hour with no new events stops after loading; the re-fit always runs every step.
            "skip_when_idle": Param(mode != "refit", type="boolean"),
        },
    )
    def pipeline():
        @task
        def load_landed(data_interval_end=None) -> dict:
            return _call("load_landed", interval_end=data_interval_end)

        # Skips every later task (whatever its trigger rule) when nothing new reached the warehouse.
        @task.short_circuit
        def has_new_events(params=None) -> bool:
            return not params["skip_when_idle"] or bool(_call("has_new_events")["new"])

        @task
        def check_raw() -> dict:
            return _call("check_raw")

        @task
        def type_fields() -> dict:
            return _call("type_fields")

        # Returns the partitions themselves: Airflow maps over a task's whole return value only.
        @task
        def plan_embedding(data_interval_end=None, dag=None) -> list:
            from turret.tasks import run_id_for

            return _call("plan_embedding", run_id=run_id_for(dag.dag_id, data_interval_end))["partitions"]

        # Mapped over the plan's partitions, outside the warehouse pool: instances never open the warehouse
        # and run in parallel on as many workers as there are (docs/scaling.md).
        @task(pool=EMBED_POOL, queue=DEFAULT_QUEUE)
        def embed_partition(partition: dict) -> dict:
            return _call("embed_partition", partition=partition)

        # Runs when the plan had no partition too (the mapped task is then skipped, not failed).
        @task(trigger_rule="none_failed")
        def merge_embeddings(partitions: list) -> dict:
            return _call("merge_embeddings", partitions=list(partitions or []))

        @task
        def assign_topics(params=None, data_interval_end=None, dag=None) -> dict:
            from turret.tasks import run_id_for

            run_id = run_id_for(dag.dag_id, data_interval_end)
            return _call("assign_topics", run_id=run_id, mode=params["topic_mode"])

        @task
        def label_topics(data_interval_end=None, dag=None) -> dict:
            from turret.tasks import run_id_for

            return _call("label_topics", run_id=run_id_for(dag.dag_id, data_interval_end))

        @task
        def assign_journeys() -> dict:
            return _call("assign_journeys")

        @task
        def compute_journeys() -> dict:
            return _call("compute_journeys")

        @task
        def check_marts() -> dict:
            return _call("check_marts")

        @task
        def publish_marts() -> dict:
            return _call("publish_marts")

        planned = plan_embedding()
        embedded = embed_partition.expand(partition=planned)
        merged = merge_embeddings(planned)
        embedded >> merged
        chain(
            load_landed(),
            has_new_events(),
            check_raw(),
            type_fields(),
            planned,
        )
        chain(
            merged,
            assign_topics(),
            label_topics(),
            assign_journeys(),
            compute_journeys(),
            dbt_task_group(),
            check_marts(),
            publish_marts(),
        )

    return pipeline()
