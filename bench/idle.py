"""What an hour costs when nothing new arrived, against an hour with new events, through the real DAG.

One fresh TURRET_HOME: the demo generator's events for a first hour are written into sealed landing
segments and the hourly DAG runs once (`turret pipeline run`, the topic model fitted from scratch). Then,
each timed end to end (the `turret pipeline run` command: Airflow parsing the DAG, every task, publishing):

1. an hour with nothing new, every step run anyway (`--all-steps`): what an idle hour cost before the
   hourly DAG learnt to stop early; the baseline;
2. an hour with nothing new: the DAG stops after `load_landed` and `has_new_events` (turret.idle);
3. an hour with new events: as many events again (another seed, so other event ids and sessions) land and
   the DAG runs. Last, so that the idle figures are printed even when it is cut short.

Printed: idle / idle with all steps, and idle / an hour with new events.

    python -m bench idle                        # 5,000 events per hour
    TURRET_BENCH_EVENTS=2000 python -m bench idle
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.e2e import RESULTS, _run_pipeline


def demo_events(n_events: int, *, seed: int) -> list:
    """The demo generator's first ``n_events`` events of ``seed`` (enough sessions drawn to have them)."""
    from turret.demo.dataset import generate

    sessions = max(1, n_events // 7)
    events = generate(seed=seed, n_sessions=sessions, n_users=max(10, sessions // 3))
    while len(events) < n_events:
        sessions = int(sessions * n_events / len(events)) + 5
        events = generate(seed=seed, n_sessions=sessions, n_users=max(10, sessions // 3))
    return events[:n_events]


def land(home: Path, n_events: int, *, seed: int, project_id: str | None = None,
         distinct: bool = False) -> tuple[str, int]:
    """``n_events`` demo events of ``seed`` written straight into sealed landing segments of ``home``;
    with ``distinct`` every event's text is distinct (``bench.e2e.distinct_texts``)."""
    from turret import landing
    from turret.controlplane import ControlPlane
    from turret.settings import Settings

    settings = Settings(home=home)
    if project_id is None:
        project, _key = ControlPlane.from_settings(settings).create_project("bench", "business")
        project_id = project.project_id
    events = demo_events(n_events, seed=seed)
    if distinct:
        from bench.e2e import distinct_texts

        distinct_texts(events)
    writer = landing.LandingWriter(settings.landing_root)
    now = landing.utc_now()
    try:
        for start in range(0, len(events), 1000):
            writer.append([
                landing.make_record(
                    project_id=project_id, contract="turret", name=e.name, metadata=e.metadata,
                    session_id=f"s{seed}-{e.session_id}", user_id=e.user_id, session_id_generated=False,
                    user_id_generated=False, timestamp=landing.parse_iso(e.timestamp), received_at=now,
                    event_id=f"{e.event_id}-{seed}",
                )
                for e in events[start:start + 1000]
            ])
    finally:
        writer.close()
    return project_id, len(events)


def main() -> int:
    n = int(os.environ.get("TURRET_BENCH_EVENTS", "5000"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="turret-bench-idle-") as tmp:
        home = Path(tmp)
        project_id, _ = land(home, n, seed=11)
        first, _, _ = _run_pipeline(home)
        print(f"first hour ({n} events, topics fitted): {first:7.1f} s", flush=True)
        full, _, _ = _run_pipeline(home, "--all-steps")
        print(f"hour with nothing new, all steps:     {full:7.1f} s (baseline)", flush=True)
        idle, idle_tasks, out = _run_pipeline(home)
        print(f"hour with nothing new:                {idle:7.1f} s  {idle / full:.2f}x", flush=True)
        if "later steps were skipped" not in out:
            raise SystemExit(f"the idle hour did not stop after loading:\n{out[-3000:]}")
        print("idle hour's tasks: " + ", ".join(f"{k} {v:.1f}s" for k, v in idle_tasks.items()), flush=True)
        land(home, n, seed=12, project_id=project_id)
        new, new_tasks, _ = _run_pipeline(home)
        print(f"hour with {n} new events:            {new:7.1f} s", flush=True)
    ratio = idle / new
    print(f"\nidle / new = {ratio:.2f} (target <= 0.20)")
    result = {"events_per_hour": n, "first_seconds": round(first, 1),
              "all_steps_idle_seconds": round(full, 1), "idle_seconds": round(idle, 1),
              "new_seconds": round(new, 1), "idle_over_new": round(ratio, 3),
              "new_tasks": new_tasks, "idle_tasks": idle_tasks}
    (RESULTS / "idle.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
