"""Sign-in: one password for the dashboard, a signed session cookie, and nothing shown without it.

The password is the ``TURRET_UI_PASSWORD`` setting; when that is empty, one is generated on first start,
written to ``<home>/ui_password`` (mode 0600) and printed once by ``turret ui``. The key that signs session
cookies is generated the same way into ``<home>/ui_secret_key``, so sessions survive a restart and every
server process agrees on it.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from turret.settings import Settings

PASSWORD_FILE = "ui_password"
SECRET_KEY_FILE = "ui_secret_key"
# Endpoints reachable without a session: the sign-in form and what it needs to render.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "vendor.plotly", "health"})
# A failed sign-in waits this long: cheap for a person, slow for a password guesser.
FAILED_SIGN_IN_DELAY_S = 0.5

bp = Blueprint("auth", __name__)


def _read_or_create(path: Path, make: callable) -> tuple[str, bool]:
    """The file's content, or a new value written with ``O_EXCL`` (mode 0600); (value, created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    value = make()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value, True


def resolve_password(settings: Settings) -> tuple[str, Path | None, bool]:
    """``(password, file or None when it comes from the setting, whether it was generated just now)``."""
    if settings.ui_password:
        return settings.ui_password, None, False
    path = Path(settings.home) / PASSWORD_FILE
    password, created = _read_or_create(path, lambda: secrets.token_urlsafe(16))
    return password, path, created


def resolve_secret_key(settings: Settings) -> str:
    return _read_or_create(Path(settings.home) / SECRET_KEY_FILE, lambda: secrets.token_hex(32))[0]


def signed_in() -> bool:
    return session.get("signed_in") is True


@bp.before_app_request
def require_sign_in():
    if request.endpoint in PUBLIC_ENDPOINTS or signed_in():
        return None
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return {"error": "unauthorized", "message": "sign in first"}, 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never redirect a signed-in person elsewhere."""
    if not target:
        return url_for("pages.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.overview")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        given = request.form.get("password", "")
        expected = current_app.config["TURRET_UI_PASSWORD"]
        if hmac.compare_digest(given.encode(), expected.encode()):
            session.clear()
            session["signed_in"] = True
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
        time.sleep(FAILED_SIGN_IN_DELAY_S)
        flash("Wrong password.", "error")
        return render_template("login.html"), 401
    return render_template("login.html")


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
