"""JSON errors for every failure: our own ``ApiError`` and every Werkzeug ``HTTPException``.

Two shapes exist because two contracts are served. Turret's endpoints answer
``{"success": false, "error": "...", "code": "..."}``; the Trieve-compatible ``/api/...`` path answers
``{"message": "..."}`` like Trieve itself. The shape is chosen from the request path, so 404/405 on a
Trieve path look like Trieve errors too. Unexpected exceptions are logged with their traceback and answer
a fixed 500 body: a stack trace never reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .responses import json_response

log = logging.getLogger(__name__)

# Every code a Turret endpoint can answer; the OpenAPI document lists the same enum.
ERROR_CODES = (
    "INVALID_API_KEY",
    "INVALID_REQUEST",
    "MISSING_REQUIRED_FIELD",
    "TEXT_TOO_LONG",
    "RATE_LIMIT_EXCEEDED",
    "SERVICE_UNAVAILABLE",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "INTERNAL_ERROR",
)

# Codes for HTTP errors raised by Flask/Werkzeug themselves (routing, body size).
_HTTP_CODES = {
    400: "INVALID_REQUEST",
    401: "INVALID_API_KEY",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "INVALID_REQUEST",
    415: "INVALID_REQUEST",
    429: "RATE_LIMIT_EXCEEDED",
    503: "SERVICE_UNAVAILABLE",
}

TRIEVE_PREFIX = "/api/"


class ApiError(Exception):
    """A client-facing error: a stable ``code``, a human ``message`` naming the field or limit,
    the HTTP ``status`` and extra response ``headers`` (``Retry-After``, rate-limit headers).
    ``field`` names the offending request field when there is one."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = dict(headers or {})
        self.field = field

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.status})"


def is_trieve_request() -> bool:
    return request.path.startswith(TRIEVE_PREFIX)


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None, field: str | None = None
) -> Response:
    """Render an error in the shape of the contract the request was made against."""
    if is_trieve_request():
        body = {"message": message}
    else:
        body = {"success": False, "error": message, "code": code}
        if field:
            body["field"] = field
    return json_response(body, headers, status)


def _http_message(exc: HTTPException) -> str:
    if exc.code == 404:
        return f"no endpoint at {request.path}; see /openapi.json"
    if exc.code == 405:
        allowed = getattr(exc, "valid_methods", None) or []
        return f"{request.method} is not allowed on {request.path}; allowed: {', '.join(sorted(allowed))}"
    if exc.code == 413:
        limit = request.max_content_length
        return f"request body exceeds {limit} bytes" if limit else "request body is too large"
    return exc.description or exc.name


def handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.code, exc.message, exc.status, exc.headers, exc.field)


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST")
    headers = {}
    if status == 405:
        headers["Allow"] = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
    return error_response(code, _http_message(exc), status, headers)


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, ApiError):
        return handle_api_error(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response("INTERNAL_ERROR", "internal error", 500)


def init_app(app: Flask) -> None:
    """Register the JSON error handlers on ``app``."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
