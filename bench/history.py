"""What one hour costs as the history under it grows, through the real DAG.

For each history size (`TURRET_BENCH_HISTORY`, default 50,000 and 500,000 events) a fresh TURRET_HOME:

1. the history lands in sealed segments and the hourly DAG runs once (untimed: the topic model is fitted
   from scratch on it);
2. an hour with nothing new, timed;
3. an hour of `TURRET_BENCH_EVENTS` (default 5,000) new events, timed: the same events for every history
   size (one seed), so only the history under them differs.

The history is the demo generator's events for `TURRET_BENCH_DISTINCT` (default 50,000) events, copied
as often as it takes, each copy with its own sessions, users, event ids and days (a copy is a week
earlier than the one before). The copies repeat the texts, as real prompts repeat: embedding is cached per
text, so building a 500k history embeds 50k texts, while every table that grows with events (raw events,
texts, topic assignments, sessions, marts) has all 500k. The new hour's texts are new to both histories.

Printed: the new hour's cost on the largest history / on the smallest (target <= 1.3x), per task, and an
idle hour / a new hour on each (target <= 0.2x).

    python -m bench history
    TURRET_BENCH_HISTORY=20000,200000 TURRET_BENCH_EVENTS=2000 python -m bench history
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from bench import options
from bench._events import demo_events, land
from bench.e2e import RESULTS, _run_pipeline


def land_history(home: Path, n_events: int, *, distinct: int, seed: int) -> tuple[str, int]:
    """``n_events`` events in sealed segments: ``distinct`` demo events, copied with new ids and days."""
    from turret import landing
    from turret.controlplane import ControlPlane
    from turret.settings import Settings

    settings = Settings(home=home)
    project, _key = ControlPlane.from_settings(settings).create_project("bench", "business")
    events = demo_events(min(distinct, n_events), seed=seed)
    writer = landing.LandingWriter(settings.landing_root)
    now = landing.utc_now()
    written = 0
    try:
        copy = 0
        while written < n_events:
            shift = timedelta(days=7 * copy)
            batch = events[: n_events - written]
            for start in range(0, len(batch), 2000):
                writer.append([
                    landing.make_record(
                        project_id=project.project_id, contract="turret", name=e.name, metadata=e.metadata,
                        session_id=f"h{copy}-{e.session_id}", user_id=f"h{copy}-{e.user_id}",
                        session_id_generated=False, user_id_generated=False,
                        timestamp=landing.parse_iso(e.timestamp) - shift, received_at=now,
                        event_id=f"{e.event_id}-h{copy}",
                    )
                    for e in batch[start:start + 2000]
                ])
            written += len(batch)
            copy += 1
    finally:
        writer.close()
    return project.project_id, written


def main(argv: list[str] | None = None) -> int:
    options("history", __doc__).parse_args(argv)
    sizes = [int(s) for s in os.environ.get("TURRET_BENCH_HISTORY", "50000,500000").split(",") if s.strip()]
    n_new = int(os.environ.get("TURRET_BENCH_EVENTS", "5000"))
    distinct = int(os.environ.get("TURRET_BENCH_DISTINCT", "50000"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"turret-bench-history-{size}-") as tmp:
            home = Path(tmp)
            project_id, landed = land_history(home, size, distinct=distinct, seed=21)
            first, first_tasks, _ = _run_pipeline(home)
            print(f"history {landed:>8}: first hour {first:7.1f} s (untimed)", flush=True)
            idle, idle_tasks, _ = _run_pipeline(home)
            land(home, n_new, seed=22, project_id=project_id)
            new, new_tasks, _ = _run_pipeline(home)
            print(f"history {landed:>8}: idle hour {idle:6.1f} s, hour of {n_new} new events {new:6.1f} s, "
                  f"idle/new {idle / new:.2f}", flush=True)
            results.append({"history": landed, "first_seconds": round(first, 1), "first_tasks": first_tasks,
                            "idle_seconds": round(idle, 1), "idle_tasks": idle_tasks,
                            "new_seconds": round(new, 1), "new_tasks": new_tasks})
    base, top = results[0], results[-1]
    ratio = top["new_seconds"] / base["new_seconds"]
    print()
    print(f"{'task':<22} " + " ".join(f"{r['history']:>10}" for r in results) + "    ratio")
    tasks = set().union(*(r["new_tasks"] for r in results))
    for task in sorted(tasks, key=lambda t: -top["new_tasks"].get(t, 0)):
        cells = [r["new_tasks"].get(task, 0.0) for r in results]
        print(f"{task:<22} " + " ".join(f"{c:>9.1f}s" for c in cells)
              + (f"   {cells[-1] / cells[0]:5.2f}x" if cells[0] else ""))
    walls = " ".join(f"{r['new_seconds']:>9.1f}s" for r in results)
    print(f"{'whole run':<22} {walls}   {ratio:5.2f}x")
    print(f"\nan hour of {n_new} new events on {top['history']} events of history / on {base['history']}: "
          f"{ratio:.2f}x (target <= 1.3)")
    for r in results:
        print(f"idle / new on {r['history']}: {r['idle_seconds'] / r['new_seconds']:.2f} (target <= 0.20)")
    (RESULTS / "history.json").write_text(json.dumps(
        {"new_events": n_new, "distinct": distinct, "ratio": round(ratio, 3), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
