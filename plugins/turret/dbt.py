"""Running Turret's dbt project outside Airflow (tests, ``turret pipeline``, local debugging).

In the hourly DAG, astronomer-cosmos runs the same project with ``profiles_yml_filepath=profiles_path()``
and the environment from ``dbt_env(settings)``. Here ``run_dbt`` calls dbt in-process with ``dbtRunner``.
dbt reads ``env_var('TURRET_WAREHOUSE')`` from the process environment, so ``run_dbt`` sets it (and the
target/log paths, kept under ``<home>/dbt`` so the source tree stays clean) for the duration of the call.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turret.telemetry import TELEMETRY_OFF

if TYPE_CHECKING:
    from turret.settings import Settings

# The project ships next to the package in the repository: <root>/dbt_project.
_DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
# Overridable for installs that put the project elsewhere (not a Settings field yet: see the report).
PROJECT_DIR_ENV = "TURRET_DBT_PROJECT_DIR"

# dbtRunner is not safe to run twice at once in one process (it mutates global flags and os.environ here).
_RUN_LOCK = threading.Lock()


class DbtFailed(RuntimeError):
    """A dbt command did not succeed; the message lists the failing nodes."""


@dataclass
class DbtResult:
    """What a dbt invocation did: success, and one line per node that did not pass."""

    success: bool
    args: list[str]
    failures: list[str] = field(default_factory=list)
    result: Any = None

    def summary(self) -> str:
        head = f"dbt {' '.join(self.args)}: {'ok' if self.success else 'FAILED'}"
        return "\n".join([head, *(f"  - {line}" for line in self.failures)])


def project_dir() -> Path:
    """Where dbt_project.yml lives."""
    return Path(os.environ.get(PROJECT_DIR_ENV) or _DEFAULT_PROJECT_DIR)


def profiles_dir() -> Path:
    """The folder holding profiles.yml (the project folder itself)."""
    return project_dir()


def profiles_path() -> Path:
    """profiles.yml, for cosmos' ``ProfileConfig(profiles_yml_filepath=...)``."""
    return profiles_dir() / "profiles.yml"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment variables dbt needs: the absolute warehouse path, and target/log paths under home."""
    work = Path(settings.home).resolve() / "dbt"
    return {
        "TURRET_WAREHOUSE": str(Path(settings.warehouse).resolve()),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        **TELEMETRY_OFF,
    }


@contextlib.contextmanager
def _patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def run_dbt(
    args: Sequence[str],
    settings: Settings,
    *,
    dbt_vars: Mapping[str, Any] | None = None,
    raise_on_failure: bool = True,
) -> DbtResult:
    """Run ``dbt <args>`` on the warehouse of ``settings`` in this process.

    ``dbt_vars`` become ``--vars`` (e.g. ``{"as_of": "2025-06-15 12:00:00"}``). The warehouse must not be
    open for writing by this process: DuckDB lets one writer hold the file.
    Raises ``DbtFailed`` (unless ``raise_on_failure`` is false) with the failing models/tests listed.
    """
    from dbt.cli.main import dbtRunner

    env = dbt_env(settings)
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True, exist_ok=True)
    full = [
        *args,
        "--project-dir",
        str(project_dir()),
        "--profiles-dir",
        str(profiles_dir()),
    ]
    if dbt_vars:
        full += ["--vars", json.dumps(dict(dbt_vars))]
    with _RUN_LOCK, _patched_environ(env):
        try:
            outcome = dbtRunner().invoke(full)
        finally:
            _release_duckdb()
    result = DbtResult(success=bool(outcome.success), args=list(args), result=outcome.result)
    result.failures = _failures(outcome)
    if not result.success and raise_on_failure:
        raise DbtFailed(result.summary())
    return result


def build_marts(settings: Settings, *, as_of: datetime | None = None) -> dict[str, Any]:
    """``dbt build`` of the whole project (models, then their tests), for a run outside Airflow.

    ``as_of`` is the reference time of the quota periods (the run's data interval end); None means now.
    Returns a small summary; raises ``DbtFailed`` listing the failing nodes.
    """
    dbt_vars = {"as_of": as_of.replace(tzinfo=None).isoformat(sep=" ")} if as_of else None
    result = run_dbt(["build"], settings, dbt_vars=dbt_vars)
    statuses: dict[str, int] = {}
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        statuses[status] = statuses.get(status, 0) + 1
    # e.g. {"success": True, "nodes": 76, "statuses": {"success": 24, "pass": 52}}
    return {"success": result.success, "nodes": sum(statuses.values()), "statuses": statuses}


def _release_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open in this process after a run.

    Without this the warehouse stays held by dbt: this process cannot reopen it read-only ("different
    configuration") and no other process can open it at all until this one exits.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing of ours to release
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        except Exception:  # closing is best effort; dropping the reference below releases it too
            pass
    DuckDBConnectionManager.close_all_connections()


def _failures(outcome: Any) -> list[str]:
    """One readable line per node that errored, failed or warned-as-error; the exception if dbt crashed."""
    lines = []
    if outcome.exception is not None:
        lines.append(f"{type(outcome.exception).__name__}: {outcome.exception}")
    for node_result in getattr(outcome.result, "results", None) or []:
        status = str(getattr(node_result, "status", ""))
        if status.lower() in ("error", "fail", "runtime error"):
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", "?")
            # dbt's message opens with "Runtime Error in model ..."; the database's own words come after.
            message = " ".join((getattr(node_result, "message", "") or "").split())
            lines.append(f"{name}: {status}: {message[:300]}")
    return lines
