"""Errors gunicorn answers itself, before the app sees a request (a malformed request line, headers over
the limits), are JSON like every other error of the API, under the real `turret serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.ingest_api.test_gunicorn import free_port


@pytest.fixture
def served(settings, tmp_path):
    port = free_port()
    env = {**os.environ, "TURRET_PORT": str(port), "TURRET_WORKERS": "1", "TURRET_THREADS": "2"}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-c", "from turret.cli import main; main()", "serve"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NOT A VALID REQUEST LINE\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
], ids=["bad-request-line", "header-too-large", "uri-too-long"])
def test_gunicorns_own_errors_are_json(served, request_bytes, status):
    got, headers, body = raw_exchange(served, request_bytes)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["success"] is False and payload["code"] == "INVALID_REQUEST" and payload["error"]
