"""End-to-end throughput: events/s from sealed landing segments to published marts, and where the time goes.

For each size (default 10,000 and 100,000 events) a fresh TURRET_HOME gets a project and the demo generator's
events written straight into sealed landing segments (the API is measured by ``bench/ingest.py``); then
``turret pipeline run`` runs the hourly DAG through Airflow, and its per-task timings are collected. The
smallest size is the baseline: larger sizes print their events/s as a ratio of it, so a step that does not
scale shows up as a falling ratio.

    python -m bench e2e                       # 10k and 100k
    TURRET_BENCH_SIZES=2000,10000 python -m bench e2e
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

RESULTS = Path(__file__).parent / "results"
_TASK_LINE = re.compile(r"✓ (\S+)\s+([\d.]+)s")


def _land(home: Path, n_events: int) -> tuple[str, int]:
    from turret import landing
    from turret.controlplane import ControlPlane
    from turret.demo.dataset import generate
    from turret.settings import Settings

    settings = Settings(home=home)
    project, _key = ControlPlane.from_settings(settings).create_project("bench", "business")
    sessions = max(1, n_events // 7)
    events = generate(seed=11, n_sessions=sessions, n_users=max(10, sessions // 3))
    while len(events) < n_events:
        sessions = int(sessions * n_events / len(events)) + 5
        events = generate(seed=11, n_sessions=sessions, n_users=max(10, sessions // 3))
    events = events[:n_events]
    writer = landing.LandingWriter(settings.landing_root)
    now = landing.utc_now()
    batch = []
    for e in events:
        ts = landing.parse_iso(e.timestamp)
        batch.append(landing.make_record(
            project_id=project.project_id, contract="turret", name=e.name, metadata=e.metadata,
            session_id=e.session_id, user_id=e.user_id, session_id_generated=False, user_id_generated=False,
            timestamp=ts, received_at=now, event_id=e.event_id,
        ))
        if len(batch) == 1000:
            writer.append(batch)
            batch = []
    if batch:
        writer.append(batch)
    writer.close()
    return project.project_id, len(events)


def _run_pipeline(home: Path, *args: str) -> tuple[float, dict[str, float], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW"))}
    env.update(TURRET_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
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


def main() -> int:
    sizes = [int(s) for s in os.environ.get("TURRET_BENCH_SIZES", "10000,100000").split(",") if s.strip()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"turret-bench-e2e-{n}-") as tmp:
            home = Path(tmp)
            _pid, landed = _land(home, n)
            wall, tasks, _ = _run_pipeline(home)
            results.append({"events": landed, "wall_seconds": round(wall, 1),
                            "events_per_second": round(landed / wall, 1), "tasks": tasks})
            print(f"{landed:>8} events: {wall:7.1f} s end to end, {landed / wall:8.1f} events/s", flush=True)
    base = results[0]["events_per_second"]
    print()
    print(f"{'events':>8} {'wall s':>8} {'events/s':>9} {'vs base':>8}   share of task time")
    for r in results:
        total = sum(r["tasks"].values()) or 1.0
        shares = sorted(r["tasks"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{k} {v / total:.0%}" for k, v in shares[:5])
        r["ratio_to_baseline"] = round(r["events_per_second"] / base, 2)
        print(f"{r['events']:>8} {r['wall_seconds']:>8} {r['events_per_second']:>9} "
              f"{r['ratio_to_baseline']:>7}x   {top}")
    (RESULTS / "e2e.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
