"""The environment Turret runs Airflow in on one machine (embedded defaults: SQLite metadata DB).

Used by ``turret pipeline run``, ``make up`` and the tests, so all three see the same DAGs folder, metadata
database and pool. Anything already set in the caller's environment (``AIRFLOW_HOME``, ``AIRFLOW__*``) wins,
which is how docker-compose points Airflow at PostgreSQL instead, except the usage-reporting switches
(``turret.telemetry``), which are always off.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from turret.settings import Settings
from turret.telemetry import switch_off

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
WAREHOUSE_POOL = "turret_warehouse"
# Airflow's default Celery queue: tasks that never open the warehouse (the mapped embedding) go there.
DEFAULT_QUEUE = "default"

# Sized for a 2-core machine: a few task processes at a time, one of which may hold the warehouse.
_DEFAULTS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "180",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    # The scheduler's own health server would listen on 0.0.0.0:8974; on one machine the API server's
    # /api/v2/monitor/health reports the scheduler's heartbeat (docs/operations.md).
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def airflow_home(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("AIRFLOW_HOME") or Path(settings.home) / "airflow")


def airflow_environment(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """A complete environment for Airflow subprocesses over these settings."""
    env = dict(os.environ if environ is None else environ)
    home = airflow_home(settings, env)
    home.mkdir(parents=True, exist_ok=True)
    env.update(settings.as_env())
    env["AIRFLOW_HOME"] = str(home)
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    for key, value in _executor_env(settings).items():
        env.setdefault(key, value)
    for key, value in _DEFAULTS.items():
        env.setdefault(key, value)
    switch_off(env)
    env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", _persistent_secret(home / "jwt_secret"))
    env.setdefault("AIRFLOW__CORE__FERNET_KEY", "")
    # cosmos looks dbt up on PATH; it lives beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    # The project's packages must be importable by every Airflow process, wherever it was started from.
    extra = [str(REPO_ROOT / "plugins"), str(REPO_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(extra + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _executor_env(settings: Settings) -> dict[str, str]:
    """Airflow's executor options for ``TURRET_EXECUTOR``. With Celery the result backend is left to the
    provider's default, ``db+`` and the metadata database's URL: no second store to run."""
    if settings.executor != "celery":
        return {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": settings.celery_broker,
        # One task slot per worker process: `turret up` starts TURRET_CELERY_WORKERS of them.
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
    }


def _persistent_secret(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_bin() -> str:
    """The ``airflow`` executable of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def ensure_airflow_ready(
    settings: Settings, env: dict[str, str] | None = None, *, echo=print
) -> dict[str, str]:
    """Migrate the metadata database and create the warehouse pool, once (a stamp file remembers)."""
    env = env or airflow_environment(settings)
    home = Path(env["AIRFLOW_HOME"])
    stamp = home / ".turret-initialized"
    if not stamp.exists():
        echo(f"Preparing Airflow in {home} (first run only) ...")
        _run([airflow_bin(), "db", "migrate"], env)
        _run(
            [airflow_bin(), "pools", "set", WAREHOUSE_POOL, "1", "Tasks that write the Turret warehouse"],
            env,
        )
        stamp.write_text("ok\n")
    return env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd[1:])} failed (exit {proc.returncode}):\n{tail}")
