"""API keys and quota, shared by the Turret and Trieve endpoints.

Both are checked against the control plane. A control plane that cannot be reached is a 503 (the client
should retry), never a 500 and never a silent accept.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from turret.landing import LandingError, RecordError

from .errors import ApiError
from .runtime import get_runtime

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying after a storage or control-plane failure.
UNAVAILABLE_RETRY_AFTER = 5


def unavailable(message: str) -> ApiError:
    return ApiError("SERVICE_UNAVAILABLE", message, 503, {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})


def authenticate(api_key: str | None, header: str) -> Any:
    """The project the key belongs to, or ``ApiError`` 401 INVALID_API_KEY (missing, unknown, revoked)."""
    if not api_key:
        raise ApiError("INVALID_API_KEY", f"API key is missing; send it in the {header} header", 401)
    try:
        project = get_runtime().control_plane.authenticate(api_key)
    except Exception:  # noqa: BLE001 - any control-plane failure (database gone, locked) means "retry later"
        log.exception("control plane authentication failed")
        raise unavailable("the control plane is unavailable; retry later") from None
    if project is None:
        raise ApiError("INVALID_API_KEY", "API key is invalid or revoked", 401)
    return project


def rate_limit_headers(decision: Any) -> dict[str, str]:
    """``X-RateLimit-*`` headers from a quota decision; a project without a limit gets only the reset."""
    headers = {}
    if decision.limit is not None:
        headers["X-RateLimit-Limit"] = str(int(decision.limit))
        headers["X-RateLimit-Remaining"] = str(max(0, int(decision.remaining)))
    if decision.reset_at is not None:
        headers["X-RateLimit-Reset"] = str(int(decision.reset_at.timestamp()))
    return headers


def retry_after(decision: Any) -> str:
    """Whole seconds until the quota period resets (at least 1)."""
    if decision.reset_at is None:
        return "60"
    return str(max(1, math.ceil((decision.reset_at - datetime.now(UTC)).total_seconds())))


def acquire(project: Any, n: int) -> tuple[int, dict[str, str], Any]:
    """Ask the quota gate for ``n`` events: (how many granted, rate-limit headers, decision)."""
    try:
        decision = get_runtime().quota.acquire(project, n)
    except Exception:  # noqa: BLE001 - as in authenticate: an unreachable control plane is a 503
        log.exception("quota check failed")
        raise unavailable("the control plane is unavailable; retry later") from None
    granted = decision.granted
    granted = (n if granted else 0) if isinstance(granted, bool) else max(0, min(n, int(granted)))
    return granted, rate_limit_headers(decision), decision


def rate_limited(decision: Any, headers: dict[str, str]) -> ApiError:
    reset = decision.reset_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if decision.reset_at else "later"
    limit = f"{int(decision.limit)} events" if decision.limit is not None else "the event limit"
    return ApiError(
        "RATE_LIMIT_EXCEEDED",
        f"this project has used {limit} of its current period; it resets at {reset}",
        429,
        {**headers, "Retry-After": retry_after(decision)},
    )


def _refund(records: list[dict[str, Any]]) -> None:
    """Give the quota granted for ``records`` back to the gate: they were not stored."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["project_id"]] = counts.get(record["project_id"], 0) + 1
    for project_id, n in counts.items():
        get_runtime().quota.refund(project_id, n)


def append(records: list[dict[str, Any]]) -> None:
    """Write records durably; a storage failure is a 503 with Retry-After.

    A record that cannot be serialized as strict JSON (validation let an ``inf`` or a non-JSON value
    through) is the data's fault: 400 INVALID_REQUEST, nothing written, never a 500 or a 503. Either way
    nothing was stored, so the quota granted for the records is refunded.
    """
    try:
        try:
            get_runtime().writer.append(records)
        except (RecordError, LandingError, OSError):
            _refund(records)
            raise
    except RecordError as exc:
        log.warning("refused an event that cannot be stored as JSON: %s", exc)
        raise ApiError(
            "INVALID_REQUEST",
            "the event cannot be stored: it contains a value that is not valid JSON "
            "(a number too large to represent, NaN or Infinity); nothing was stored",
        ) from None
    except (LandingError, OSError) as exc:
        log.error("landing store write failed: %s", exc)
        raise unavailable("events could not be stored; retry later") from None
