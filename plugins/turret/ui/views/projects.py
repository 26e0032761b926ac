"""Projects & keys: create a project (its key is shown once), rotate or revoke keys, plan and quota usage.

Everything goes through :class:`turret.controlplane.ControlPlane`, as ``turret projects`` does.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from turret.controlplane import ControlPlane, ControlPlaneError
from turret.plans import PLANS

bp = Blueprint("projects", __name__, url_prefix="/projects")


def control_plane() -> ControlPlane:
    return current_app.extensions["turret_control_plane"]


def _overview(new_key: dict | None = None, status: int = 200):
    cp = control_plane()
    rows = []
    for project in cp.list_projects():
        try:
            period = cp.period(project)
            used = cp.accepted(project)
            limit = period.limit
        except ControlPlaneError:
            period, used, limit = None, None, None
        rows.append({"project": project, "keys": cp.list_keys(project.project_id), "period": period,
                     "used": used, "limit": limit,
                     "share": (used / limit) if used is not None and limit else None})
    return render_template("projects.html", page="projects", rows=rows, plans=PLANS, new_key=new_key), status


@bp.get("/")
def index():
    return _overview()


def _limit(raw: str | None) -> int | None:
    raw = (raw or "").strip().replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ControlPlaneError(f"monthly limit {raw[:20]!r} is not a whole number")
    return int(raw)


@bp.post("/")
def create():
    name = request.form.get("name", "")
    plan = request.form.get("plan", "")
    try:
        project, key = control_plane().create_project(name, plan, _limit(request.form.get("monthly_limit")))
    except ControlPlaneError as exc:
        flash(str(exc), "error")
        return _overview(status=400)
    return _overview(new_key={"project": project.name, "key": key, "what": "created"})


@bp.post("/<project_id>/rotate")
def rotate(project_id: str):
    try:
        project = control_plane().get_project(project_id)
        key = control_plane().rotate_key(project.project_id, keep_old=request.form.get("keep_old") == "on")
    except ControlPlaneError as exc:
        flash(str(exc), "error")
        return _overview(status=400)
    return _overview(new_key={"project": project.name, "key": key, "what": "rotated"})


@bp.post("/keys/revoke")
def revoke():
    prefix = request.form.get("prefix", "")
    try:
        control_plane().revoke_key(prefix)
    except ControlPlaneError as exc:
        flash(str(exc), "error")
        return _overview(status=400)
    flash(f"Key {prefix[:12]} revoked.", "ok")
    return redirect(url_for("projects.index"))
