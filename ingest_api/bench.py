"""``POST /bench/noop``: a JSON endpoint that does nothing, to measure the framework's ceiling.

Registered only when ``TURRET_BENCH_ENDPOINTS=1`` is in the server's environment (bench/ingest.py sets
it); it is not part of the API and not in the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from .body import read_raw_body
from .responses import json_response

ENV_VAR = "TURRET_BENCH_ENDPOINTS"

bp = Blueprint("bench", __name__)


@bp.post("/bench/noop")
def noop() -> Any:
    # Body in and JSON out through the same helpers as /track, so the comparison is the framework and
    # JSON against authentication, validation, quota and the durable write.
    try:
        body = json.loads(read_raw_body(json_only=False))
    except ValueError:
        body = None
    return json_response({"success": True, "keys": len(body) if isinstance(body, dict) else 0})
