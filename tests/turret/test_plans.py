"""turret.plans: the plan rules, the one definition both the ingest API and the quota mart use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from turret.plans import MAX_LIMIT, PlanError, check_plan, compute_period, describe_limit, quota_periods


@pytest.mark.parametrize(
    "plan, limit, message",
    [
        ("gold", None, "unknown plan 'gold'"),
        ("enterprise", None, "plan 'enterprise' needs an explicit monthly limit"),
        ("pro", 0, "monthly limit must be a positive integer"),
        ("pro", MAX_LIMIT + 1, f"up to {MAX_LIMIT}"),
        ("pro", True, "monthly limit must be a positive integer"),
    ],
)
def test_check_plan_refuses(plan, limit, message):
    with pytest.raises(PlanError, match=message):
        check_plan(plan, limit)


def test_override_wins_over_the_plan_limit_in_every_plan():
    at = datetime(2025, 3, 10, tzinfo=UTC)
    assert compute_period("pro", 42, datetime(2025, 1, 1, tzinfo=UTC), at).limit == 42
    assert compute_period("trial", 7, at - timedelta(days=1), at).limit == 7
    assert describe_limit("business", None) == "10,000,000 events per calendar month (UTC)"
    assert describe_limit("trial", 500) == "500 events in total within 14 days"


def test_a_plan_change_counts_the_month_from_the_change():
    changed = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
    period = compute_period("pro", None, changed, datetime(2025, 3, 20, tzinfo=UTC), plan_changed=True)
    assert (period.start, period.end) == (changed, datetime(2025, 4, 1, tzinfo=UTC))
    # The next month is a whole calendar month again; a plan set at creation counts whole months.
    april = compute_period("pro", None, changed, datetime(2025, 4, 2, tzinfo=UTC), plan_changed=True)
    assert april.start == datetime(2025, 4, 1, tzinfo=UTC)
    assert compute_period("pro", None, changed, datetime(2025, 3, 20, tzinfo=UTC)).start == datetime(
        2025, 3, 1, tzinfo=UTC
    )


def test_quota_periods_list_each_window_in_order_with_the_rules_limits():
    created = datetime(2025, 1, 25, 15, 30, tzinfo=UTC)
    periods = quota_periods("trial", None, created, datetime(2025, 3, 5, tzinfo=UTC))
    trial_end = created + timedelta(days=14)
    assert periods == [
        (created, trial_end, 250_000),
        (trial_end, datetime(2025, 3, 1, tzinfo=UTC), 0),  # an ended trial allows nothing
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), 0),
    ]
    # Each listed window is exactly what compute_period answers inside it.
    for start, end, limit in periods:
        for at in (start, end - timedelta(microseconds=1)):
            p = compute_period("trial", None, created, at)
            assert (p.start, p.end, p.limit) == (start, end, limit)
    jan3, feb1 = datetime(2025, 1, 3, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    monthly = quota_periods("enterprise", None, jan3, feb1)
    assert [(s.month, limit) for s, _, limit in monthly] == [(1, None), (2, None)]  # no limit known
