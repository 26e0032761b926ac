"""A tiny OpenAI-compatible server for tests: ``POST /v1/chat/completions`` on 127.0.0.1, a free port.

It answers with the real response JSON shape, so tests drive the real ``openai`` client against it.
Behaviour is set per test:

- ``answer``: a string, or a callable(request_json) -> string, used as the assistant message content;
- ``fail_first``: answer HTTP 500 (an OpenAI-shaped error body) to the first N requests;
- ``status``: answer every request with this HTTP error status instead (permanent failure);
- ``hang_seconds``: sleep this long before answering (the client's timeout should fire first).

``requests`` keeps every request body received (parsed JSON), for assertions on what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_ANSWER = "LABEL: Password Reset Help\nDESCRIPTION: Users ask how to reset or recover their password."


class OpenAIStub:
    def __init__(
        self,
        answer: str | Callable[[dict], str] = GOOD_ANSWER,
        *,
        fail_first: int = 0,
        status: int | None = None,
        hang_seconds: float = 0.0,
        retry_after_ms: int | None = 10,
    ) -> None:
        self.answer = answer
        self.fail_first = fail_first
        self.status = status
        self.hang_seconds = hang_seconds
        # Sent with errors so the client's backoff waits milliseconds, not seconds, in tests.
        self.retry_after_ms = retry_after_ms
        self.requests: list[dict[str, Any]] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, _error("not found", "invalid_request_error"))
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, _error("invalid JSON body", "invalid_request_error"))
                    return
                with stub._lock:
                    stub.attempts += 1
                    attempt = stub.attempts
                    stub.requests.append(body)
                if stub.hang_seconds:
                    stub._stop.wait(stub.hang_seconds)
                retry = ({"retry-after-ms": str(stub.retry_after_ms)}
                         if stub.retry_after_ms is not None else {})
                if stub.status is not None:
                    self._send(stub.status, _error("permanent failure", "server_error"), retry)
                    return
                if attempt <= stub.fail_first:
                    self._send(500, _error("temporary failure", "server_error"), retry)
                    return
                content = stub.answer(body) if callable(stub.answer) else stub.answer
                self._send(200, _completion(body.get("model", "stub-model"), content))

        return Handler


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _completion(model: str, content: str) -> dict:
    return {
        "id": f"chatcmpl-stub{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    }
