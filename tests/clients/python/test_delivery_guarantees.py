"""What the client promises when things go wrong, against a real ``turret serve``: a SIGKILL of the whole
server mid-stream, a project out of quota, a fork, an interpreter exit without ``flush()``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import turret_sdk
from turret_sdk import Client


def test_sigkill_of_the_server_mid_stream_loses_nothing_acknowledged_and_stores_nothing_twice(make_turret):
    turret = make_turret()
    acknowledged: list[str] = []
    client = Client(turret.key, host=turret.url, batch_size=50, flush_interval=0.05, max_queue_size=100_000,
                    backoff_base=0.02, backoff_max=0.2, breaker_threshold=5, breaker_cooldown=0.5,
                    on_delivered=lambda results: acknowledged.extend(r.event_id for r in results))
    tracked: list[str] = []
    stop = threading.Event()

    def app() -> None:  # an app tracking steadily, unaware of the server's fate
        i = 0
        while not stop.is_set():
            tracked.append(client.track("user_message", {"prompt": f"message {i}"}, session_id=f"s{i % 7}"))
            i += 1
            if i % 10 == 0:
                time.sleep(0.005)  # about 2,000 events/s: a busy app, and a test that stays short

    producer = threading.Thread(target=app)
    producer.start()
    deadline = time.monotonic() + 60  # a busy machine is slow to start
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    acked_before_kill = len(acknowledged)
    turret.kill()  # SIGKILL to gunicorn's master and workers at once, batches in flight
    deadline = time.monotonic() + 30
    while client.stats().breaker_opened == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    during = client.stats()
    assert during.breaker_opened >= 1, during  # connection refused again and again: the breaker opened
    turret.start()  # same port; the restart seals the dead workers' segments
    time.sleep(1.0)
    stop.set()
    producer.join()
    assert client.flush(120), client.stats()
    stats = client.stats()
    turret.stop()

    assert acked_before_kill >= 200
    assert stats.dropped == 0 and stats.rejected == 0
    assert stats.delivered == len(tracked) == len(set(tracked))
    assert len(acknowledged) == len(set(acknowledged)), "an event was acknowledged twice"
    assert set(acknowledged) == set(tracked)
    landed = turret.landed()
    assert set(landed) == set(tracked), "an acknowledged event is missing, or a stranger landed"
    # A batch the dead server had fsynced without answering was sent again and landed again under the same
    # event_id (the loader keeps one). That can only be the batches in flight at the kill.
    twice = [e for e, n in landed.items() if n > 1]
    assert len(twice) <= client.max_in_flight * client.batch_size, len(twice)
    assert all(n <= 2 for n in landed.values())
    print(f"tracked {len(tracked)}, acknowledged before the kill {acked_before_kill}, landed twice "
          f"{len(twice)}, requests {stats.requests}, retries {stats.retries}")


def test_quota_refusals_wait_for_the_reset_and_nothing_beyond_the_quota_lands(make_turret):
    limit = 300
    turret = make_turret("--plan", "pro", "--monthly-limit", str(limit))
    acknowledged: list[str] = []
    client = Client(turret.key, host=turret.url, batch_size=100, backoff_base=0.01,
                    on_delivered=lambda results: acknowledged.extend(r.event_id for r in results))
    tracked = [client.track("user_message", {"prompt": f"over quota {i}"}) for i in range(500)]
    assert not client.flush(5)  # the rest waits for the quota period to reset
    time.sleep(0.5)
    stats = client.stats()
    time.sleep(1.5)
    later = client.stats()
    # Retry-After (the end of the month) is honoured: no request is sent in the meantime.
    assert later.requests == stats.requests
    assert stats.rejected == 0
    assert limit * 0.95 <= stats.delivered <= limit  # several workers each hold a share of the quota
    assert len(acknowledged) == len(set(acknowledged)) == stats.delivered
    assert not client.shutdown(timeout=0.5)
    assert client.stats().dropped == len(tracked) - stats.delivered  # counted, never silent
    turret.stop()
    landed = turret.landed()
    assert set(landed) == set(acknowledged), "only acknowledged events are stored"
    assert all(n == 1 for n in landed.values())


def test_a_forked_child_sends_its_own_events_and_never_the_parents(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url, flush_interval=60)
    parent_ids = [client.track("user_message", {"prompt": f"parent {i}"}) for i in range(50)]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: new queue, new threads, new id prefix
        try:
            os.close(read_end)
            child_ids = [client.track("user_message", {"prompt": f"child {i}"}) for i in range(10)]
            ok = client.flush(120)
            stats = client.stats()
            report = {"ok": ok, "ids": child_ids, "delivered": stats.delivered}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        child = json.loads(fh.read())
    os.waitpid(pid, 0)
    assert client.flush(120)
    assert child["ok"] and child["delivered"] == 10  # not 60: the parent's queued events stayed the parent's
    assert client.stats().delivered == 50
    assert child["ids"][0][:24] != parent_ids[0][:24]  # a different id prefix in the child
    landed = shared_turret.landed()
    assert all(landed[e] == 1 for e in parent_ids + child["ids"])
    client.shutdown()


def test_events_queued_at_interpreter_exit_are_delivered(shared_turret, tmp_path):
    script = tmp_path / "app.py"
    script.write_text(
        "import sys, turret_sdk\n"
        "client = turret_sdk.Client(sys.argv[1], host=sys.argv[2], flush_interval=60, shutdown_timeout=60)\n"
        "print(' '.join(client.track('user_message', {'prompt': f'exit {i}'}) for i in range(30)))\n"
    )
    out = subprocess.run([sys.executable, str(script), shared_turret.key, shared_turret.url],
                         capture_output=True, text=True, timeout=60, env={**os.environ})
    assert out.returncode == 0, out.stderr
    ids = out.stdout.split()
    assert len(ids) == 30
    landed = shared_turret.landed()
    assert all(landed[e] == 1 for e in ids), "the exit hook did not deliver the queue"


def test_the_package_says_it_is_typed():
    from importlib import resources

    assert resources.files(turret_sdk).joinpath("py.typed").is_file()
