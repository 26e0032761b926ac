"""Strict reading of JSON request bodies.

Python's ``json`` module is lenient where a data pipeline should not be: it accepts ``NaN`` and
``Infinity``, turns ``1e400`` into ``inf``, keeps the last of duplicate keys, and accepts lone UTF-16
surrogates (``"\\ud800"``) that cannot be written back as UTF-8. Each of those would either corrupt the
landing store or fail later with a 500, so they are refused here with a 400 that says why.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request
from turret.bounds import INT64_MAX, INT64_MIN
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import ApiError

# Deeper documents are refused: no Turret field nests, and Trieve payloads nest a few levels at most.
MAX_JSON_DEPTH = 32


def _invalid(message: str) -> ApiError:
    return ApiError("INVALID_REQUEST", message, 400)


def _reject_constant(name: str) -> Any:
    raise _invalid(f"request body contains {name}; JSON numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _invalid(f"number {text[:40]} is out of range; JSON numbers must be finite")
    return value


def _int64(text: str) -> int:
    if len(text) > 20:  # 64-bit integers have at most 19 digits and a sign; int() of 5000 digits is slow
        raise _invalid(f"integer {text[:40]} does not fit in a signed 64-bit integer")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _invalid(f"integer {text[:40]} does not fit in a signed 64-bit integer")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _invalid(f"key {key[:80]!r} appears twice in the same object")
        out[key] = value
    return out


def _check_values(value: Any, depth: int = 0) -> None:
    """Walk the parsed document: bounded depth, UTF-8-encodable strings, 64-bit integers."""
    if depth > MAX_JSON_DEPTH:
        raise _invalid(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid("request body contains a lone UTF-16 surrogate escape (\\ud800-\\udfff)") from None
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _invalid(f"integer {str(value)[:40]} does not fit in a signed 64-bit integer")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, depth + 1)
            _check_values(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_values(item, depth + 1)


def _check_depth(value: Any, depth: int = 0) -> None:
    """The depth rule of :func:`_check_values` alone, visiting containers only (scalars cannot nest)."""
    if depth > MAX_JSON_DEPTH or (value and depth + 1 > MAX_JSON_DEPTH):
        raise _invalid(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    for item in value.values() if type(value) is dict else value:
        if type(item) is dict or type(item) is list:
            _check_depth(item, depth + 1)


# Built once: ``json.loads`` with hooks constructs a new decoder per call.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    parse_int=_int64,
    object_pairs_hook=_no_duplicates,
)


def parse_json(raw: bytes) -> Any:
    """Parse ``raw`` as strict JSON (UTF-8) or raise ``ApiError`` INVALID_REQUEST."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"request body is not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise _invalid("request body starts with a byte order mark; send plain UTF-8 JSON")
    if not text.strip():
        raise _invalid("request body is empty; send a JSON object")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise _invalid(f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError
        raise _invalid(f"request body is not valid JSON: {exc}") from None
    # Integers were range-checked while parsing (parse_int). What is left of _check_values is cheap to
    # rule out from the bytes: a lone surrogate can only come from a "\ud..." escape (valid UTF-8 has
    # none), and a document with at most MAX_JSON_DEPTH brackets cannot nest deeper than that.
    if b"\\ud" in raw or b"\\uD" in raw:
        _check_values(value)
    elif type(value) in (dict, list) and raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        _check_depth(value)
    return value


def check_json_content_type() -> None:
    """Require ``Content-Type: application/json`` (a UTF-8 charset parameter is allowed)."""
    if request.mimetype != "application/json":
        sent = request.headers.get("Content-Type")
        raise _invalid(
            f"Content-Type must be application/json, got {sent!r}" if sent else
            "Content-Type header is missing; it must be application/json"
        )
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise _invalid(f"charset {charset!r} is not supported; send UTF-8")


def _too_large(limit: int | None) -> ApiError:
    return ApiError("INVALID_REQUEST", f"request body exceeds {limit} bytes", 413)


# The Content-Type values SDKs send, accepted without parsing the header (any other goes through
# check_json_content_type, which accepts every spelling of a UTF-8 charset and names what is wrong).
_PLAIN_JSON_TYPES = frozenset({
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json;charset=UTF-8",
})


_READ_CHUNK = 64 * 1024


def read_raw_body(*, json_only: bool = True) -> bytes:
    """The request body, read once: declared size first (413 before a byte is read), then the content type.

    A body with a ``Content-Length`` (what every HTTP/1.1 client sends for a JSON document) is read
    straight from the WSGI input, exactly the declared number of bytes; a chunked body is read to its
    end and refused with a 413 as soon as it passes the limit.
    """
    req = request._get_current_object()  # one context lookup instead of one per attribute
    environ = req.environ
    limit = req.max_content_length
    declared = environ.get("CONTENT_LENGTH")
    # A plain decimal Content-Length and no Transfer-Encoding: read exactly that many bytes ourselves.
    exact = bool(declared and declared.isascii() and declared.isdigit())
    exact = exact and "HTTP_TRANSFER_ENCODING" not in environ
    length = int(declared) if exact else req.content_length
    if limit is not None and length is not None and length > limit:
        raise _too_large(limit)
    if json_only and environ.get("CONTENT_TYPE") not in _PLAIN_JSON_TYPES:
        check_json_content_type()
    if exact:
        raw = environ["wsgi.input"].read(length) if length else b""
        if len(raw) != length:
            raise _invalid(
                f"request body ended after {len(raw)} of the {length} bytes its Content-Length declared"
            )
        return raw
    if environ.get("wsgi.input_terminated"):
        # A chunked body the server has de-chunked (gunicorn does): read to the end, but never more
        # than one chunk past the limit. Werkzeug's stream would stop at the limit and hand back the
        # first ``limit`` bytes as if they were the whole body.
        stream = environ["wsgi.input"]
        chunks: list[bytes] = []
        size = 0
        while chunk := stream.read(_READ_CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)
    try:
        return req.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large(req.max_content_length) from None


def read_json_body() -> Any:
    """Content type, size, then strict parse. Call only after the API key has been checked."""
    return parse_json(read_raw_body())
