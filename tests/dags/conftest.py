"""Airflow runs against a throw-away AIRFLOW_HOME (SQLite) set up before airflow is first imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="turret-dags-test-"))


def _configure() -> None:
    from turret.airflow_env import airflow_environment
    from turret.settings import Settings

    env = airflow_environment(Settings(home=_HOME), environ={"PATH": os.environ.get("PATH", "")})
    for key, value in env.items():
        if key.startswith(("AIRFLOW", "TURRET_", "DBT_")) or key in ("PYTHONPATH", "PATH"):
            os.environ[key] = value


_configure()


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata database (cosmos caches its dbt listing in Airflow Variables)."""
    from turret.airflow_env import ensure_airflow_ready
    from turret.settings import Settings

    return ensure_airflow_ready(Settings(home=_HOME), dict(os.environ), echo=lambda *_: None)


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from turret.airflow_env import DAGS_FOLDER

    return DagBag(dag_folder=str(DAGS_FOLDER))
