"""`turret serve`: option checks, and a real gunicorn start and graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from turret import landing
from turret.cli import cli
from turret.controlplane import ControlPlane


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "0"], "0 is not in the range 1<=x<=65535"),
        (["--port", "http"], "'http' is not a valid integer"),
        (["--workers", "0"], "0 is not in the range 1<=x<=64"),
        (["--threads", "-1"], "-1 is not in the range 1<=x<=256"),
        (["--host", "bad host"], "--host 'bad host' is not a host name or address"),
    ],
)
def test_bad_options_are_refused_before_starting(turret_home, args, message):
    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_options_come_from_the_gunicorn_conf_and_the_command():
    from turret.cli.serve import build_options

    options = build_options("0.0.0.0", 9000, 3)
    assert options["bind"] == "0.0.0.0:9000" and options["workers"] == 3
    # asyncio workers: a slow client holds a connection slot, never one of the app's threads.
    assert options["worker_class"] == "asgi" and options["worker_connections"] >= 200
    assert options["preload_app"] is False
    assert callable(options["worker_exit"]) and callable(options["on_starting"])


@pytest.mark.skipif(not __import__("importlib").util.find_spec("ingest_api"), reason="needs ingest_api")
def test_serve_starts_gunicorn_and_stops_cleanly_on_sigterm(turret_home, tmp_path):
    env = {k: v for k, v in os.environ.items()}
    plane = ControlPlane(f"sqlite:///{turret_home / 'control.db'}")
    project, key = plane.create_project("demo", "pro")  # blocks of 1,000 units per worker
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "turret"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(script), "serve", "--port", str(port), "--workers", "2", "--threads", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        ids = []
        for i in range(10):
            resp = requests.post(url + "/track", json={"name": "q", "metadata": {"prompt": f"hello {i}"}},
                                 headers={"X-API-Key": key}, timeout=10)
            assert resp.status_code == 200, resp.text
            ids.append(resp.json()["event_id"])
        assert plane.usage(project) >= 1000  # at least one lease is out
        assert list(landing.iter_open_segments(turret_home / "landing"))
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert rc == 0, output
    assert "Starting Turret ingest API on http://127.0.0.1:" in output
    assert "Turret ingest API ready on" in output
    # Graceful stop: segments sealed, unused leases returned.
    assert list(landing.iter_open_segments(turret_home / "landing")) == []
    landed = [rec.record["event_id"] for s in landing.iter_sealed_segments(turret_home / "landing")
              for rec in landing.read_segment(s)]
    assert sorted(landed) == sorted(ids)
    assert plane.usage(project) == 10
    plane.dispose()
