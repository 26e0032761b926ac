"""JSON responses for the ingest hot path, byte for byte what ``jsonify`` sends with ``app.json.compact``.

``flask.jsonify`` looks the app up, builds a new ``json.JSONEncoder`` per call and then sets each extra
header through a separate validating call; on ``POST /track`` that was a measurable share of a request
(docs/api.md, "Performance"). Here one encoder is built once and the headers go in with the body.
The payloads are plain JSON (str, int, bool, None, lists and dicts of them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response

# Flask's compact provider: ASCII-escaped, no spaces, insertion order; jsonify adds a final newline.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
MIMETYPE = "application/json"


def json_response(payload: Any, headers: Mapping[str, str] | None = None, status: int = 200) -> Response:
    """``payload`` as a JSON response with ``headers``."""
    return Response(
        _ENCODER.encode(payload) + "\n", status, list(headers.items()) if headers else None, mimetype=MIMETYPE
    )
