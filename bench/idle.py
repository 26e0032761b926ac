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

from bench import options
from bench._events import land
from bench.e2e import RESULTS, _run_pipeline


def main(argv: list[str] | None = None) -> int:
    options("idle", __doc__).parse_args(argv)
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
