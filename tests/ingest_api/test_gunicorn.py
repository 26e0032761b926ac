"""The app under the real server: `turret serve` (gunicorn, 2 workers) over real HTTP, then a graceful
stop that must seal every landing segment (worker_exit -> ingest_api.shutdown)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_turret_serve_round_trip_and_graceful_stop(settings, tmp_path):
    from turret.controlplane import ControlPlane
    from turret.landing import iter_open_segments, iter_sealed_segments, read_segment

    plane = ControlPlane.from_settings(settings)
    project, key = plane.create_project("served", "pro")
    plane.dispose()
    port = free_port()
    env = {**os.environ, "TURRET_PORT": str(port), "TURRET_WORKERS": "2", "TURRET_THREADS": "2"}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-c", "from turret.cli import main; main()", "serve"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        with requests.Session() as http:
            sent = []
            for i in range(20):  # keep-alive connections spread over both workers
                r = http.post(f"{base}/track", json={"name": "m", "metadata": {"prompt": f"q{i}"}},
                              headers={"X-API-Key": key}, timeout=10)
                assert r.status_code == 200, r.text
                sent.append(r.json()["event_id"])
            r = http.put(f"{base}/api/analytics/events",
                         json={"event_type": "search", "query": "q", "tokens": 1},
                         headers={"Authorization": f"Bearer {key}", "TR-Dataset": project.project_id},
                         timeout=10)
            assert r.status_code == 204 and r.content == b""
            # On a connection of its own: gunicorn drains at most 64 KiB of a body the app did not read and
            # then closes the connection, so a kept-alive one would race that close.
            r = requests.post(f"{base}/track", data="x" * (settings.max_body_bytes + 10),
                              headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=10)
            assert r.status_code == 413 and r.json()["code"] == "INVALID_REQUEST"
            assert http.post(f"{base}/bench/noop", json={}, timeout=10).status_code == 404
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    root = settings.landing_root
    assert list(iter_open_segments(root)) == []
    records = [line.record for seg in iter_sealed_segments(root) for line in read_segment(seg)]
    assert sorted(r["event_id"] for r in records if r["contract"] == "turret") == sorted(sent)
    assert [r["event_type"] for r in records if r["contract"] == "trieve"] == ["search"]
