"""gunicorn configuration and hooks for ``turret serve`` (also usable as ``-c python:turret.gunicorn_conf``).

Threaded workers (``gthread``) in several processes: a request mostly waits for the landing store's
``fsync``, which concurrent threads of one worker share (group commit). ``preload_app`` stays off so each
worker builds its own app, landing writer and quota gate after the fork.

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
threads = _settings.threads
worker_class = "gthread"
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


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with Turret's JSON error body (ingest_api.errors) instead of HTML."""
    from gunicorn.util import write_nonblock

    code = "INTERNAL_ERROR" if status_int >= 500 else "INVALID_REQUEST"
    body = json.dumps({"success": False, "error": f"{reason}: {mesg}" if mesg else reason, "code": code})
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n")
    write_nonblock(sock, (head + body).encode("latin-1", "replace"))


def on_starting(server) -> None:
    """Master, before the first fork: recover orphans, create control-plane tables, check the store, and
    make gunicorn's own error answers JSON (workers inherit it)."""
    import gunicorn.util

    from turret.controlplane import ControlPlane

    gunicorn.util.write_error = write_json_error

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
            listener, server.cfg.workers, server.cfg.threads,
        )


def worker_exit(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Worker, on its way out: give back quota leases, seal the landing writer."""
    app = getattr(worker, "wsgi", None)
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
