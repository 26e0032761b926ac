"""``POST /bench/noop``: a JSON endpoint that does nothing, to measure the framework's ceiling.

Registered only when ``TURRET_BENCH_ENDPOINTS=1`` is in the server's environment (bench/ingest.py sets
it); it is not part of the API and not in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

ENV_VAR = "TURRET_BENCH_ENDPOINTS"

bp = Blueprint("bench", __name__)


@bp.post("/bench/noop")
def noop() -> Any:
    # Read the body like /track does, so the comparison is framework + JSON, not storage.
    body = request.get_json(silent=True)
    return jsonify(success=True, keys=len(body) if isinstance(body, dict) else 0)
