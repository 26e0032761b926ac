"""End-to-end throughput: events/s from sealed landing segments to published marts, and where the time goes.

For each size (default 10,000 and 100,000 events) a fresh TURRET_HOME gets a project and the demo generator's
events written straight into sealed landing segments (``bench._events.land``); then
``turret pipeline run`` runs the hourly DAG through Airflow, and its per-task timings are collected. The
smallest size is the baseline: larger sizes print their events/s as a ratio of it, so a step that does not
scale shows up as a falling ratio.

    python -m bench e2e                       # 10k and 100k
    TURRET_BENCH_SIZES=2000,10000 python -m bench e2e

``TURRET_BENCH_DISTINCT_TEXTS=1`` makes every event's text distinct (a text the generator already produced
gets a ticket number appended), so the embedding cache saves nothing: the throughput of distinct texts.
``TURRET_BENCH_PRECISIONS`` (default ``float32``) runs every size once per embedding precision
(``TURRET_EMBEDDING_PRECISION``); the first precision at the smallest size is the baseline.

    TURRET_BENCH_SIZES=200000 TURRET_BENCH_DISTINCT_TEXTS=1 TURRET_BENCH_PRECISIONS=float32,auto \
        python -m bench e2e
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import options
from bench._events import env_flag, land

RESULTS = Path(__file__).parent / "results"
_TASK_LINE = re.compile(r"✓ (\S+)\s+([\d.]+)s")


def _run_pipeline(home: Path, *args: str, extra_env: dict[str, str] | None = None
                  ) -> tuple[float, dict[str, float], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW"))}
    env.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **(extra_env or {}))
    turret = str(Path(sys.executable).parent / "turret")
    # Airflow's one-time setup (metadata DB) is not part of the hourly cost: do it before the clock starts.
    from turret.airflow_env import airflow_environment, ensure_airflow_ready
    from turret.settings import Settings

    ensure_airflow_ready(Settings(home=home), airflow_environment(Settings(home=home), env),
                         echo=lambda *_: None)
    started = time.perf_counter()
    proc = subprocess.run([turret, "pipeline", "run", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"pipeline run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    tasks: dict[str, float] = defaultdict(float)
    for name, seconds in _TASK_LINE.findall(proc.stdout):
        tasks["dbt_build" if name.startswith("dbt_build.") else name] += float(seconds)
    return wall, dict(tasks), proc.stdout


def main(argv: list[str] | None = None) -> int:
    options("e2e", __doc__).parse_args(argv)
    sizes = [int(s) for s in os.environ.get("TURRET_BENCH_SIZES", "10000,100000").split(",") if s.strip()]
    precisions = [p.strip() for p in os.environ.get("TURRET_BENCH_PRECISIONS", "float32").split(",")
                  if p.strip()]
    distinct = env_flag("TURRET_BENCH_DISTINCT_TEXTS")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        for precision in precisions:
            with tempfile.TemporaryDirectory(prefix=f"turret-bench-e2e-{n}-") as tmp:
                home = Path(tmp)
                _pid, landed = land(home, n, seed=11, distinct=distinct)
                wall, tasks, _ = _run_pipeline(home, extra_env={"TURRET_EMBEDDING_PRECISION": precision})
                texts = _distinct_in_warehouse(home)
            results.append({"events": landed, "precision": precision, "distinct_texts": texts,
                            "wall_seconds": round(wall, 1), "events_per_second": round(landed / wall, 1),
                            "events_per_hour": round(landed / wall * 3600), "tasks": tasks})
            print(f"{landed:>8} events ({texts} distinct texts), {precision:>8}: {wall:7.1f} s end to end, "
                  f"{landed / wall:8.1f} events/s, {landed / wall * 3600:11,.0f} events/hour", flush=True)
    base = results[0]["events_per_second"]
    print()
    print(f"{'events':>8} {'precision':>9} {'wall s':>8} {'events/h':>11} {'vs base':>8}   "
          "share of task time")
    for r in results:
        total = sum(r["tasks"].values()) or 1.0
        shares = sorted(r["tasks"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{k} {v / total:.0%} ({v:.0f}s)" for k, v in shares[:6])
        r["ratio_to_baseline"] = round(r["events_per_second"] / base, 2)
        print(f"{r['events']:>8} {r['precision']:>9} {r['wall_seconds']:>8} {r['events_per_hour']:>11,} "
              f"{r['ratio_to_baseline']:>7}x   {top}")
    (RESULTS / "e2e.json").write_text(json.dumps(
        {"distinct": distinct, "cpus": os.cpu_count(), "runs": results}, indent=2) + "\n")
    return 0


def _distinct_in_warehouse(home: Path) -> int:
    """Distinct texts the run embedded, read from the warehouse once the run has finished."""
    import duckdb
    from turret.settings import Settings

    settings = Settings(home=home)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return int(con.execute("select count(*) from pipeline.embeddings").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
