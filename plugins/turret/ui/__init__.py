"""The Turret dashboard: a Flask app of its own (``turret ui``), beside the ingest API, not inside it.

Data pages read the published marts only (:mod:`turret.ui.marts`), never the warehouse, so a running
pipeline never blocks the dashboard nor the dashboard the pipeline. Projects, keys and field overrides go
through the control plane, as the CLI's do. Every page needs the sign-in (:mod:`turret.ui.auth`); forms carry
a CSRF token (Flask-WTF).
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from typing import Any

from flask import Flask, jsonify, render_template, request, send_file
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from turret.settings import Settings

# Where plotly.js comes from: the plotly Python package ships it (MIT licence), so no CDN is needed.
PLOTLY_JS = ("plotly", "package_data/plotly.min.js")
SESSION_HOURS = 12
# plotly.js sets inline styles; everything else is from this origin only.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                           "form-action 'self'; base-uri 'none'")

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """The dashboard for ``settings`` (default: from the environment)."""
    from turret.controlplane import ControlPlane
    from turret.ui import auth
    from turret.ui.marts import MartsReader
    from turret.ui.views import pages, projects
    from turret.ui.views import settings as settings_views

    settings = settings or Settings.from_env()
    password, _path, _created = auth.resolve_password(settings)
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=auth.resolve_secret_key(settings),
        TURRET_UI_PASSWORD=password,
        SESSION_COOKIE_NAME="turret_ui_session",
        SESSION_COOKIE_SECURE=True,  # browsers keep Secure cookies on http://127.0.0.1 and localhost too
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["turret_settings"] = settings
    app.extensions["turret_marts"] = MartsReader(settings.published)
    # Per-snapshot caches are filled when the pipeline publishes, not by the first page view (ui/warm.py).
    if app.config.get("TURRET_UI_WARM", not app.testing):
        from turret.ui.warm import SnapshotWatcher

        app.extensions["turret_snapshot_watcher"] = SnapshotWatcher(app.extensions["turret_marts"])
        app.extensions["turret_snapshot_watcher"].start()
    app.extensions["turret_control_plane"] = ControlPlane.from_settings(settings)
    csrf.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(settings_views.bp)
    app.register_blueprint(projects.bp)
    _register_vendor(app)
    _register_errors(app)
    app.add_template_filter(_keyword_list, "keyword_list")
    app.add_template_filter(_duration, "duration")

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz", endpoint="health")
    def health():
        return {"status": "ok"}

    return app


def _register_vendor(app: Flask) -> None:
    path = resources.files(PLOTLY_JS[0]).joinpath(PLOTLY_JS[1])

    @app.get("/vendor/plotly.min.js", endpoint="vendor.plotly")
    def plotly_js():
        return send_file(path, mimetype="text/javascript", max_age=86400)


def _keyword_list(raw: Any) -> list[str]:
    from turret.ui.topic_map import keywords_of

    return [k for k in keywords_of(raw) if k][:12]


def _duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``, ``4.0 d``; an em dash for none."""
    if seconds is None:
        return "\u2014"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _register_errors(app: Flask) -> None:
    from turret.ui.filters import FilterError
    from turret.ui.marts import MartsUnavailable, NotFound

    def answer(status: int, error: str, message: str):
        if _wants_json():
            return jsonify(error=error, message=message), status
        return render_template("error.html", status=status, error=error, message=message), status

    @app.errorhandler(FilterError)
    def bad_filter(exc: FilterError):
        return answer(400, "bad_request", str(exc))

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound):
        return answer(404, "not_found", str(exc))

    @app.errorhandler(MartsUnavailable)
    def unavailable(exc: MartsUnavailable):
        return answer(503, "no_marts", str(exc))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return answer(400, "csrf", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return answer(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)
