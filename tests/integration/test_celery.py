"""The hourly DAG under Celery with 2 workers builds the same marts as under the LocalExecutor.

One set of events, posted once through the real ingest API (`python -m turret.demo --skip-pipeline`), is
copied into two homes (the sealed landing segments and the control plane). Each home runs `turret up`, with
the LocalExecutor in one and with ``TURRET_EXECUTOR=celery`` and 2 workers (a private redis-server and two
`airflow celery worker` processes) in the other, and the same hourly run is triggered through Airflow's REST
API and waited for. Every ``marts.*`` table must then hold the same rows, audit timestamps aside. Under Celery
the tasks of the one-slot ``turret_warehouse`` pool must never overlap, and both workers must have run tasks.

Marked ``celery`` (left out of `make test`, minutes on 2 cores): ``.venv/bin/python -m pytest -m celery``.
It needs Debian's redis-server (`make system-deps`) and the Celery provider (`make install`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from turret import services
from turret.settings import Settings

pytestmark = [pytest.mark.celery, pytest.mark.slow, pytest.mark.timeout(3600)]

SESSIONS = 60  # ~450 events: every task runs, in minutes
SEED = 7
LOGICAL_DATE = "2026-11-20T10:00:00+00:00"
# Small partitions, so the mapped embedding has several instances for two workers (the same in both homes,
# so the vectors are computed on the same batches).
PARTITION_TEXTS = "40"
# Columns that record when something ran, not what it computed (as in tests/e2e/test_pipeline_e2e.py).
AUDIT_COLUMNS = {"loaded_at", "started_at", "finished_at", "updated_at", "created_at", "quarantined_at",
                 "checked_at", "published_at", "stats"}


def _missing() -> str | None:
    if services.redis_server_bin() is None:
        return "redis-server is not installed (make system-deps installs Debian's)"
    if importlib.util.find_spec("airflow.providers.celery") is None:
        return "the Celery provider is not installed (make install)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _turret(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "turret"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW", "OPENAI_"))}
    env.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TURRET_EMBED_PARTITION_TEXTS=PARTITION_TEXTS)
    return env


@pytest.fixture(scope="module")
def posted(tmp_path_factory) -> Path:
    """A home with the demo's events sealed in its landing store and its project in the control plane."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("posted")
    done = subprocess.run(
        [sys.executable, "-m", "turret.demo", "--sessions", str(SESSIONS), "--seed", str(SEED),
         "--skip-pipeline"],
        env=_base_env(home), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((home / "landing").rglob("*.jsonl")) and not list((home / "landing").rglob("*.open"))
    return home


def _copy_events(source: Path, home: Path) -> None:
    shutil.copytree(source / "landing", home / "landing")
    shutil.copy2(source / "control.db", home / "control.db")


def _run_under(executor: str, source: Path, home: Path) -> dict:
    """`turret up` with ``executor`` in ``home`` (events copied from ``source``), one triggered hourly run,
    `turret down`. Returns the run's state, its task instances, seconds, and the workers' logs."""
    # This process talks to the services too (tokens, runs): it must see the stack's Airflow home, as the
    # `turret up` it starts does, not one another test module set up in os.environ (tests/dags/conftest.py).
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("TURRET_", "AIRFLOW"))]:
            mp.delenv(key)
        return _run_in_clean_env(executor, source, home)


def _run_in_clean_env(executor: str, source: Path, home: Path) -> dict:
    _copy_events(source, home)
    env = _base_env(home)
    env.update(TURRET_EXECUTOR=executor, TURRET_CELERY_WORKERS="2", TURRET_REDIS_PORT=str(free_port()),
               # Only the run this test triggers: no scheduled hourly run beside it.
               AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False")
    airflow_port = free_port()
    airflow_url = f"http://127.0.0.1:{airflow_port}"
    settings = Settings(home=home)
    try:
        up = _turret(env, "up", "--api-port", str(free_port()), "--airflow-port", str(airflow_port),
                     "--ui-port", str(free_port()), "--timeout", "400", timeout=500)
        assert up.returncode == 0, up.stdout + up.stderr
        names = services.component_names(services.Layout(home))
        if executor == "celery":
            assert {"redis", "celery-worker-1", "celery-worker-2"} <= set(names), names
        else:
            assert "redis" not in names and not any(n.startswith("celery-") for n in names), names
        services.wait_for_dag(settings, airflow_url, timeout=300)
        services.ensure_unpaused(settings, airflow_url)
        started = time.monotonic()
        run_id = services.trigger_dag_run(settings, airflow_url, logical_date=LOGICAL_DATE)
        state = services.wait_dag_run(settings, airflow_url, services.HOURLY_DAG, run_id, timeout=2400)
        seconds = time.monotonic() - started
        tis = services.task_instances(settings, airflow_url, services.HOURLY_DAG, run_id)
        # What `turret pipeline run --through-scheduler` reads for its "Rows quarantined" line.
        loaded = services.task_return_value(settings, airflow_url, services.HOURLY_DAG, run_id, "load_landed")
    finally:
        down = _turret(env, "down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    logs = {p.stem: p.read_text(errors="replace") for p in (home / "logs").glob("celery-worker-*.log")}
    return {"state": state, "tis": tis, "seconds": seconds, "worker_logs": logs, "loaded": loaded}


@pytest.fixture(scope="module")
def runs(posted, tmp_path_factory) -> dict[str, dict]:
    out = {}
    # Celery first: its failures show before the ten minutes of the baseline.
    for executor in ("celery", "local"):
        home = tmp_path_factory.mktemp(executor)
        out[executor] = {"home": home, **_run_under(executor, posted, home)}
        print(f"\n{executor}: run {out[executor]['state']} in {out[executor]['seconds']:.1f} s")
    return out


def _marts(home: Path) -> dict[str, tuple[int, str]]:
    """(rows, digest of the sorted rows) of every marts table, audit columns left out."""
    with contextlib.closing(duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)) as con:
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
            " and table_type = 'BASE TABLE' order by 1").fetchall()]
        snap = {}
        for table in tables:
            columns = con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts'"
                " and table_name = ? order by ordinal_position", [table]).fetchall()
            cols = [c for (c,) in columns if c not in AUDIT_COLUMNS]
            select = ", ".join(f'"{c}"' for c in cols)
            snap[table] = con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), ''))"
                f" from (select ({select})::varchar as r from marts.{table})").fetchone()
        return snap


def _failed(tis: list[dict]) -> list[tuple]:
    return [(t["task_id"], t.get("map_index"), t["state"]) for t in tis if t["state"] not in ("success",)]


def test_both_runs_succeed_with_every_task(runs):
    for executor, run in runs.items():
        assert run["state"] == "success", (executor, _failed(run["tis"]))
        assert not _failed(run["tis"]), executor
    local = {(t["task_id"], t.get("map_index")) for t in runs["local"]["tis"]}
    celery = {(t["task_id"], t.get("map_index")) for t in runs["celery"]["tis"]}
    assert local == celery
    assert sum(1 for task, _ in celery if task == "embed_partition") >= 2


def test_what_a_task_returned_is_read_back_from_the_scheduler(runs):
    for executor in ("celery", "local"):
        loaded = runs[executor]["loaded"]
        assert isinstance(loaded, dict), loaded
        assert loaded["rows_loaded"] > 0 and loaded["rows_quarantined"] == 0, loaded


def test_every_mart_equals_the_local_executors(runs):
    local, celery = _marts(runs["local"]["home"]), _marts(runs["celery"]["home"])
    assert len(local) >= 10 and set(local) == set(celery)
    assert local["fct_events"][0] > 0 and local["dim_topics"][0] > 0
    differ = {t: (local[t], celery[t]) for t in local if local[t] != celery[t]}
    assert not differ


def _interval(ti: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])


def test_the_warehouse_pool_holds_one_writer_under_celery(runs):
    tis = runs["celery"]["tis"]
    writers = sorted((_interval(t), t["task_id"]) for t in tis if t["pool"] == "turret_warehouse")
    assert len(writers) >= 10
    overlaps = [(a, b) for (ia, a), (ib, b) in zip(writers, writers[1:], strict=False) if ib[0] < ia[1]]
    assert not overlaps


def test_tasks_are_routed_to_their_queues_and_both_workers_ran_tasks(runs):
    tis = runs["celery"]["tis"]
    for t in tis:
        assert t["queue"] == ("default" if t["task_id"] == "embed_partition" else "turret_warehouse"), t
    logs = runs["celery"]["worker_logs"]
    assert set(logs) == {"celery-worker-1", "celery-worker-2"}
    ran = {name: text.count("Executing workload in Celery") for name, text in logs.items()}
    assert all(n >= 1 for n in ran.values()), ran
    assert sum(ran.values()) >= len(tis) - sum(1 for t in tis if t["state"] == "skipped")
    embeds = sorted(_interval(t) for t in tis if t["task_id"] == "embed_partition")
    side_by_side = any(b[0] < a[1] for a, b in zip(embeds, embeds[1:], strict=False))
    print(f"\nworkers ran {ran}; embed_partition instances overlapped: {side_by_side}; "
          f"local {runs['local']['seconds']:.1f} s, celery {runs['celery']['seconds']:.1f} s")
