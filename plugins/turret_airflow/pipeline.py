"""The Turret pipeline as an Airflow DAG: load → check → type → embed → topics → label → dbt → journeys →
check marts → publish. The hourly and the re-fit DAG files are two calls of ``build_pipeline_dag``.

Every task body is one call into ``turret.tasks`` (imported inside the task, so parsing stays fast). Tasks
that write the DuckDB warehouse run in the one-slot ``turret_warehouse`` pool; ``turret.warehouse.writer``
also serialises them with a file lock, so two runs can never write at once.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import Param, chain, dag, task

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = Path(os.environ.get("TURRET_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project"))
WAREHOUSE_POOL = "turret_warehouse"
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)

DEFAULT_ARGS = {
    "owner": "turret",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "pool": WAREHOUSE_POOL,
    "execution_timeout": timedelta(minutes=50),
}


def _settings():
    from turret.settings import Settings

    return Settings.from_env()


def dbt_task_group(group_id: str = "dbt_build"):
    """The dbt project rendered by astronomer-cosmos: one task per model, its tests right after it."""
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
            test_behavior=TestBehavior.AFTER_EACH,
            invocation_mode=InvocationMode.DBT_RUNNER,
            env_vars=env,
        ),
        operator_args={"pool": WAREHOUSE_POOL, "install_deps": False},
        default_args=DEFAULT_ARGS,
    )


def build_pipeline_dag(dag_id: str, *, schedule: str | None, mode: str, doc_md: str, tags: list[str]):
    """Build one pipeline DAG. ``mode`` is the topic mode: ``auto`` (incremental) or ``refit``."""

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["turret", *tags],
        doc_md=doc_md,
        params={"topic_mode": Param(mode, enum=["auto", "incremental", "refit"])},
    )
    def pipeline():
        @task
        def load_landed(data_interval_end=None) -> dict:
            from turret import tasks

            return tasks.load_landed(_settings(), interval_end=data_interval_end)

        @task
        def check_raw() -> dict:
            from turret import tasks

            return tasks.check_raw(_settings())

        @task
        def type_fields() -> dict:
            from turret import tasks

            return tasks.type_fields(_settings())

        @task
        def embed_texts() -> dict:
            from turret import tasks

            return tasks.embed_texts(_settings())

        @task
        def assign_topics(params=None, data_interval_end=None, dag=None) -> dict:
            from turret import tasks

            run_id = tasks.run_id_for(dag.dag_id, data_interval_end)
            return tasks.assign_topics(_settings(), run_id=run_id, mode=params["topic_mode"])

        @task
        def label_topics(data_interval_end=None, dag=None) -> dict:
            from turret import tasks

            return tasks.label_topics(_settings(), run_id=tasks.run_id_for(dag.dag_id, data_interval_end))

        @task
        def compute_journeys() -> dict:
            from turret import tasks

            return tasks.compute_journeys(_settings())

        @task
        def check_marts() -> dict:
            from turret import tasks

            return tasks.check_marts(_settings())

        @task
        def publish_marts() -> dict:
            from turret import tasks

            return tasks.publish_marts(_settings())

        chain(
            load_landed(),
            check_raw(),
            type_fields(),
            embed_texts(),
            assign_topics(),
            label_topics(),
            dbt_task_group(),
            compute_journeys(),
            check_marts(),
            publish_marts(),
        )

    return pipeline()
