"""The whole product on one machine: start, inspect and stop its long-running processes.

``turret up`` (``make up``) starts six processes (with ``TURRET_EXECUTOR=celery`` also a private
``redis-server`` broker and ``TURRET_CELERY_WORKERS`` ``airflow celery worker`` processes), each in its own
process group (its own session), each with its log in ``<TURRET_HOME>/logs/<name>.log`` and its pid in
``<TURRET_HOME>/run/<name>.pid``:

- ``ingest-api``: ``turret serve`` (gunicorn; SIGTERM seals its landing segments);
- ``dashboard``: ``turret ui`` (gunicorn; reads the published marts only, docs/dashboard.md);
- ``airflow-api-server``, ``airflow-scheduler`` (runs the LocalExecutor's task processes),
  ``airflow-dag-processor``, ``airflow-triggerer``: the Airflow 3 components, in the environment of
  :func:`turret.airflow_env.airflow_environment`.

``turret down`` signals each process group, waits, SIGKILLs what is left, then looks (psutil) for any process
still marked as belonging to this ``TURRET_HOME`` (every service and every child inherits
``TURRET_SERVICES_HOME``), so nothing is orphaned, and finally seals landing segments left open.

Nothing here imports Airflow: the components are separate programs. One module per concern:
``lifecycle`` (start, stop, describe), ``processes`` (finding and signalling them), ``state`` (pid files and
the record of the ports), ``http_api`` (health checks and Airflow's REST API), ``errors``.
"""

from turret.services.errors import ServiceError
from turret.services.http_api import (
    ADMIN_USER,
    AIRFLOW_HEALTH_PATH,
    HOURLY_DAG,
    PASSWORDS_FILE,
    admin_password,
    airflow_health,
    airflow_token,
    api_health,
    dag_run_state,
    dashboard_health,
    ensure_unpaused,
    password_file,
    task_instances,
    task_return_value,
    trigger_dag_run,
    wait_dag_run,
    wait_for_dag,
)
from turret.services.lifecycle import (
    DEFAULT_AIRFLOW_PORT,
    DEFAULT_API_PORT,
    DEFAULT_STOP_SECONDS,
    DEFAULT_UI_PORT,
    DEFAULT_WAIT_SECONDS,
    Component,
    StopReport,
    absolute_settings,
    broker_health,
    celery_components,
    components,
    describe,
    format_uptime,
    port_free,
    redis_server_bin,
    service_environment,
    start,
    stop,
    turret_bin,
)
from turret.services.processes import MARKER_ENV, leftover_processes
from turret.services.state import (
    COMPONENT_NAMES,
    REDIS,
    ComponentState,
    Layout,
    celery_worker_name,
    component_names,
    read_endpoints,
    read_states,
)

__all__ = [
    "ADMIN_USER", "AIRFLOW_HEALTH_PATH", "COMPONENT_NAMES", "DEFAULT_AIRFLOW_PORT", "DEFAULT_API_PORT",
    "DEFAULT_STOP_SECONDS", "DEFAULT_UI_PORT", "DEFAULT_WAIT_SECONDS", "HOURLY_DAG", "MARKER_ENV",
    "PASSWORDS_FILE", "REDIS", "Component", "ComponentState", "Layout", "ServiceError", "StopReport",
    "absolute_settings", "admin_password", "airflow_health", "airflow_token", "api_health", "broker_health",
    "celery_components", "celery_worker_name", "component_names", "components", "dag_run_state",
    "dashboard_health", "describe", "ensure_unpaused",
    "format_uptime", "leftover_processes", "password_file", "port_free", "read_endpoints", "read_states",
    "redis_server_bin", "service_environment", "start", "stop", "task_instances", "task_return_value",
    "trigger_dag_run", "turret_bin", "wait_dag_run", "wait_for_dag",
]
