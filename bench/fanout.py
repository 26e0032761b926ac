"""Fan-out: embedding throughput with 1 and 2 worker processes, the step that dominates an hourly run.

Embedding is where the pipeline spends its time (``python -m bench e2e`` prints the share per task), and it
is the step a deployment fans out: one mapped task per project and partition on Celery or Kubernetes
workers (docs/scaling.md). This benchmark measures that fan-out on this machine: the same distinct demo
texts embedded by 1 worker process, then split across 2 worker processes running at once, each worker
with one torch thread (as a Celery worker slot would be). The 1-worker run is the baseline; the 2-worker
run prints its speed-up, and the scaling efficiency (speed-up / workers) is what docs/scaling.md uses to
project further.

    python -m bench fanout                      # 4,000 texts
    TURRET_BENCH_FANOUT_TEXTS=8000 python -m bench fanout
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

from bench import options

RESULTS = Path(__file__).parent / "results"


def _texts(n: int) -> list[str]:
    from turret.demo.dataset import generate

    seen: dict[str, None] = {}
    sessions = max(10, n // 5)
    while len(seen) < n:
        for e in generate(seed=3, n_sessions=sessions, n_users=max(10, sessions // 3)):
            seen.setdefault(e.metadata["prompt"], None)
        sessions *= 2
    return list(seen)[:n]


def _worker(texts: list[str], model: str, start, out) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from turret.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model)
    embedder.encode(texts[:32])  # model loaded and warm before the clock starts
    start.wait()
    t0 = time.perf_counter()
    embedder.encode(texts)
    out.put(time.perf_counter() - t0)


def _run(texts: list[str], workers: int, model: str) -> float:
    """Wall seconds for ``workers`` processes to embed ``texts`` split evenly between them."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(workers + 1), ctx.Queue()
    parts = [texts[i::workers] for i in range(workers)]
    procs = [ctx.Process(target=_worker, args=(p, model, start, out)) for p in parts]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for _ in procs:
        out.get(timeout=1800)
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return wall


def main(argv: list[str] | None = None) -> int:
    options("fanout", __doc__).parse_args(argv)
    from turret.settings import Settings

    n = int(os.environ.get("TURRET_BENCH_FANOUT_TEXTS", "4000"))
    model = Settings.from_env().embedding_model
    texts = _texts(n)
    cores = os.cpu_count() or 1
    results = []
    for workers in (1, 2):
        wall = _run(texts, workers, model)
        results.append({"workers": workers, "texts": len(texts), "seconds": round(wall, 1),
                        "texts_per_second": round(len(texts) / wall, 1)})
        print(f"{workers} worker(s): {len(texts)} texts in {wall:6.1f} s, {len(texts) / wall:7.1f} texts/s",
              flush=True)
    base = results[0]["texts_per_second"]
    for r in results:
        r["speedup"] = round(r["texts_per_second"] / base, 2)
        r["efficiency"] = round(r["speedup"] / r["workers"], 2)
    print(f"2 workers vs 1: {results[1]['speedup']}x (efficiency {results[1]['efficiency']}) "
          f"on {cores} cores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fanout.json").write_text(json.dumps({"cores": cores, "model": model, "runs": results},
                                                    indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
