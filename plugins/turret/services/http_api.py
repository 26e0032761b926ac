"""Talking to the running services over HTTP: health of the ingest API and Airflow, and Airflow's REST API
as the SimpleAuthManager's admin (token, unpausing the hourly DAG)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from turret import airflow_env
from turret.services.errors import ServiceError
from turret.settings import Settings

ADMIN_USER = "admin"
HOURLY_DAG = "turret_hourly"
AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def http_get(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """(status, body) of a GET; (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own local URLs
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def http_json(method: str, url: str, body: dict | None = None, token: str | None = None,
              timeout: float = 10.0) -> tuple[int | None, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own local URLs
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def airflow_health(airflow_url: str) -> tuple[bool, str]:
    """Whether Airflow's API answers, and a one-line summary of its components' health."""
    status, body = http_get(airflow_url + AIRFLOW_HEALTH_PATH)
    if status != 200:
        return False, f"no answer ({body})" if status is None else f"HTTP {status}"
    try:
        data = json.loads(body)
        parts = [f"{k}={v.get('status')}" for k, v in data.items() if isinstance(v, dict)]
    except (ValueError, AttributeError):
        return True, "answers"
    return True, ", ".join(parts) or "answers"


def api_health(api_url: str) -> tuple[bool, str]:
    status, body = http_get(api_url + "/healthz")
    if status == 200:
        return True, "healthy"
    return False, f"no answer ({body})" if status is None else f"HTTP {status}: {body.strip()[:200]}"


def dashboard_health(ui_url: str) -> tuple[bool, str]:
    """Whether the dashboard (`turret ui`) answers its unauthenticated /healthz."""
    status, body = http_get(ui_url + "/healthz")
    if status == 200:
        return True, "healthy"
    return False, f"no answer ({body})" if status is None else f"HTTP {status}"


def admin_password(settings: Settings) -> str | None:
    """The password SimpleAuthManager generated for the admin user (None until the API server first ran)."""
    path = password_file(settings)
    try:
        return json.loads(path.read_text()).get(ADMIN_USER)
    except (OSError, ValueError, AttributeError):
        return None


def password_file(settings: Settings) -> Path:
    env = airflow_env.airflow_environment(settings)
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured) if configured else Path(env["AIRFLOW_HOME"]) / PASSWORDS_FILE


def airflow_token(settings: Settings, airflow_url: str) -> str:
    """A JWT for the admin user from the API server's SimpleAuthManager (``POST /auth/token``)."""
    password = admin_password(settings)
    if not password:
        raise ServiceError(f"no admin password yet in {password_file(settings)}")
    status, body = http_json("POST", airflow_url + "/auth/token",
                             {"username": ADMIN_USER, "password": password})
    if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
        raise ServiceError(f"Airflow refused the admin login (HTTP {status}): {body}")
    return body["access_token"]


def ensure_unpaused(settings: Settings, airflow_url: str, dag_id: str = HOURLY_DAG) -> str:
    """Unpause ``dag_id`` if Airflow knows it and it is paused (a DAG first registered by ``dags test``
    is created paused); returns what was found, for the user."""
    token = airflow_token(settings, airflow_url)
    status, body = http_json("GET", f"{airflow_url}/api/v2/dags/{dag_id}", token=token)
    if status == 404:
        return "not parsed yet; it will be created unpaused"
    if status != 200 or not isinstance(body, dict):
        raise ServiceError(f"cannot read DAG {dag_id} (HTTP {status}): {body}")
    if body.get("is_paused"):
        status, body = http_json("PATCH", f"{airflow_url}/api/v2/dags/{dag_id}", {"is_paused": False},
                                 token=token)
        if status != 200:
            raise ServiceError(f"cannot unpause DAG {dag_id} (HTTP {status}): {body}")
        return "was paused; unpaused"
    return "scheduled (not paused)"


def wait_for_dag(settings: Settings, airflow_url: str, dag_id: str = HOURLY_DAG,
                 timeout: float = 180.0) -> None:
    """Wait until the DAG processor has registered ``dag_id`` (HTTP 200 for the DAG)."""
    import time

    deadline = time.monotonic() + timeout
    token = airflow_token(settings, airflow_url)
    while True:
        status, body = http_json("GET", f"{airflow_url}/api/v2/dags/{dag_id}", token=token)
        if status == 200:
            return
        if status not in (404, None) or time.monotonic() > deadline:
            raise ServiceError(f"DAG {dag_id} is not registered (HTTP {status}): {body}")
        time.sleep(2)


def trigger_dag_run(settings: Settings, airflow_url: str, dag_id: str = HOURLY_DAG, *,
                    logical_date: str | None = None, conf: dict | None = None) -> str:
    """Queue a run of ``dag_id`` for the scheduler (and its executor); returns the run id."""
    token = airflow_token(settings, airflow_url)
    status, body = http_json("POST", f"{airflow_url}/api/v2/dags/{dag_id}/dagRuns",
                             {"logical_date": logical_date, "conf": conf or {}}, token=token)
    if status not in (200, 201) or not isinstance(body, dict) or "dag_run_id" not in body:
        raise ServiceError(f"cannot trigger DAG {dag_id} (HTTP {status}): {body}")
    return body["dag_run_id"]


def dag_run_state(settings: Settings, airflow_url: str, dag_id: str, run_id: str) -> str:
    token = airflow_token(settings, airflow_url)
    status, body = http_json("GET", f"{airflow_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token)
    if status != 200 or not isinstance(body, dict):
        raise ServiceError(f"cannot read run {run_id} of {dag_id} (HTTP {status}): {body}")
    return str(body.get("state"))


def wait_dag_run(settings: Settings, airflow_url: str, dag_id: str, run_id: str, *,
                 timeout: float = 1800.0, poll: float = 3.0) -> str:
    """Wait until the run is ``success`` or ``failed`` (returned), or raise after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        state = dag_run_state(settings, airflow_url, dag_id, run_id)
        if state in ("success", "failed"):
            return state
        if time.monotonic() > deadline:
            raise ServiceError(f"run {run_id} of {dag_id} still {state} after {timeout:.0f} s")
        time.sleep(poll)


def task_instances(settings: Settings, airflow_url: str, dag_id: str, run_id: str) -> list[dict]:
    """Every task instance of a run (mapped instances included), as Airflow's REST API gives them."""
    token = airflow_token(settings, airflow_url)
    found: list[dict] = []
    while True:
        url = (f"{airflow_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
               f"?limit=100&offset={len(found)}")
        status, body = http_json("GET", url, token=token)
        if status != 200 or not isinstance(body, dict):
            raise ServiceError(f"cannot list the tasks of run {run_id} (HTTP {status}): {body}")
        page = body.get("task_instances") or []
        found += page
        if not page or len(found) >= int(body.get("total_entries") or 0):
            return found


def task_return_value(settings: Settings, airflow_url: str, dag_id: str, run_id: str, task_id: str) -> object:
    """What a task of a run returned (its ``return_value`` XCom), or None when it returned nothing."""
    token = airflow_token(settings, airflow_url)
    run = urllib.parse.quote(run_id, safe="")
    url = f"{airflow_url}/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/return_value"
    status, body = http_json("GET", url, token=token)
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        raise ServiceError(f"cannot read what {task_id} of run {run_id} returned (HTTP {status}): {body}")
    value = body.get("value")
    if isinstance(value, str):  # stored as serialized JSON by some XCom backends
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return value
