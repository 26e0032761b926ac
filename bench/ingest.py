"""Ingest throughput and latency against a real gunicorn server (``python -m bench ingest``).

The server is ``turret serve`` as a subprocess: gunicorn with ``turret.gunicorn_conf`` (asyncio workers,
each running the app on ``TURRET_THREADS`` threads: ``TURRET_WORKERS`` x ``TURRET_THREADS``, default 2 x 8)
over a temporary TURRET_HOME,
with ``TURRET_BENCH_ENDPOINTS=1`` so that ``POST /bench/noop`` exists (``TURRET_WORKERS``, ``TURRET_THREADS``
and ``TURRET_GROUP_COMMIT_MS`` pass through from the caller's environment). The load generator is a second
process (``python -m bench.ingest --loadgen``): threads with keep-alive ``http.client`` connections,
loopback only, each phase bounded in time.

Phases: the no-op endpoint (framework ceiling, the baseline), durable ``/track`` (one fsynced event per
request) and ``/track/batch`` with 100 events per request, taken in turn in ``BENCH_INGEST_ROUNDS``
(default 6) rounds so that a machine whose speed drifts during the run biases no phase; then ``/track``
and the no-op at a fixed offered rate of 400 requests/s, 10 s each in alternating halves (open loop:
latency counts from the scheduled send time, so a stalled server is not hidden by a slowed-down client;
the no-op's p99 is the machine's own latency floor).

Besides throughput, the CPU seconds of the server (gunicorn and its workers, from ``/proc``) and of the
load generator are counted per phase: on a CPU-bound machine throughput follows the CPU each request
costs, and that figure moves far less with outside load than requests per second do. Prints the
figures and the ratios track/noop (by throughput, per round, and by CPU) and batch/single, and writes
bench/results/ingest.json.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import options

RESULTS = Path(__file__).parent / "results" / "ingest.json"
DURATION = float(os.environ.get("BENCH_INGEST_SECONDS", "6"))
CONCURRENCY = int(os.environ.get("BENCH_INGEST_CONCURRENCY", "16"))
BATCH_SIZE = 100
FIXED_RATE = 400.0
FIXED_SECONDS = 10.0
WARMUP = 1.0
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "6"))


def _event(i: int) -> dict[str, Any]:
    return {"name": "user_message", "session_id": f"s{i % 97}",
            "metadata": {"prompt": f"How do I reset my password? attempt {i}", "platform": "web"}}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _process_tree_cpu(root_pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by ``root_pid`` and its children (Linux ``/proc``)."""
    if root_pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    found = False
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # After the command: state, ppid, ..., utime (14th field overall) and stime (15th).
        pid, ppid = int(entry), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / tick if found else None


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----------------------------------------------------------------------------------------- load generator


class _Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _closed_loop(
    port: int, path: str, bodies: list[bytes], key: str, seconds: float, threads: int, warmup: float = WARMUP,
    server_pid: int | None = None,
) -> dict:
    """``threads`` clients send back to back for ``seconds`` (after ``warmup``); counts and latencies."""
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start_at = time.monotonic() + warmup
    stop_at = start_at + seconds

    def worker(n: int) -> None:
        client = _Client(port)
        i = n
        while True:
            now = time.monotonic()
            if now >= stop_at:
                return
            t0 = time.perf_counter()
            try:
                status = client.post(path, bodies[i % len(bodies)], headers)
            except (OSError, http.client.HTTPException):
                status = 0
            elapsed = time.perf_counter() - t0
            i += threads
            if now >= start_at:  # warm-up requests are not counted
                latencies[n].append(elapsed)
                if status != 200:
                    errors[n] += 1

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    # CPU is counted over the measured window only (warm-up excluded), for the server and this process.
    time.sleep(max(0.0, start_at - time.monotonic()))
    server_cpu, client_cpu = _process_tree_cpu(server_pid), _own_cpu()
    for t in pool:
        t.join()
    out = _summary([v for per in latencies for v in per], sum(errors), seconds)
    server_after = _process_tree_cpu(server_pid)
    out["server_cpu_s"] = (
        server_after - server_cpu if server_cpu is not None and server_after is not None else None
    )
    out["client_cpu_s"] = _own_cpu() - client_cpu
    return out


def _summary(latencies: list[float], errors: int, seconds: float) -> dict:
    values = sorted(latencies)
    return {
        "requests": len(values),
        "errors": errors,
        "seconds": seconds,
        "req_per_s": len(values) / seconds,
        "p50_ms": _percentile(values, 0.50) * 1000,
        "p99_ms": _percentile(values, 0.99) * 1000,
        "_latencies": values,
    }


def _alternating(port: int, phases: dict[str, tuple[str, list[bytes]]], key: str, seconds: float,
                 threads: int, rounds: int, server_pid: int | None = None) -> dict[str, dict]:
    """Run the phases in turn, ``rounds`` times, ``seconds / rounds`` each: a machine that gets slower or
    faster during the run (another tenant, CPU frequency) weighs on every phase alike, not on one."""
    parts: dict[str, list[dict]] = {name: [] for name in phases}
    for _ in range(rounds):
        for name, (path, bodies) in phases.items():
            parts[name].append(_closed_loop(port, path, bodies, key, seconds / rounds, threads, warmup=0.0,
                                            server_pid=server_pid))
    out = {}
    for name, runs in parts.items():
        merged = _summary([v for run in runs for v in run["_latencies"]], sum(r["errors"] for r in runs),
                          seconds)
        merged["req_per_s_by_round"] = [round(r["req_per_s"], 1) for r in runs]
        requests = max(1, merged["requests"])
        if all(r["server_cpu_s"] is not None for r in runs):
            merged["server_cpu_us_per_request"] = 1e6 * sum(r["server_cpu_s"] for r in runs) / requests
        merged["client_cpu_us_per_request"] = 1e6 * sum(r["client_cpu_s"] for r in runs) / requests
        out[name] = merged
    return out


def _fixed_rate(port: int, bodies: list[bytes], key: str, rate: float, seconds: float, threads: int,
                path: str = "/track") -> dict:
    """Open loop: request k is due at start + k/rate; latency is measured from that due time."""
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    total = int(rate * seconds)
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter() + 0.2

    def worker() -> None:
        client = _Client(port)
        while True:
            with lock:
                k = next_index[0]
                next_index[0] += 1
            if k >= total:
                return
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status = client.post(path, bodies[k % len(bodies)], headers)
            except (OSError, http.client.HTTPException):
                status = 0
            done = time.perf_counter()
            with lock:
                latencies.append(done - due)
                if status != 200:
                    errors[0] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"rate": rate, "seconds": seconds, "elapsed": time.perf_counter() - start,
            "latencies": sorted(latencies), "errors": errors[0]}


def _merge_fixed(runs: list[dict]) -> dict:
    """One summary of several :func:`_fixed_rate` runs at the same rate."""
    values = sorted(v for run in runs for v in run["latencies"])
    return {
        "offered_req_per_s": runs[0]["rate"],
        "achieved_req_per_s": len(values) / sum(run["elapsed"] for run in runs),
        "requests": len(values),
        "errors": sum(run["errors"] for run in runs),
        "seconds": sum(run["seconds"] for run in runs),
        "p50_ms": _percentile(values, 0.50) * 1000,
        "p99_ms": _percentile(values, 0.99) * 1000,
        "p99_ms_by_half": [round(_percentile(run["latencies"], 0.99) * 1000, 1) for run in runs],
    }


def loadgen(port: int, key: str, seconds: float, threads: int, server_pid: int | None = None) -> dict:
    singles = [json.dumps(_event(i)).encode() for i in range(1000)]
    batches = [json.dumps({"events": [_event(b * BATCH_SIZE + i) for i in range(BATCH_SIZE)]}).encode()
               for b in range(20)]
    # Warm every endpoint first: workers build their landing writer and control plane on first use.
    for path, bodies in (("/bench/noop", singles), ("/track", singles), ("/track/batch", batches[:2])):
        _closed_loop(port, path, bodies, key, 1.0, threads)
    phases = _alternating(port, {"noop": ("/bench/noop", singles), "track": ("/track", singles),
                                 "batch": ("/track/batch", batches)}, key, seconds, threads, ROUNDS,
                          server_pid)
    phases["batch"]["events_per_s"] = phases["batch"]["req_per_s"] * BATCH_SIZE
    # The same open-loop rate against the no-op too, in alternating halves: its p99 is this machine's
    # latency floor (scheduler, other tenants, the load generator's own threads), not the durable write.
    halves: dict[str, list[dict]] = {"/bench/noop": [], "/track": []}
    for _ in range(2):
        for path, runs in halves.items():
            runs.append(_fixed_rate(port, singles, key, FIXED_RATE, FIXED_SECONDS / 2, max(threads, 32),
                                    path))
    fixed, noop_fixed = (_merge_fixed(halves[path]) for path in ("/track", "/bench/noop"))
    for phase in phases.values():
        del phase["_latencies"]
    return {**phases, "track_fixed_rate": fixed, "noop_fixed_rate": noop_fixed}


# ---------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become healthy in time")


def run() -> int:
    from turret.controlplane import ControlPlane
    from turret.settings import Settings

    with tempfile.TemporaryDirectory(prefix="turret-bench-") as home:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
        env.update({"TURRET_HOME": home, "TURRET_PORT": str(port), "TURRET_BENCH_ENDPOINTS": "1"})
        for name in ("TURRET_WORKERS", "TURRET_THREADS", "TURRET_GROUP_COMMIT_MS"):
            if name in os.environ:
                env[name] = os.environ[name]
        settings = Settings.from_env(env)
        control_plane = ControlPlane.from_settings(settings)
        _, key = control_plane.create_project("bench", "enterprise", monthly_limit=10**12)
        control_plane.dispose()

        log_path = Path(home) / "gunicorn.log"
        log = open(log_path, "w")  # a file, not a pipe: an unread pipe would block the server
        server = subprocess.Popen(
            [sys.executable, "-c", "from turret.cli import main; main()", "serve"],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        try:
            try:
                _wait_healthy(port, server)
            except RuntimeError:
                print(log_path.read_text()[-4000:], file=sys.stderr)
                raise
            gen = subprocess.run(
                [sys.executable, "-m", "bench.ingest", "--loadgen", "--port", str(port), "--key", key,
                 "--seconds", str(DURATION), "--threads", str(CONCURRENCY), "--server-pid", str(server.pid)],
                capture_output=True, text=True, timeout=DURATION * 3 + FIXED_SECONDS * 2 + 90,
                cwd=Path(__file__).resolve().parent.parent,
            )
            if gen.returncode != 0:
                print(gen.stderr, file=sys.stderr)
                return 1
            phases = json.loads(gen.stdout)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        # Graceful stop runs worker_exit: every segment must be sealed, every event readable.
        from turret.landing import iter_open_segments, iter_sealed_segments, read_segment

        landing = settings.landing_root
        still_open = len(list(iter_open_segments(landing)))
        landed = sum(1 for seg in iter_sealed_segments(landing) for line in read_segment(seg)
                     if line.error is None)
        server_errors = [ln for ln in log_path.read_text().splitlines() if "Traceback" in ln or "ERROR" in ln]

    noop, track, batch = phases["noop"], phases["track"], phases["batch"]
    fixed, noop_fixed = phases["track_fixed_rate"], phases["noop_fixed_rate"]
    result = {
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_at_end": os.getloadavg()[0],
                    "python": platform.python_version(), "platform": platform.platform()},
        "server": {"workers": settings.workers, "threads": settings.threads,
                   "group_commit_ms": settings.group_commit_ms},
        "load": {"threads": CONCURRENCY, "seconds_per_phase": DURATION, "batch_size": BATCH_SIZE},
        **phases,
        "after_shutdown": {"segments_left_open": still_open, "events_landed": landed,
                           "server_error_lines": len(server_errors)},
        "ratios": {
            "track_over_noop": track["req_per_s"] / noop["req_per_s"],
            "batch_events_over_single_events": batch["events_per_s"] / track["req_per_s"],
        },
    }
    print(f"server: gunicorn {settings.workers} workers x {settings.threads} threads; "
          f"load: {CONCURRENCY} keep-alive clients, {DURATION:g} s per phase, {os.cpu_count()} CPUs")
    print(f"  noop           {noop['req_per_s']:9.0f} req/s     p50 {noop['p50_ms']:6.1f} ms  "
          f"p99 {noop['p99_ms']:6.1f} ms")
    print(f"  /track         {track['req_per_s']:9.0f} events/s  p50 {track['p50_ms']:6.1f} ms  "
          f"p99 {track['p99_ms']:6.1f} ms  errors {track['errors']}")
    print(f"  /track/batch   {batch['events_per_s']:9.0f} events/s  "
          f"({batch['req_per_s']:.1f} req/s of {BATCH_SIZE}) "
          f"p50 {batch['p50_ms']:6.1f} ms  p99 {batch['p99_ms']:6.1f} ms  errors {batch['errors']}")
    print(f"  /track @ {FIXED_RATE:.0f}/s  achieved {fixed['achieved_req_per_s']:.0f}/s  "
          f"p50 {fixed['p50_ms']:6.1f} ms  "
          f"p99 {fixed['p99_ms']:6.1f} ms  errors {fixed['errors']}")
    print(f"  noop   @ {FIXED_RATE:.0f}/s  achieved {noop_fixed['achieved_req_per_s']:.0f}/s  "
          f"p50 {noop_fixed['p50_ms']:6.1f} ms  p99 {noop_fixed['p99_ms']:6.1f} ms  "
          "(this machine's latency floor)")
    by_round = [t / n for t, n in zip(track["req_per_s_by_round"], noop["req_per_s_by_round"], strict=True)]
    result["ratios"]["track_over_noop_by_round"] = [round(r, 3) for r in by_round]
    print(f"  track/noop by round {min(by_round):.2f}..{max(by_round):.2f} over {len(by_round)} rounds")
    if "server_cpu_us_per_request" in noop and "server_cpu_us_per_request" in track:
        cost = {name: phase["server_cpu_us_per_request"] + phase["client_cpu_us_per_request"]
                for name, phase in (("noop", noop), ("track", track))}
        # CPU-bound on a shared machine: throughput follows 1 / (server + client CPU per request).
        result["ratios"]["track_over_noop_by_cpu"] = cost["noop"] / cost["track"]
        print(f"  CPU per request (server + load generator): noop {noop['server_cpu_us_per_request']:.0f} + "
              f"{noop['client_cpu_us_per_request']:.0f} us, "
              f"/track {track['server_cpu_us_per_request']:.0f} + "
              f"{track['client_cpu_us_per_request']:.0f} us; "
              f"ratio {result['ratios']['track_over_noop_by_cpu']:.2f}")
    print(f"  ratio track/noop {result['ratios']['track_over_noop']:.2f}   "
          f"batch/single (events/s) {result['ratios']['batch_events_over_single_events']:.1f}")
    print(f"  after shutdown: {landed} events landed, {still_open} segments left open, "
          f"{len(server_errors)} error lines in the server log")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = options("ingest", __doc__)
    parser.add_argument("--loadgen", action="store_true", help="run the load generator (internal)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--key")
    parser.add_argument("--seconds", type=float, default=DURATION)
    parser.add_argument("--threads", type=int, default=CONCURRENCY)
    parser.add_argument("--server-pid", type=int, help="server process whose CPU (with its workers) to count")
    args = parser.parse_args(argv)
    if args.loadgen:
        print(json.dumps(loadgen(args.port, args.key, args.seconds, args.threads, args.server_pid)))
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
