"""The Python client against a real ``turret serve``: batching, ids, rejections, queue bounds, sync mode.

Every test reads back what the server stored (the landing store) rather than trusting the client's counters.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import turret_sdk
from turret_sdk import CircuitOpenError, Client, TurretError


def unreachable() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_track_returns_at_once_and_the_batches_land_with_the_client_ids(shared_turret):
    delivered: list[turret_sdk.TrackResult] = []
    client = Client(shared_turret.key, host=shared_turret.url, batch_size=50, on_delivered=delivered.extend)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = [client.track("user_message", {"prompt": f"question {i}", "n": i}, session_id="conv-1",
                        user_id="u-1", timestamp=when) for i in range(120)]
    assert client.flush(30)
    stats = client.stats()
    assert stats.delivered == 120 and stats.rejected == stats.dropped == 0
    assert stats.requests == 3  # 50 + 50 + 20: batched, not one request per event
    assert len(set(ids)) == 120 and all(i.startswith("evt_") and len(i) == 36 for i in ids)
    assert [r.event_id for r in sorted(delivered, key=lambda r: ids.index(r.event_id))] == ids
    records = shared_turret.records()
    for i, event_id in enumerate(ids):
        record = records[event_id]
        assert record["session_id"] == "conv-1" and record["user_id"] == "u-1"
        assert record["metadata"] == {"prompt": f"question {i}", "n": i}
        assert record["timestamp"].startswith("2026-01-02T03:04:05")
    client.shutdown()


def test_an_event_waits_at_most_the_flush_interval(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url, flush_interval=0.2)
    event_id = client.track("user_message", {"prompt": "alone in its batch"})
    deadline = time.monotonic() + 10
    while client.stats().delivered == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.stats().delivered == 1  # without flush(): the interval sent it
    assert event_id in shared_turret.landed()
    client.shutdown()


def test_the_event_time_is_when_track_was_called(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url, flush_interval=5)
    before = datetime.now(UTC)
    event_id = client.track("user_message", {"prompt": "stamped now"})
    after = datetime.now(UTC)
    time.sleep(0.3)
    assert client.flush(30)
    stamped = datetime.fromisoformat(shared_turret.records()[event_id]["timestamp"])
    assert before <= stamped <= after
    client.shutdown()


def test_a_refused_event_is_reported_once_and_never_sent_again(shared_turret, caplog):
    rejected: list[turret_sdk.Rejection] = []
    client = Client(shared_turret.key, host=shared_turret.url, on_rejected=rejected.extend)
    good = client.track("user_message", {"prompt": "fine"})
    nested = client.track("user_message", {"prompt": "fine", "extra": {"nested": 1}})  # type: ignore[dict-item]
    no_text = client.track("user_message", {"count": 3})
    unencodable = client.track("user_message", {"prompt": "x", "when": datetime.now(UTC)})  # type: ignore[dict-item]
    with caplog.at_level(logging.WARNING, logger="turret_sdk"):
        assert client.flush(30)
        time.sleep(1.0)  # long enough for any retry to have happened
    stats = client.stats()
    assert stats.delivered == 1 and stats.rejected == 3
    assert stats.requests == 1 and stats.retries == 0
    codes = {r.event_id: r.code for r in rejected}
    assert codes == {nested: "INVALID_REQUEST", no_text: "MISSING_REQUIRED_FIELD",
                     unencodable: "INVALID_REQUEST"}
    assert "metadata.extra" in caplog.text
    landed = shared_turret.landed()
    assert landed[good] == 1 and not {nested, no_text, unencodable} & set(landed)
    client.shutdown()


def test_a_bad_api_key_is_not_retried(shared_turret, caplog):
    client = Client("trt_not-a-key", host=shared_turret.url)
    client.track("user_message", {"prompt": "hello"})
    with caplog.at_level(logging.ERROR, logger="turret_sdk"):
        assert client.flush(30)
    stats = client.stats()
    assert (stats.delivered, stats.rejected, stats.requests) == (0, 1, 1)
    assert "API key was refused" in caplog.text
    client.shutdown()


def test_a_full_queue_drops_new_events_with_a_counter_and_a_warning(caplog):
    # The server is unreachable: the queue holds 5, the one sender may hold a batch of 5 it keeps retrying.
    client = Client("trt_x", host=unreachable(), max_queue_size=5, batch_size=5, max_in_flight=1)
    with caplog.at_level(logging.WARNING, logger="turret_sdk"):
        for i in range(20):
            client.track("user_message", {"prompt": f"m{i}"})
    stats = client.stats()
    assert 10 <= stats.dropped <= 15 and stats.queued <= 5, stats
    assert "queue is full (5 events)" in caplog.text
    assert not client.shutdown(timeout=0.2)  # could not deliver: the rest counts as dropped
    assert client.stats().dropped == 20
    assert client.track("user_message", {"prompt": "after shutdown"}).startswith("evt_")
    assert client.stats().dropped == 21


def test_block_mode_waits_for_room_instead_of_dropping(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url, max_queue_size=5, batch_size=5, block=True)
    ids = [client.track("user_message", {"prompt": f"blocking {i}"}) for i in range(200)]
    assert client.flush(30)
    assert client.stats().dropped == 0 and client.stats().delivered == 200
    landed = shared_turret.landed()
    assert all(landed[i] == 1 for i in ids)
    client.shutdown()


def test_conversation_keeps_the_ids_the_server_generated(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url)
    chat = client.conversation()
    first = chat.track("user_message", {"prompt": "Can I export my data?"})
    assert chat.session_id and chat.user_id  # returned by the server for the first event
    rest = [chat.track("user_message", {"prompt": f"follow-up {i}"}) for i in range(3)]
    assert client.flush(30)
    records = shared_turret.records()
    assert {records[e]["session_id"] for e in [first, *rest]} == {chat.session_id}
    assert {records[e]["user_id"] for e in [first, *rest]} == {chat.user_id}
    known = client.conversation(session_id="conv-9", user_id="user-9")
    event = known.track("user_message", {"prompt": "mine"})
    assert client.flush(30)
    assert shared_turret.records()[event]["session_id"] == "conv-9"
    client.shutdown()


def test_conversation_falls_back_to_local_ids_when_the_server_is_down():
    client = Client("trt_x", host=unreachable(), send_retries=0, flush_interval=60)
    chat = client.conversation(user_id="user-1")
    chat.track("user_message", {"prompt": "hello?"})
    assert chat.user_id == "user-1" and len(chat.session_id) == 36
    assert client.stats().queued == 1
    client.shutdown(timeout=0)


def test_sync_mode_sends_before_returning(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url, sync=True)
    result = client.send("search", {"query": "red shoes"}, user_id="shopper")
    assert result.user_id == "shopper" and result.session_id  # generated by the server
    assert shared_turret.landed()[result.event_id] == 1  # on disk when send() returned
    event_id = client.track("search", {"query": "blue shoes"})
    assert shared_turret.landed()[event_id] == 1  # no flush: track() itself sent it
    with pytest.raises(TurretError) as refused:
        client.send("search", {"query": "x", "bad": [1]})  # type: ignore[dict-item]
    assert refused.value.status == 400 and refused.value.code == "INVALID_REQUEST"
    assert client.stats().requests == 3  # the 400 was not retried
    assert client._thread is None  # no background thread in sync mode


def test_sync_mode_retries_then_fails_fast_while_the_breaker_is_open():
    client = Client("trt_x", host=unreachable(), sync=True, send_retries=1, backoff_base=0.01,
                    breaker_threshold=4, breaker_cooldown=60)
    for _ in range(2):
        with pytest.raises(TurretError, match="not delivered"):
            client.send("search", {"query": "down"})
    assert client.stats().requests == 4 and client.stats().breaker == "open"
    with pytest.raises(CircuitOpenError):
        client.send("search", {"query": "down"})
    assert client.stats().requests == 4  # refused without a request
    client.track("search", {"query": "never raises"})  # sync track() logs instead of raising
    assert client.stats().requests == 4
    assert client.stats().dropped == 1  # counted, not silent


def test_the_breaker_opens_while_the_server_is_down_and_a_trial_closes_it(make_turret):
    turret = make_turret(start=False)
    client = Client(turret.key, host=turret.url, backoff_base=0.01, backoff_max=0.05,
                    breaker_threshold=3, breaker_cooldown=1.5, flush_interval=0.05)
    ids = [client.track("user_message", {"prompt": f"waiting {i}"}) for i in range(10)]
    deadline = time.monotonic() + 10
    while client.stats().breaker != "open" and time.monotonic() < deadline:
        time.sleep(0.01)
    opened = client.stats()
    assert opened.breaker == "open" and opened.breaker_opened == 1
    time.sleep(0.5)
    assert client.stats().requests == opened.requests  # nothing sent while open
    turret.start()
    assert client.flush(30)
    assert client.stats().breaker == "closed" and client.stats().delivered == 10
    assert all(turret.landed()[i] == 1 for i in ids)
    client.shutdown()


def test_concurrent_app_threads_share_one_client(shared_turret):
    client = Client(shared_turret.key, host=shared_turret.url)
    ids: list[str] = []
    lock = threading.Lock()

    def app_thread(n: int) -> None:
        mine = [client.track("user_message", {"prompt": f"thread {n} event {i}"}) for i in range(250)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=app_thread, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.shutdown(30)
    assert len(set(ids)) == 1000 and client.stats().delivered == 1000
    landed = shared_turret.landed()
    assert all(landed[i] == 1 for i in ids)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"flush_interval": 0}, {"max_queue_size": 0},
                                    {"max_in_flight": 0}, {"host": "ftp://x"}])
def test_settings_are_checked_when_the_client_is_made(kwargs):
    with pytest.raises(ValueError):
        Client("trt_x", **kwargs)


def test_metadata_must_be_a_mapping():
    client = Client("trt_x", host=unreachable())
    with pytest.raises(TypeError, match="metadata must be a mapping"):
        client.track("user_message", ["not", "a", "mapping"])  # type: ignore[arg-type]
