"""The Python client (turret-sdk) against a real ``turret serve`` (``python -m bench client``).

Two questions, each against a baseline measured in the same run:

1. **Throughput from one app thread.** One thread calls ``Client.track()`` ``BENCH_CLIENT_EVENTS`` times
   (default 40,000; ``block=True`` so nothing is dropped, every other setting the default: batches of 100,
   2 in flight), then ``flush()``; events/s = events / (first track to flush's return), counted only when
   the server acknowledged every event. Baseline: the same events sent as raw ``POST /track/batch``
   requests of 100 (``json.dumps`` per batch, keep-alive ``http.client``) from as many threads as the
   client has batches in flight, which is what the client does minus its queue, ids, timestamps and
   retry bookkeeping. The two alternate in ``BENCH_CLIENT_ROUNDS`` rounds (default 3) so that a machine
   whose speed drifts biases neither.
2. **``track()``'s cost on the calling thread.** Each call timed with ``perf_counter_ns``: paced as an app
   would call it (bursts of 100 every 10 ms, 10,000 events/s, below what the server takes; the three
   measured calls take turns going first after the pause, which is slow for any call) and back to
   back (a queue large enough that nothing blocks). Baselines timed the same way and interleaved with it,
   burst by burst: an empty function call with the same arguments (the timer's and the call's own cost)
   and ``queue.Queue.put_nowait`` (the standard library's bounded queue).

The server is ``turret serve`` (gunicorn, default 2 workers x 8 threads) over a temporary TURRET_HOME.
Besides events/s, the CPU each event costs the sending process (this one: the app thread and the
client's threads, or the raw senders) and the server is counted per round: on a shared, CPU-bound machine
throughput follows the CPU per event, which moves far less with outside load than events/s do. Prints the
figures and ratios and writes bench/results/client.json.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import options
from bench.ingest import _free_port, _own_cpu, _percentile, _process_tree_cpu, _wait_healthy

RESULTS = Path(__file__).parent / "results" / "client.json"
EVENTS = int(os.environ.get("BENCH_CLIENT_EVENTS", "40000"))
ROUNDS = int(os.environ.get("BENCH_CLIENT_ROUNDS", "3"))
BATCH = 100
PACED_EVENTS = 30_000
BURST, BURST_PAUSE = 100, 0.010
GOAL_EVENTS_PER_S = 20_000
GOAL_P99_US = 20.0


def _metadata(i: int) -> dict[str, Any]:
    return {"prompt": f"How do I reset my password? attempt {i}", "platform": "web"}


def _raw(port: int, key: str, events: int, threads: int) -> dict[str, Any]:
    """``events`` as raw batches of 100 from ``threads`` keep-alive connections, with the fields the client
    sends (an ``event_id`` and a ``timestamp``, so the server does the same work per event)."""
    stamp = datetime.now(UTC).isoformat()
    batches = [[{"name": "user_message", "session_id": f"s{i % 97}", "event_id": f"evt_{uuid.uuid4().hex}",
                 "timestamp": stamp, "metadata": _metadata(i)} for i in range(b, min(b + BATCH, events))]
               for b in range(0, events, BATCH)]
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    accepted = [0] * threads
    errors = [0] * threads

    def sender(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for batch in batches[n::threads]:
            conn.request("POST", "/track/batch", body=json.dumps({"events": batch}).encode(), headers=headers)
            response = conn.getresponse()
            body = json.loads(response.read())
            if response.status == 200:
                accepted[n] += body["accepted"]
            else:
                errors[n] += 1
        conn.close()

    workers = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seconds = time.perf_counter() - started
    return {"events": events, "accepted": sum(accepted), "errors": sum(errors), "seconds": seconds,
            "events_per_s": sum(accepted) / seconds}


def _client(url: str, key: str, events: int) -> dict[str, Any]:
    from turret_sdk import Client

    client = Client(key, host=url, block=True)
    started = time.perf_counter()
    track = client.track
    for i in range(events):
        track("user_message", _metadata(i), session_id=f"s{i % 97}")
    tracked = time.perf_counter() - started
    flushed = client.flush(120)
    seconds = time.perf_counter() - started
    stats = client.stats()
    client.shutdown(10)
    return {"events": events, "accepted": stats.delivered, "dropped": stats.dropped,
            "rejected": stats.rejected, "requests": stats.requests, "flushed": flushed, "seconds": seconds,
            "tracking_seconds": tracked,
            "events_per_s": stats.delivered / seconds if flushed else 0.0}


def _timings_us(samples: list[int]) -> dict[str, float]:
    values = sorted(s / 1000 for s in samples)
    return {"calls": len(values), "p50_us": _percentile(values, 0.50), "p99_us": _percentile(values, 0.99),
            "p999_us": _percentile(values, 0.999), "max_us": values[-1]}


def _track_cost(url: str, key: str) -> dict[str, Any]:
    """Per-call cost of ``track()`` and of the two baselines, each paced and back to back."""
    from turret_sdk import Client

    clock = time.perf_counter_ns

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    out: dict[str, Any] = {}
    for mode in ("paced", "back_to_back"):
        client = Client(key, host=url, max_queue_size=10 * PACED_EVENTS)
        bounded: queue.Queue = queue.Queue(maxsize=10 * PACED_EVENTS)
        calls = {
            "track": lambda m, c=client: c.track("user_message", m, session_id="s1"),
            "queue_put_nowait": lambda m, q=bounded: q.put_nowait(("user_message", m, "s1")),
            "empty_call": lambda m: nothing("user_message", m, session_id="s1"),
        }
        samples: dict[str, list[int]] = {name: [] for name in calls}
        names = list(calls)
        for n, burst in enumerate(range(0, PACED_EVENTS, BURST)):
            # Interleaved, and each goes first after the pause in turn: the first call after an idle
            # pause is slow whatever it does (cold caches; about 20 us for a bare Queue.put on a busy
            # 2-core machine), so no call type takes that position every time.
            for name in names[n % 3:] + names[:n % 3]:
                call = calls[name]
                timings = samples[name]
                for i in range(burst, burst + BURST):
                    metadata = _metadata(i)
                    t0 = clock()
                    call(metadata)
                    timings.append(clock() - t0)
            if mode == "paced":
                time.sleep(BURST_PAUSE)
        assert client.flush(120)
        stats = client.stats()
        client.shutdown(10)
        out[mode] = {name: _timings_us(timings) for name, timings in samples.items()}
        out[mode]["track"].update(delivered=stats.delivered, dropped=stats.dropped)
    return out


def main(argv: list[str] | None = None) -> int:
    options("client", __doc__).parse_args(argv)
    from turret.controlplane import ControlPlane
    from turret.settings import Settings

    with tempfile.TemporaryDirectory(prefix="turret-bench-client-") as home:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
        env.update({"TURRET_HOME": home, "TURRET_PORT": str(port)})
        for name in ("TURRET_WORKERS", "TURRET_THREADS", "TURRET_GROUP_COMMIT_MS"):
            if name in os.environ:
                env[name] = os.environ[name]
        settings = Settings.from_env(env)
        control_plane = ControlPlane.from_settings(settings)
        _, key = control_plane.create_project("bench", "enterprise", monthly_limit=10**12)
        control_plane.dispose()
        log_path = Path(home) / "gunicorn.log"
        log = open(log_path, "w")  # a file, not a pipe: an unread pipe would block the server
        server = subprocess.Popen([sys.executable, "-c", "from turret.cli import main; main()", "serve"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                _wait_healthy(port, server)
            except RuntimeError:
                print(log_path.read_text()[-4000:], file=sys.stderr)
                raise
            from turret_sdk import Client

            in_flight = Client(key, host=url).max_in_flight
            _client(url, key, 2_000)  # warm-up: connections, imports, the server's caches
            rounds: dict[str, list[dict[str, Any]]] = {"raw": [], "client": []}
            for _ in range(ROUNDS):
                for name in ("raw", "client"):
                    cpu0, own0 = _process_tree_cpu(server.pid), _own_cpu()
                    run = _raw(port, key, EVENTS, in_flight) if name == "raw" else _client(url, key, EVENTS)
                    cpu1, own1 = _process_tree_cpu(server.pid), _own_cpu()
                    if run["accepted"]:
                        # CPU per event moves far less with the machine's other load than events/s do.
                        run["sender_cpu_us_per_event"] = (own1 - own0) / run["accepted"] * 1e6
                        if cpu0 is not None and cpu1 is not None:
                            run["server_cpu_us_per_event"] = (cpu1 - cpu0) / run["accepted"] * 1e6
                    rounds[name].append(run)
            cost = _track_cost(url, key)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        server_errors = [ln for ln in log_path.read_text().splitlines() if "Traceback" in ln or "ERROR" in ln]

    def total(name: str) -> float:
        runs = rounds[name]
        return sum(r["accepted"] for r in runs) / sum(r["seconds"] for r in runs)

    client_rate, raw_rate = total("client"), total("raw")
    complete = all(r["flushed"] and r["accepted"] == r["events"] for r in rounds["client"])
    result = {
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_at_end": os.getloadavg()[0],
                    "python": platform.python_version(), "platform": platform.platform()},
        "server": {"workers": settings.workers, "threads": settings.threads},
        "events_per_round": EVENTS, "rounds": rounds, "track_cost": cost,
        "client_events_per_s": client_rate, "raw_events_per_s": raw_rate,
        "ratios": {"client_over_raw": client_rate / raw_rate,
                   "track_p99_over_queue_put_p99_paced":
                       cost["paced"]["track"]["p99_us"] / cost["paced"]["queue_put_nowait"]["p99_us"]},
        "every_event_acknowledged": complete, "server_error_lines": len(server_errors),
    }
    print(f"server: gunicorn {settings.workers} workers x {settings.threads} threads; {os.cpu_count()} CPUs; "
          f"{ROUNDS} rounds of {EVENTS} events")
    labels = {"raw": f"raw /track/batch ({in_flight} threads)", "client": "Client.track(), 1 thread"}
    for name, label in labels.items():
        rates = ", ".join(f"{r['events_per_s']:,.0f}" for r in rounds[name])
        cpu = [r.get("sender_cpu_us_per_event", float("nan")) for r in rounds[name]]
        server_cpu = [r.get("server_cpu_us_per_event", float("nan")) for r in rounds[name]]
        print(f"  {label:34s} {total(name):9,.0f} events/s  (rounds: {rates}); CPU per event: sender "
              f"{min(cpu):.1f}-{max(cpu):.1f} us, server {min(server_cpu):.1f}-{max(server_cpu):.1f} us")
    print(f"  ratio client/raw {result['ratios']['client_over_raw']:.2f}; "
          f"every event acknowledged: {complete}; goal >= {GOAL_EVENTS_PER_S:,}/s: "
          f"{'met' if client_rate >= GOAL_EVENTS_PER_S else 'NOT met'}")
    for mode in ("paced", "back_to_back"):
        for name in ("track", "queue_put_nowait", "empty_call"):
            c = cost[mode][name]
            print(f"  {mode:12s} {name:16s} p50 {c['p50_us']:6.2f} us  p99 {c['p99_us']:6.2f} us  "
                  f"p99.9 {c['p999_us']:8.2f} us  max {c['max_us']:9.1f} us")
    p99 = cost["paced"]["track"]["p99_us"]
    print(f"  track() p99 paced {p99:.2f} us: goal <= {GOAL_P99_US:g} us "
          f"{'met' if p99 <= GOAL_P99_US else 'NOT met'}; {len(server_errors)} error lines in the server log")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
