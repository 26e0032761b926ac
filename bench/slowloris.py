"""Slow clients against the real server (``python -m bench slowloris``).

``turret serve`` (2 workers) over a temporary TURRET_HOME. First ``/track`` latency alone (the baseline),
then the same requests while 200 other sockets each send one byte a second, half of them dribbling their
headers, half a declared 100 kB body. The server reads every connection in an event loop and hands the app
only whole requests (``ingest_api.asgi``), so the slow sockets should cost nothing: the figure is the ratio
of ``/track``'s p50 and p99 under the slow sockets to the baseline's, measured in the same run. Writes
bench/results/slowloris.json. ``tests/ingest_api/test_slow_clients.py`` (marker ``load``) runs the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import options

SLOW_SOCKETS = 200
REQUESTS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``turret serve`` on a free port over ``home``, with one project; ``stop()`` ends it."""

    def __init__(self, home: Path, workers: int = 2) -> None:
        from turret.controlplane import ControlPlane
        from turret.settings import Settings

        env = {**os.environ, "TURRET_HOME": str(home), "TURRET_WORKERS": str(workers)}
        plane = ControlPlane.from_settings(Settings.from_env(env))
        _, self.key = plane.create_project("slow-clients", "pro")
        plane.dispose()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(home / "serve.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from turret.cli import main; main()", "serve", "--port", str(self.port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turret serve exited: {(home / 'serve.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("turret serve did not become healthy")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


class SlowClients:
    """``n`` sockets sending one byte a second: even ones a request's headers, odd ones a declared body."""

    def __init__(self, port: int, n: int = SLOW_SOCKETS) -> None:
        self.port, self.n = port, n
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._dribble, args=(i,), daemon=True) for i in range(n)]
        self.connected = 0
        self._lock = threading.Lock()

    def __enter__(self) -> SlowClients:
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 30
        while self.connected < self.n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # a couple of bytes each
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()

    def _dribble(self, i: int) -> None:
        if i % 2:
            head = (b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n")
            trickle = b"x" * 100_000
        else:
            head, trickle = b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                sock.sendall(head)
                with self._lock:
                    self.connected += 1
                for byte in trickle:
                    if self.stopping.wait(1.0):
                        return
                    sock.send(bytes([byte]))
        except OSError:
            return  # the server closed it (a read timeout): that is allowed


def track_latencies(server: Server, n: int = REQUESTS) -> list[float]:
    """Seconds per ``POST /track`` on one keep-alive connection, each answered 200."""
    out = []
    with requests.Session() as http:
        for i in range(n):
            started = time.perf_counter()
            r = http.post(f"{server.base}/track", json={"name": "m", "metadata": {"prompt": f"question {i}"}},
                          headers={"X-API-Key": server.key}, timeout=60)
            out.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"/track answered {r.status_code}: {r.text[:200]}")
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(home: Path) -> dict:
    server = Server(home)
    try:
        track_latencies(server, 20)  # warm up both workers
        alone = track_latencies(server)
        with SlowClients(server.port):
            slowed = track_latencies(server)
    finally:
        server.stop()
    figures = {
        "slow_sockets": SLOW_SOCKETS, "requests": REQUESTS,
        "alone_p50_ms": quantile(alone, 0.5) * 1e3, "alone_p99_ms": quantile(alone, 0.99) * 1e3,
        "slow_p50_ms": quantile(slowed, 0.5) * 1e3, "slow_p99_ms": quantile(slowed, 0.99) * 1e3,
    }
    figures["p50_ratio"] = figures["slow_p50_ms"] / figures["alone_p50_ms"]
    figures["p99_ratio"] = figures["slow_p99_ms"] / figures["alone_p99_ms"]
    return figures


def main(argv: list[str] | None = None) -> int:
    options("slowloris", __doc__).parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(Path(tmp))
    for key, value in figures.items():
        print(f"{key:>14}: {value:.2f}" if isinstance(value, float) else f"{key:>14}: {value}")
    out = Path(__file__).parent / "results" / "slowloris.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
