"""``GET /healthz``: is this process able to accept events right now?

Two checks, both cheap and without side effects a client could see: the landing directory accepts a
new file (created, fsynced and removed), and the control plane answers a query. 200 when both pass,
503 otherwise; the body says which failed and why. No API key needed (load balancers call it).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from flask import Blueprint, current_app, jsonify

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def check_landing(root: os.PathLike[str] | str) -> str | None:
    """``None`` if a file can be created in the landing root, else why not."""
    try:
        os.makedirs(root, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=".healthz-", dir=root)
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as exc:
        return f"landing directory {root} is not writable: {exc.strerror or exc}"
    return None


def check_control_plane(runtime: Any) -> str | None:
    """``None`` if the control plane answers, else why not."""
    try:
        control_plane = runtime.control_plane
        import sqlalchemy as sa

        # A real round trip: authenticate() answers malformed keys without asking the database.
        with control_plane.engine.connect() as con:
            con.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the log has the detail
        log.warning("health check: control plane unavailable: %s", exc)
        return f"control plane is unreachable: {type(exc).__name__}"
    return None


@bp.get("/healthz")
def healthz() -> Any:
    runtime = current_app.extensions["turret"]
    landing = check_landing(runtime.settings.landing_root)
    control_plane = check_control_plane(runtime)
    checks = {
        "landing": {"ok": landing is None, **({"error": landing} if landing else {})},
        "control_plane": {"ok": control_plane is None, **({"error": control_plane} if control_plane else {})},
    }
    healthy = landing is None and control_plane is None
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    if not healthy:
        response.headers["Retry-After"] = "5"
    return response
