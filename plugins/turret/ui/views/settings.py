"""Settings → Metadata: each field as the published marts type it, and the override a person chooses.

Overrides are recorded in the control plane through :func:`turret.field_overrides.save`, the function
``turret fields set`` calls; the next pipeline run types the field that way. Nothing here writes the marts
or the warehouse.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from turret import field_overrides
from turret.ui import marts
from turret.ui.filters import FilterError
from turret.ui.views.pages import reader, scope

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.get("/metadata")
def metadata():
    f, context = scope()
    fields = [dict(row) for row in marts.field_summary(reader(), f.project_id)]  # copies: rows are cached
    recorded = field_overrides.load(current_app.extensions["turret_control_plane"], f.project_id)
    for row in fields:
        key = (f.project_id, row["field"])
        row["override"] = recorded.get(key) if key in recorded else None
        row["pending"] = key in recorded and recorded[key] is not None and recorded[key] != row["type"]
    return render_template("metadata.html", page="metadata", rows=fields, types=field_overrides.TYPES,
                           **context)


@bp.post("/metadata")
def set_override():
    f, _context = scope()
    field = (request.form.get("field") or "").strip()
    type_ = (request.form.get("type") or "").strip()
    known = {row["field"] for row in marts.field_summary(reader(), f.project_id)}
    if field not in known:
        raise FilterError(f"no metadata field {field[:80]!r} in this project's marts")
    try:
        control_plane = current_app.extensions["turret_control_plane"]
        stored = field_overrides.save(control_plane, f.project_id, field, type_)
    except field_overrides.OverrideError as exc:
        raise FilterError(str(exc)) from None
    how = f"override {stored}" if stored else "override cleared (detected type)"
    flash(f"{field}: {how}. The next pipeline run applies it.", "ok")
    return redirect(url_for("settings.metadata", **f.query_args()))
