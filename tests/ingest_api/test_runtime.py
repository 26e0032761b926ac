"""Storage failure, quota, project isolation, health, shutdown and the bench-only endpoint."""

from __future__ import annotations

import shutil

from turret.settings import Settings

EVENT = {"name": "user_message", "metadata": {"prompt": "hello"}}


def track(client, key, body=EVENT):
    return client.post("/track", json=body, headers={"X-API-Key": key})


def break_landing_root(app):
    """Replace the landing directory with a plain file: nothing can be written under it."""
    root = app.extensions["turret"].settings.landing_root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a directory\n")
    return root


def test_landing_failure_is_503_with_retry_after(app, client, api_key):
    break_landing_root(app)
    response = track(client, api_key)
    assert response.status_code == 503
    body = response.get_json()
    assert body["success"] is False and body["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) > 0
    batch = client.post("/track/batch", json={"events": [EVENT, EVENT]}, headers={"X-API-Key": api_key})
    assert batch.status_code == 503 and batch.get_json()["code"] == "SERVICE_UNAVAILABLE"


def test_trieve_landing_failure_is_503(app, client, project, api_key):
    break_landing_root(app)
    response = client.put("/api/analytics/events", json={"event_type": "search", "query": "q", "tokens": 1},
                          headers={"Authorization": api_key, "TR-Dataset": project.project_id})
    assert response.status_code == 503 and set(response.get_json()) == {"message"}


def test_health_ok_and_unavailable(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok",
                                   "checks": {"landing": {"ok": True}, "control_plane": {"ok": True}}}
    break_landing_root(app)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["landing"]["ok"] is False
    assert "not writable" in body["checks"]["landing"]["error"] and body["checks"]["control_plane"]["ok"]


def unreachable_database(tmp_path):
    """A SQLite URL under a plain file: the control plane cannot open it."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory\n")
    return f"sqlite:///{blocker}/control.db"


def test_health_control_plane_unreachable(make_app, tmp_path):
    app = make_app(database_url=unreachable_database(tmp_path))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["control_plane"]["ok"] is False


def test_unreachable_control_plane_is_503_not_500(make_app, tmp_path):
    app = make_app(database_url=unreachable_database(tmp_path))
    response = track(app.test_client(), "trt_" + "a" * 40)
    assert response.status_code == 503 and response.get_json()["code"] == "SERVICE_UNAVAILABLE"


def test_quota_exhausted_is_429_with_headers(client, control_plane, landed):
    _, key = control_plane.create_project("tiny", "enterprise", monthly_limit=1)
    assert track(client, key).status_code == 200
    response = track(client, key)
    assert response.status_code == 429
    assert response.get_json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert response.headers["X-RateLimit-Limit"] == "1" and response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["Retry-After"]) >= 1 and int(response.headers["X-RateLimit-Reset"]) > 0
    assert len(landed()) == 1


def test_project_isolation(client, control_plane, landed):
    a, key_a = control_plane.create_project("project-a", "pro")
    b, key_b = control_plane.create_project("project-b", "pro")
    assert track(client, key_a, {"name": "n", "metadata": {"p": "from a"}}).status_code == 200
    assert track(client, key_b, {"name": "n", "metadata": {"p": "from b"}}).status_code == 200
    search = {"event_type": "search", "query": "from a via trieve", "tokens": 1}
    for dataset in (b.project_id, b.name):  # A's key naming B's dataset, by id and by tracking id
        refused = client.put("/api/analytics/events", json=search,
                             headers={"Authorization": key_a, "TR-Dataset": dataset})
        assert refused.status_code == 400
        assert "not the project of this API key" in refused.get_json()["message"]
    by_project = {}
    for record in landed():
        by_project.setdefault(record["project_id"], []).append(record["metadata"]["p"])
    assert by_project == {a.project_id: ["from a"], b.project_id: ["from b"]}


def test_shutdown_seals_and_is_idempotent(make_app, turret_home):
    from turret.landing import iter_open_segments, iter_sealed_segments

    from ingest_api import shutdown

    app = make_app()
    _, key = app.extensions["turret"].control_plane.create_project("p", "pro")
    assert track(app.test_client(), key).status_code == 200
    root = app.extensions["turret"].settings.landing_root
    assert list(iter_open_segments(root)) and not list(iter_sealed_segments(root))
    shutdown(app)
    shutdown(app)
    assert not list(iter_open_segments(root)) and len(list(iter_sealed_segments(root))) == 1


def test_bench_endpoint_only_when_enabled(make_app, monkeypatch):
    assert make_app().test_client().post("/bench/noop", json={}).status_code == 404
    monkeypatch.setenv("TURRET_BENCH_ENDPOINTS", "1")
    app = make_app()
    response = app.test_client().post("/bench/noop", json={"a": 1})
    assert response.status_code == 200 and response.get_json()["success"] is True
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert "/bench/noop" not in paths


def test_limits_come_from_settings(make_app):
    app = make_app(max_text_length=5, max_body_bytes=300)
    _, key = app.extensions["turret"].control_plane.create_project("p", "pro")
    client = app.test_client()
    assert track(client, key, {"name": "n", "metadata": {"p": "12345"}}).status_code == 200
    assert track(client, key, {"name": "n", "metadata": {"p": "123456"}}).status_code == 413
    big = {"name": "n", "metadata": {"p": "1", "pad": "x" * 300}}
    response = track(client, key, big)
    assert response.status_code == 413 and "exceeds 300 bytes" in response.get_json()["error"]
    doc = client.get("/openapi.json").get_json()
    text = doc["components"]["schemas"]["TrackEvent"]["properties"]["metadata"]["additionalProperties"]
    assert text["anyOf"][0]["maxLength"] == 5
    assert Settings().max_text_length != 5
