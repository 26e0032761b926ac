"""gunicorn configuration and hooks for ``turret serve`` (also usable as ``-c python:turret.gunicorn_conf``).

asyncio workers (gunicorn's ``asgi`` worker) in several processes, each reading every connection in one
event loop, so a client that sends slowly holds a connection slot, never a thread; a request reaches the
Flask app only once its body is in (``ingest_api.asgi``), and runs there on a pool of ``TURRET_THREADS``
threads: a request mostly waits for the landing store's ``fsync``, which concurrent threads of one worker
share (group commit). ``preload_app`` stays off so each worker builds its own app, landing writer and
quota gate after the fork.

Hooks:

- ``on_starting`` (master, before workers): seal the landing segments of dead processes (a crash or
  ``SIGKILL`` of a previous server) and create the control-plane tables once, so workers never race to;
  gunicorn's own errors (a malformed request line, oversized headers: answered before the app sees the
  request) are written as Turret's JSON error body instead of gunicorn's HTML page.
- ``worker_exit`` (each worker, also on ``SIGTERM``): return unused quota leases, seal the landing segment.
- ``child_exit`` / ``on_exit`` (master): seal what a worker killed without its hook (timeout) left open.
"""

from __future__ import annotations

import json
import logging

from turret.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "asgi"
# Connections each worker holds open at once, slow ones included (they cost a socket, not a thread).
worker_connections = 1000
# The app runs on TURRET_THREADS threads of its own (ingest_api.asgi); gunicorn's asgi worker has none.
threads = 1
preload_app = False
keepalive = 5
timeout = 30
# SIGTERM: workers finish in-flight requests (each a few ms) within this, then run worker_exit.
graceful_timeout = 20
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "turret-serve"
# gunicorn's control socket defaults to one path in $HOME shared by every server on the machine; Turret
# does not use it, and two servers (or test runs) would fight over it.
control_socket_disable = True

log = logging.getLogger("turret.serve")


def _seal_orphans(server, when: str) -> None:
    from turret.landing import LandingError, seal_orphans

    settings = Settings.from_env()
    try:
        sealed = seal_orphans(settings.landing_root) if settings.landing_root.exists() else []
    except LandingError as exc:
        server.log.error("could not seal orphan landing segments %s: %s", when, exc)
        return
    if sealed:
        server.log.info("sealed %d landing segment(s) of dead processes %s", len(sealed), when)


def _json_error_body(status: int, reason: str, message: str) -> bytes:
    """Turret's JSON error body (ingest_api.errors) for an error gunicorn answers itself."""
    code = "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST"
    return json.dumps({"success": False, "error": f"{reason}: {message}" if message else reason,
                       "code": code}).encode()


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` (sync and threaded workers) with a JSON body instead of HTML."""
    from gunicorn.util import write_nonblock

    body = _json_error_body(status_int, reason, mesg)
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    write_nonblock(sock, head.encode("latin-1", "replace") + body)


def _send_json_error_response(self, status, message, extra_headers=()) -> None:
    """``ASGIProtocol._send_error_response`` (the asgi worker's own errors) with a JSON body."""
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = _json_error_body(status, reason, message)
    extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: close\r\n\r\n")
    self._safe_write(head.encode("latin-1", "replace"))
    self._safe_write(body)


def on_starting(server) -> None:
    """Master, before the first fork: recover orphans, create control-plane tables, check the store, and
    make gunicorn's own error answers JSON (workers inherit it)."""
    import gunicorn.util
    from gunicorn.asgi.protocol import ASGIProtocol

    from turret.controlplane import ControlPlane

    gunicorn.util.write_error = write_json_error
    ASGIProtocol._send_error_response = _send_json_error_response  # pinned gunicorn; tested end to end

    settings = Settings.from_env()
    settings.landing_root.mkdir(parents=True, exist_ok=True)
    _seal_orphans(server, "at start")
    plane = ControlPlane.from_settings(settings)
    plane.dispose()  # no pooled connection may cross the fork


def when_ready(server) -> None:
    """Master: say where the API answers."""
    for listener in server.LISTENERS:
        server.log.info(
            "Turret ingest API ready on %s (%d workers x %d threads)",
            listener, server.cfg.workers, Settings.from_env().threads,
        )


def worker_exit(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Worker, on its way out: give back quota leases, seal the landing writer."""
    app = getattr(worker, "asgi", None) or getattr(worker, "wsgi", None)
    app = getattr(app, "flask_app", app)  # the Flask app behind ingest_api.asgi's front
    try:
        if app is not None and hasattr(app, "extensions"):
            from ingest_api import shutdown

            shutdown(app)
    finally:
        # Whatever the app did or did not close: every gate and writer of this process.
        from turret.controlplane import release_all_gates
        from turret.landing import close_all_writers

        release_all_gates()
        close_all_writers()


def child_exit(server, worker) -> None:  # noqa: ARG001
    """Master, after a worker is gone (also when it was killed on timeout): seal what it left open."""
    _seal_orphans(server, f"after worker {worker.pid} exited")


def on_exit(server) -> None:
    """Master, at shutdown."""
    _seal_orphans(server, "at shutdown")
