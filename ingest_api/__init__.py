"""Turret's ingest API: a Flask app that authenticates, validates and durably lands events.

``create_app(test_config=None)`` follows Flask's tutorial: defaults from :class:`turret.settings.Settings`
(``TURRET_*`` variables), then ``test_config`` (which may carry a ``settings`` object). Blueprints:
``track`` (``POST /track``, ``POST /track/batch``), ``trieve`` (``PUT /api/analytics/events``),
``health`` (``GET /healthz``) and ``openapi`` (``GET /openapi.json``); ``bench`` (``POST /bench/noop``)
only with ``TURRET_BENCH_ENDPOINTS=1``.

The landing writer, control plane and quota gate are per process and lazy (see :mod:`ingest_api.runtime`);
:func:`shutdown` closes them and runs at interpreter exit and from gunicorn's ``worker_exit`` hook
(:mod:`turret.gunicorn_conf`).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from turret.settings import Settings

from .errors import ApiError
from .runtime import EXTENSION, Runtime

__all__ = ["ApiError", "create_app", "shutdown"]

_TRUE = {"1", "true", "yes", "on"}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the ingest app. ``test_config`` overrides config keys; its ``settings`` replaces the env's."""
    from . import bench, errors, health, openapi, track, trieve

    test_config = dict(test_config or {})
    settings = test_config.pop("settings", None) or Settings.from_env()
    app = Flask(__name__)
    app.config.from_mapping(
        # Werkzeug refuses larger bodies while reading; the views also check Content-Length up front.
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        BENCH_ENDPOINTS=os.environ.get(bench.ENV_VAR, "").strip().lower() in _TRUE,
    )
    app.config.update(test_config)
    app.json.sort_keys = False
    app.json.compact = True

    app.extensions[EXTENSION] = Runtime(settings)
    errors.init_app(app)
    app.register_blueprint(track.bp)
    app.register_blueprint(trieve.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    if app.config["BENCH_ENDPOINTS"]:
        app.register_blueprint(bench.bp)

    def _close_at_exit() -> None:
        shutdown(app)

    app.extensions["turret_atexit"] = _close_at_exit
    atexit.register(_close_at_exit)
    return app


def shutdown(app: Flask) -> None:
    """Give back unused quota, seal the landing segment and dispose the control plane of ``app``.

    Idempotent. Call it from gunicorn's ``worker_exit`` hook; it also runs at interpreter exit.
    """
    hook = app.extensions.pop("turret_atexit", None)
    if hook is not None:
        atexit.unregister(hook)
    runtime = app.extensions.get(EXTENSION)
    if runtime is not None:
        runtime.close()
