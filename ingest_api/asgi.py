"""The ingest app behind an asyncio front: no slow client can hold a thread.

gunicorn's ``asgi`` worker reads every connection in one event loop, so a client that sends its headers a
byte a second holds a connection slot (``worker_connections``), never a thread. :class:`BufferedBody` then
reads the whole body in the event loop too, within ``body_timeout`` seconds and ``max_body_bytes``, and only
a complete request reaches the Flask app, run on a pool of ``threads`` threads by a2wsgi (the landing
writer's group commit needs concurrent threads). A body that does not arrive in time is answered 408, one
over the limit (by its Content-Length, or as it streams in) 413, both as JSON in the path's contract shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from flask import Flask
from turret.settings import Settings

from .errors import TRIEVE_PREFIX

# How long a client may take to send a request body once its headers are in.
BODY_TIMEOUT_SECONDS = 10.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BufferedBody:
    """ASGI middleware: hand ``app`` an HTTP request only once its whole body is in memory."""

    def __init__(self, app: Any, *, max_body_bytes: int, body_timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body is over the {self.max_body_bytes} byte limit"
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _error(send, scope, 413, too_large)  # refused before it is read
        chunks: list[bytes] = []
        try:
            outcome = await asyncio.wait_for(self._read(receive, chunks), self.body_timeout)
        except TimeoutError:
            late = f"the request body did not arrive within {self.body_timeout:g} s"
            return await _error(send, scope, 408, late)
        if outcome == "disconnected":
            return None
        if outcome == "over the limit":
            return await _error(send, scope, 413, too_large)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> str:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return "disconnected"
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes:
                return "over the limit"
            if not message.get("more_body", False):
                return "complete"


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the Flask app opens its resources lazily and gunicorn's hooks close them."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _error(send: Send, scope: Scope, status: int, message: str) -> None:
    """An error in the shape of the path's contract (ingest_api.errors): Trieve's or Turret's."""
    if scope.get("path", "").startswith(TRIEVE_PREFIX):
        payload: dict[str, Any] = {"message": message}
    else:
        payload = {"success": False, "error": message, "code": "INVALID_REQUEST"}
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


def create_asgi_app(flask_app: Flask | None = None, settings: Settings | None = None) -> BufferedBody:
    """The ingest app as served: :func:`ingest_api.create_app` on ``threads`` threads behind
    :class:`BufferedBody`. ``.flask_app`` is the Flask app (gunicorn's ``worker_exit`` hook closes it)."""
    from a2wsgi import WSGIMiddleware

    from . import create_app

    settings = settings or Settings.from_env()
    flask_app = flask_app or create_app({"settings": settings})
    front = BufferedBody(WSGIMiddleware(flask_app, workers=settings.threads),
                         max_body_bytes=settings.max_body_bytes)
    front.flask_app = flask_app  # type: ignore[attr-defined]
    return front
