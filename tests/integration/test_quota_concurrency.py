"""Quota under concurrency: a multi-process server never accepts more than the limit, and not much less.

A project with an explicit limit of 2,000 events; 16 client threads send 4,000 single events at once to a
real ``turret serve`` with several worker processes, each holding its own quota lease.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import threading
import time
from pathlib import Path

import pytest
import requests

pytest.importorskip("ingest_api")

# The server helpers live beside this file; loaded by path so any pytest import mode works.
_spec = importlib.util.spec_from_file_location("_durability_helpers",
                                               Path(__file__).with_name("test_durability.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
ServeProcess, turret, turret_env = _helpers.ServeProcess, _helpers.turret, _helpers.turret_env

from turret import landing  # noqa: E402
from turret.controlplane import ControlPlane  # noqa: E402

LIMIT = 2_000


@pytest.mark.slow
def test_quota_is_shared_by_every_worker_and_never_exceeded(tmp_path):
    home = tmp_path / "home"
    env = turret_env(home)
    out = turret(env, "projects", "create", "capped", "--plan", "pro", "--monthly-limit", str(LIMIT))
    key = out.strip().splitlines()[-1]
    server = ServeProcess(env, tmp_path / "serve.log", workers=3, threads=8)

    tickets = itertools.count()
    statuses: collections.Counter = collections.Counter()
    rejections: list[requests.Response] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        session = requests.Session()
        while next(tickets) < 2 * LIMIT:
            resp = session.post(
                server.url + "/track",
                json={"name": "user_prompt", "metadata": {"prompt": f"client {i} asks something"}},
                headers={"X-API-Key": key},
                timeout=30,
            )
            with lock:
                statuses[resp.status_code] += 1
                if resp.status_code == 429 and len(rejections) < 50:
                    rejections.append(resp)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.terminate() == 0

    accepted = statuses[200]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] + statuses[429] == 2 * LIMIT
    assert accepted <= LIMIT * 1.001, statuses
    assert accepted >= LIMIT * 0.95, statuses

    for resp in rejections:
        body = resp.json()
        assert body["code"] == "RATE_LIMIT_EXCEEDED"
        assert int(resp.headers["Retry-After"]) > 0
        assert resp.headers["X-RateLimit-Limit"] == str(LIMIT)
        assert resp.headers["X-RateLimit-Remaining"] == "0"
        assert int(resp.headers["X-RateLimit-Reset"]) > time.time()

    # Every accepted event is in the landing store; the shared count holds them all, and stopping the server
    # gave its unused leases back.
    landed = sum(1 for s in landing.iter_sealed_segments(home / "landing") for line in landing.read_segment(s)
                 if line.error is None)
    assert landed == accepted
    plane = ControlPlane(f"sqlite:///{home / 'control.db'}")
    usage = plane.usage(plane.get_project("capped"))
    plane.dispose()
    assert accepted <= usage <= LIMIT
    print(f"accepted {accepted} of {2 * LIMIT} (limit {LIMIT}), counted {usage}")
