"""Events per hour through the scheduler: the LocalExecutor against Celery with 1 and 2 workers.

One set of the demo generator's events is written into sealed landing segments once and copied into a fresh
TURRET_HOME per configuration. In each home `turret up` starts the product (with ``TURRET_EXECUTOR=celery``
also the redis-server broker and ``TURRET_CELERY_WORKERS`` workers). Once the DAG is registered, one hourly
run is triggered through Airflow's REST API and timed until it succeeds: sealed landing to published marts,
a first hour (the topic model fitted from scratch). Then `turret down`. The LocalExecutor is the baseline;
the Celery runs print their events/hour as a ratio of it. The share of each task is its instances' summed
run time over all instances' (the dbt models summed as ``dbt_build``, the mapped embedding as
``embed_partition``), so time spent queued or starting processes is in the wall time only.

    python -m bench scale                                     # 2,000 events, partitions of 250 texts
    TURRET_BENCH_EVENTS=5000 TURRET_BENCH_PARTITION_TEXTS=500 python -m bench scale

Every embedding task computes with one thread (``TURRET_EMBEDDING_THREADS=1``): the mapped instances that
run side by side share the cores. ``TURRET_BENCH_CONFIGS`` picks the executors (default
``local,celery:1,celery:2``), ``TURRET_BENCH_DISTINCT_TEXTS=1`` makes every event's text distinct and
``TURRET_BENCH_PRECISION`` sets ``TURRET_EMBEDDING_PRECISION`` (default ``float32``):

    TURRET_BENCH_EVENTS=200000 TURRET_BENCH_PARTITION_TEXTS=10000 TURRET_BENCH_DISTINCT_TEXTS=1 \
        TURRET_BENCH_PRECISION=auto TURRET_BENCH_CONFIGS=local,celery:2 python -m bench scale
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import options
from bench._events import env_flag, land
from bench.e2e import RESULTS

CONFIGS = "local,celery:1,celery:2"


def configs(text: str) -> list[tuple[str, int]]:
    """``local,celery:2`` -> [("local", 0), ("celery", 2)]."""
    out = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        executor, _, workers = item.partition(":")
        out.append((executor, int(workers or 1) if executor == "celery" else 0))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, executor: str, workers: int, partition_texts: int, precision: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW", "OPENAI_"))}
    env.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TURRET_EMBED_PARTITION_TEXTS=str(partition_texts), TURRET_EXECUTOR=executor,
               TURRET_CELERY_WORKERS=str(max(workers, 1)), TURRET_REDIS_PORT=str(_free_port()),
               TURRET_EMBEDDING_THREADS="1", TURRET_EMBEDDING_PRECISION=precision,
               # Only the timed run: no scheduled hourly run beside it.
               AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False")
    return env


def run_once(source: Path, home: Path, executor: str, workers: int, partition_texts: int,
             precision: str = "float32") -> dict:
    """One configuration: copy the events, `turret up`, one timed hourly run, `turret down`."""
    from turret import services
    from turret.settings import Settings

    shutil.copytree(source / "landing", home / "landing")
    shutil.copy2(source / "control.db", home / "control.db")
    env = _env(home, executor, workers, partition_texts, precision)
    turret = str(Path(sys.executable).parent / "turret")
    airflow_port = _free_port()
    airflow_url = f"http://127.0.0.1:{airflow_port}"
    settings = Settings(home=home)
    try:
        ports = ["--api-port", str(_free_port()), "--airflow-port", str(airflow_port),
                 "--ui-port", str(_free_port())]
        up = subprocess.run([turret, "up", *ports, "--timeout", "600"], env=env, capture_output=True,
                            text=True, timeout=700)
        if up.returncode != 0:
            raise SystemExit(f"turret up failed ({executor}):\n{up.stdout[-2000:]}{up.stderr[-2000:]}")
        services.wait_for_dag(settings, airflow_url, timeout=600)
        services.ensure_unpaused(settings, airflow_url)
        started = time.monotonic()
        run_id = services.trigger_dag_run(settings, airflow_url, logical_date="2026-11-20T10:00:00+00:00")
        state = services.wait_dag_run(settings, airflow_url, services.HOURLY_DAG, run_id, timeout=7200,
                                      poll=1.0)
        wall = time.monotonic() - started
        tis = services.task_instances(settings, airflow_url, services.HOURLY_DAG, run_id)
    finally:
        subprocess.run([turret, "down"], env=env, capture_output=True, text=True, timeout=300)
    if state != "success":
        failed = [t["task_id"] for t in tis if t["state"] == "failed"]
        raise SystemExit(f"the run under {executor} ({workers} workers) failed: {failed}")
    per_task: dict[str, float] = defaultdict(float)
    for t in tis:
        per_task[t["task_id"].split(".")[0]] += float(t.get("duration") or 0.0)
    return {"wall_s": wall, "per_task_s": dict(per_task),
            "embed_partitions": sum(1 for t in tis if t["task_id"] == "embed_partition")}


def main(argv: list[str] | None = None) -> int:
    options("scale", __doc__).parse_args(argv)
    n = int(os.environ.get("TURRET_BENCH_EVENTS", "2000"))
    partition_texts = int(os.environ.get("TURRET_BENCH_PARTITION_TEXTS", "250"))
    precision = os.environ.get("TURRET_BENCH_PRECISION", "float32")
    distinct = env_flag("TURRET_BENCH_DISTINCT_TEXTS")
    runs = configs(os.environ.get("TURRET_BENCH_CONFIGS", CONFIGS))
    from turret.services import redis_server_bin

    if redis_server_bin() is None:
        print("skipped: redis-server is not installed (make system-deps installs Debian's)")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="turret-bench-scale-") as tmp:
        source = Path(tmp) / "events"
        source.mkdir()
        _, n = land(source, n, seed=11, distinct=distinct)
        baseline = None
        for executor, workers in runs:
            home = Path(tmp) / f"{executor}-{workers}"
            home.mkdir()
            result = run_once(source, home, executor, workers, partition_texts, precision)
            per_hour = n / result["wall_s"] * 3600
            baseline = baseline or per_hour
            busy = sum(result["per_task_s"].values()) or 1.0
            top = sorted(result["per_task_s"].items(), key=lambda kv: -kv[1])[:5]
            label = "LocalExecutor" if executor == "local" else f"Celery, {workers} worker(s)"
            print(f"{label:<22} {result['wall_s']:7.1f} s  {per_hour:10,.0f} events/h  "
                  f"{per_hour / baseline:.2f}x  ({result['embed_partitions']} embedding partitions)",
                  flush=True)
            print("    share: " + ", ".join(f"{k} {v / busy:.0%} ({v:.1f}s)" for k, v in top), flush=True)
            rows.append({"executor": executor, "workers": workers, "events": n, **result,
                         "events_per_hour": per_hour, "vs_local": per_hour / baseline})
    (RESULTS / "scale.json").write_text(json.dumps(
        {"events": n, "partition_texts": partition_texts, "precision": precision, "distinct": distinct,
         "embedding_threads": 1, "cpus": os.cpu_count(),
         "load_average": os.getloadavg(), "runs": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
