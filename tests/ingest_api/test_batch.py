"""Contract tests for POST /track/batch: per-event results, one durable write, quota partial grants."""

from __future__ import annotations

import uuid

import pytest
from turret.settings import Settings

LIMITS = Settings()


def ev(i=0, **fields):
    event = {"name": "user_message", "metadata": {"prompt": f"question number {i}"}}
    event.update(fields)
    return event


def post(client, body, key):
    return client.post("/track/batch", json=body, headers={"X-API-Key": key})


def test_mixed_batch_results_in_order_and_records_match(client, api_key, landed):
    events = [ev(0, session_id="s1"), ev(1, name=""), ev(2), {"name": "x", "metadata": {"p": "a" * 10_001}},
              "no"]
    response = post(client, {"events": events}, api_key)
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is False and body["accepted"] == 2 and body["rejected"] == 3
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert [r["success"] for r in body["results"]] == [True, False, True, False, False]
    assert [r.get("code") for r in body["results"]] == [
        None, "MISSING_REQUIRED_FIELD", None, "TEXT_TOO_LONG", "INVALID_REQUEST"]
    assert body["results"][0]["session_id"] == "s1"
    assert uuid.UUID(body["results"][2]["session_id"]).version == 4
    records = landed()
    assert [r["event_id"] for r in records] == [
        body["results"][0]["event_id"], body["results"][2]["event_id"]
    ]
    assert [r["metadata"]["prompt"] for r in records] == ["question number 0", "question number 2"]
    assert records[0]["received_at"] == records[1]["received_at"]
    assert "X-RateLimit-Remaining" in response.headers


def test_all_valid_is_success_with_one_fsync(app, client, api_key, landed):
    events = [ev(i) for i in range(50)]
    body = post(client, {"events": events}, api_key).get_json()
    assert body["success"] is True and body["accepted"] == 50 and body["rejected"] == 0
    assert app.extensions["turret"].writer.fsyncs == 1
    assert len(landed()) == 50


def test_all_invalid_is_200_with_nothing_landed(client, api_key, landed):
    body = post(client, {"events": [ev(name=1), ev(metadata={})]}, api_key).get_json()
    assert body == {"success": False, "accepted": 0, "rejected": 2, "results": body["results"]}
    assert landed() == []


def test_batch_size_both_sides(client, api_key, landed):
    n = LIMITS.max_batch_events
    body = post(client, {"events": [ev(i) for i in range(n)]}, api_key).get_json()
    assert body["accepted"] == n
    response = post(client, {"events": [ev(i) for i in range(n + 1)]}, api_key)
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_REQUEST"
    assert f"{n + 1} items; the maximum is {n}" in response.get_json()["error"]
    assert len(landed()) == n


@pytest.mark.parametrize(
    "body, status, code, words",
    [
        ({}, 400, "MISSING_REQUIRED_FIELD", "events is required"),
        ({"events": None}, 400, "MISSING_REQUIRED_FIELD", "events is required"),
        ({"events": {"a": 1}}, 400, "INVALID_REQUEST", "array"),
        ({"events": []}, 400, "INVALID_REQUEST", "empty"),
        ([ev()], 400, "INVALID_REQUEST", "JSON object"),
        ({"events": [ev()], "extra": 1}, 400, "INVALID_REQUEST", "extra"),
    ],
)
def test_batch_level_errors(client, api_key, body, status, code, words):
    response = post(client, body, api_key)
    assert response.status_code == status
    assert response.get_json()["code"] == code and words in response.get_json()["error"]


def test_batch_bad_key(client):
    response = post(client, {"events": [ev()]}, "nope")
    assert response.status_code == 401 and response.get_json()["code"] == "INVALID_API_KEY"


def test_quota_partial_grant_then_429(client, control_plane, landed):
    _, key = control_plane.create_project("small", "enterprise", monthly_limit=3)
    body = post(client, {"events": [ev(0, name=""), ev(1), ev(2)]}, key).get_json()
    assert body["accepted"] == 2
    response = post(client, {"events": [ev(3), ev(4), ev(5)]}, key)
    body = response.get_json()
    assert response.status_code == 200
    assert [r["success"] for r in body["results"]] == [True, False, False]
    assert [r.get("code") for r in body["results"]][1:] == ["RATE_LIMIT_EXCEEDED"] * 2
    assert response.headers["X-RateLimit-Remaining"] == "0"
    response = post(client, {"events": [ev(6)]}, key)
    assert response.status_code == 429
    assert response.get_json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert len(landed()) == 3


def test_generated_ids_in_a_batch_are_distinct_uuid4s(client, api_key, landed):
    body = post(client, {"events": [ev(i) for i in range(100)]}, api_key).get_json()
    ids = [r[k] for r in body["results"] for k in ("session_id", "user_id")]
    assert len(set(ids)) == 200
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert all(r["session_id_generated"] and r["user_id_generated"] for r in landed())


def test_retried_events_are_answered_the_same_and_not_written_or_counted(client, control_plane, landed):
    _, key = control_plane.create_project("small", "enterprise", monthly_limit=3)
    first = post(client, {"events": [ev(0, event_id="a"), ev(1, event_id="b")]}, key).get_json()
    assert first["accepted"] == 2
    # A retry of the whole batch: both known, nothing written, no quota taken.
    again = post(client, {"events": [ev(0, event_id="a"), ev(1, event_id="b")]}, key)
    assert again.status_code == 200 and again.get_json() == first
    assert again.headers["X-RateLimit-Remaining"] == "1"
    # Known events plus a new one: the new one takes the last unit.
    mixed = post(client, {"events": [ev(0, event_id="a"), ev(2, event_id="c")]}, key).get_json()
    assert mixed["accepted"] == 2 and mixed["results"][0] == {**first["results"][0], "index": 0}
    # Quota used up: a known event is still answered as stored; a new one is refused.
    full = post(client, {"events": [ev(1, event_id="b"), ev(3, event_id="d")]}, key)
    assert full.status_code == 200
    assert [r["success"] for r in full.get_json()["results"]] == [True, False]
    assert full.get_json()["results"][1]["code"] == "RATE_LIMIT_EXCEEDED"
    assert [r["event_id"] for r in landed()] == ["a", "b", "c"]


def test_a_single_track_retry_of_a_batched_event_is_not_written(client, api_key, landed):
    body = post(client, {"events": [ev(0, event_id="k")]}, api_key).get_json()
    single = client.post("/track", json=ev(0, event_id="k"), headers={"X-API-Key": api_key}).get_json()
    assert single["session_id"] == body["results"][0]["session_id"]
    assert [r["event_id"] for r in landed()] == ["k"]
