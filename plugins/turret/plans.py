"""Plan rules: what each plan allows and the quota periods it counts in. The one place they are written.

The ingest API enforces them (``turret.controlplane.QuotaGate`` asks :func:`compute_period`), and the quota
mart reads them as data: the loader writes every project's periods (:func:`quota_periods`) into
``raw.quota_periods`` and ``fct_quota_usage`` only picks the row containing its clock, so the two cannot
disagree (docs/adr/0010-plan-rules-owner.md).

Rules:

- ``trial``: one period of 14 days from the moment the project went on the trial, 250,000 events; after it,
  calendar months with a limit of 0 until the plan changes.
- ``pro``, ``business``, ``enterprise``: calendar months in UTC, with the plan's limit.
- A project's own ``monthly_limit`` overrides its plan's limit (``enterprise`` has none of its own).
- A plan change starts a new period at the change: the month of the change counts from that moment, so
  events accepted under the old plan do not count against the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The largest limit a project may carry: the warehouse and both control-plane backends store it as BIGINT.
MAX_LIMIT = 2**63 - 1


class PlanError(ValueError):
    """A plan or limit that cannot be used; the message says why in the user's terms."""


@dataclass(frozen=True)
class Plan:
    """A plan: ``limit`` events per period; ``trial_days`` set means one period from the start of the plan."""

    name: str
    limit: int | None  # None: the project must carry its own limit (enterprise)
    trial_days: int | None = None
    description: str = ""


PLANS: dict[str, Plan] = {
    "trial": Plan("trial", 250_000, trial_days=14, description="250k events in total within 14 days"),
    "pro": Plan("pro", 1_000_000, description="1,000,000 events per calendar month (UTC)"),
    "business": Plan("business", 10_000_000, description="10,000,000 events per calendar month (UTC)"),
    "enterprise": Plan("enterprise", None, description="custom monthly limit (--monthly-limit)"),
}


@dataclass(frozen=True)
class Period:
    """The quota window ``[start, end)`` and how many events it allows."""

    start: datetime
    end: datetime
    limit: int


def check_plan(plan: str, monthly_limit: int | None) -> None:
    """Raise :class:`PlanError` unless ``plan`` exists and ``monthly_limit`` is usable with it."""
    if plan not in PLANS:
        raise PlanError(f"unknown plan {plan!r}; choose one of: {', '.join(PLANS)}")
    if monthly_limit is not None:
        if isinstance(monthly_limit, bool) or not isinstance(monthly_limit, int) or not (
            1 <= monthly_limit <= MAX_LIMIT
        ):
            raise PlanError(
                f"monthly limit must be a positive integer up to {MAX_LIMIT}, got {monthly_limit!r}"
            )
    elif PLANS[plan].limit is None:
        raise PlanError(f"plan {plan!r} needs an explicit monthly limit (--monthly-limit N)")


def effective_limit(plan: str, monthly_limit: int | None) -> int:
    """Events allowed per period: the project's own limit, else the plan's."""
    if monthly_limit is not None:
        return monthly_limit
    plan_limit = PLANS[plan].limit
    if plan_limit is None:
        raise PlanError(f"plan {plan!r} has no limit of its own and the project sets none")
    return plan_limit


def describe_limit(plan: str, monthly_limit: int | None) -> str:
    """``"1,000,000 events per calendar month (UTC)"`` or the trial's wording, with the effective limit."""
    limit = effective_limit(plan, monthly_limit)
    days = PLANS[plan].trial_days
    if days:
        return f"{limit:,} events in total within {days} days"
    return f"{limit:,} events per calendar month (UTC)"


def month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def aware(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive value is taken as UTC already (the warehouse and SQLite store naive UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _window(plan: str, since: datetime, now: datetime, plan_changed: bool) -> tuple[datetime, datetime, bool]:
    """``(start, end, open)`` of the period containing ``now``; ``open`` is False once a trial is over."""
    days = PLANS[plan].trial_days
    if days is not None:
        end = since + timedelta(days=days)
        if now < end:
            return since, end, True
        month = month_start(now)
        return max(month, end), next_month(month), False
    month = month_start(now)
    end = next_month(month)
    start = since if plan_changed and month <= since <= now else month
    return start, end, True


def compute_period(
    plan: str,
    monthly_limit: int | None,
    plan_started_at: datetime,
    now: datetime,
    *,
    plan_changed: bool = False,
) -> Period:
    """The quota period containing ``now`` for a project on ``plan`` since ``plan_started_at``.

    ``plan_changed``: the plan was changed at ``plan_started_at`` (rather than set at creation); the month
    of the change then counts from that moment. Raises :class:`PlanError` for a plan without a usable limit.
    """
    start, end, is_open = _window(plan, aware(plan_started_at), aware(now), plan_changed)
    return Period(start, end, effective_limit(plan, monthly_limit) if is_open else 0)


def quota_periods(
    plan: str,
    monthly_limit: int | None,
    plan_started_at: datetime,
    until: datetime,
    *,
    plan_changed: bool = False,
) -> list[tuple[datetime, datetime, int | None]]:
    """``(start, end, limit)`` of each period from the start of the plan through the one containing ``until``.

    The limit is ``None`` where the plan has none and the project sets none (the window is known, the
    limit is not), and 0 once a trial is over.
    """
    since, until = aware(plan_started_at), aware(until)
    try:
        limit: int | None = effective_limit(plan, monthly_limit)
    except PlanError:
        limit = None
    out: list[tuple[datetime, datetime, int | None]] = []
    at = since
    last = next_month(month_start(max(until, since)))
    while at < last:
        start, end, is_open = _window(plan, since, at, plan_changed)
        out.append((start, end, limit if is_open else 0))
        at = end
    return out


__all__ = [
    "MAX_LIMIT",
    "PLANS",
    "Period",
    "Plan",
    "PlanError",
    "check_plan",
    "compute_period",
    "describe_limit",
    "effective_limit",
    "quota_periods",
]
