"""ingest_api.asgi: the front hands the Flask app only whole requests; a body that does not come in time is
a JSON 408, one over the limit a JSON 413, in the path's contract shape, and the app never sees either."""

from __future__ import annotations

import asyncio
import json

import pytest

from ingest_api.asgi import BufferedBody, create_asgi_app


def run_http(app, path: str, messages: list[dict], *, gap: float = 0.0, headers=()) -> tuple[int, dict]:
    """Drive one HTTP request through an ASGI app; ``messages`` are the client's body messages."""
    sent: list[dict] = []
    queue = list(messages)

    async def receive():
        if queue:
            if gap:
                await asyncio.sleep(gap)
            return queue.pop(0)
        await asyncio.sleep(3600)  # the client says nothing more

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), *headers], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else {}


@pytest.fixture
def front(app):
    return create_asgi_app(app, app.extensions["turret"].settings)


def test_a_body_sent_in_pieces_reaches_the_app_whole(front, api_key, landed):
    event = {"name": "user_message", "metadata": {"prompt": "How do I reset my password?"}}
    body = json.dumps(event).encode()
    pieces = [{"type": "http.request", "body": body[i:i + 7], "more_body": i + 7 < len(body)}
              for i in range(0, len(body), 7)]
    headers = [(b"x-api-key", api_key.encode()), (b"content-length", str(len(body)).encode())]
    status, payload = run_http(front, "/track", pieces, headers=headers)
    assert status == 200 and payload["success"] is True
    assert [r["metadata"]["prompt"] for r in landed()] == ["How do I reset my password?"]


@pytest.mark.parametrize(("path", "shape"), [("/track", "error"), ("/api/analytics/events", "message")])
def test_a_body_that_does_not_arrive_in_time_is_a_json_408(path, shape):
    reached = []

    async def app(scope, receive, send):  # must never be called
        reached.append(scope)

    front = BufferedBody(app, max_body_bytes=1000, body_timeout=0.2)
    status, payload = run_http(front, path, [{"type": "http.request", "body": b"{", "more_body": True}])
    assert status == 408 and "did not arrive within 0.2 s" in payload[shape]
    assert reached == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_the_limit_is_a_json_413(app, api_key, landed, declared):
    settings = app.extensions["turret"].settings
    front = create_asgi_app(app, settings)
    chunk = b"x" * 65536
    pieces = [{"type": "http.request", "body": chunk, "more_body": True}
              for _ in range(settings.max_body_bytes // len(chunk) + 2)]
    headers = [(b"x-api-key", api_key.encode())]
    if declared:
        headers.append((b"content-length", str(len(chunk) * len(pieces)).encode()))
    status, payload = run_http(front, "/track", pieces, headers=headers)
    assert status == 413 and payload["success"] is False and "byte limit" in payload["error"]
    assert landed() == []
