"""One keep-alive HTTP connection to the ingest API (the standard library's ``http.client``)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import __version__

USER_AGENT = f"turret-sdk-python/{__version__}"


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, headers (lower-case names), the parsed JSON body (``None`` if not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


class TransportError(OSError):
    """The request got no HTTP answer: connection refused or reset, timeout, a malformed answer."""


class Transport:
    """POSTs JSON to ``host``; reconnects after any failure. Not thread-safe: one per sending thread."""

    def __init__(self, host: str, api_key: str, timeout: float) -> None:
        parts = urlsplit(host if "://" in host else f"http://{host}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"host must be an http:// or https:// URL, got {host!r}")
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {
            "X-API-Key": api_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._hostname, self._port, timeout=self._timeout)
        return self._conn

    def post(self, path: str, body: bytes) -> Response:
        """Send ``body`` (encoded JSON); raise :class:`TransportError` when no HTTP answer came back."""
        conn = self._connect()
        try:
            conn.request("POST", self._prefix + path, body=body, headers=self._headers)
            answer = conn.getresponse()
            raw = answer.read()
            headers = {k.lower(): v for k, v in answer.getheaders()}
            if answer.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors too
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Response(answer.status, headers, parsed)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
