"""The loader keeps each Trieve body whole (raw.event_payloads) and writes quota periods by the plan rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pytest
from turret import loader
from turret.warehouse import ensure_schema

from tests.fixtures.landing import PROJECT, record, write_segment


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


def _trieve(event_id: str, payload: dict) -> dict:
    return record(event_id, contract="trieve", event_type=payload["event_type"], payload=payload)


def test_trieve_bodies_are_loaded_whole_once_for_the_row_that_won(con, tmp_path):
    body = {"event_type": "purchase", "event_name": "bought", "items": [{"tracking_id": "a", "revenue": 2.5}],
            "metadata": {"nested": {"deep": [1, 2]}}, "unknown_field": "kept"}
    later = {**body, "event_name": "second copy"}
    write_segment(tmp_path / "landing", "h-1-20250615T120000000000Z-aa",
                  [_trieve("evt_a", body), _trieve("evt_a", later), record("evt_turret")])
    stats = loader.load_landing(con, tmp_path / "landing")
    assert (stats.rows_loaded, stats.rows_duplicate) == (2, 1)
    rows = con.execute("select project_id, event_id, payload from raw.event_payloads").fetchall()
    # The first copy's body, and none for the Turret event.
    assert [(p, e, json.loads(j)) for p, e, j in rows] == [(PROJECT, "evt_a", body)]


@dataclass
class Project:
    project_id: str
    name: str
    plan: str
    monthly_limit: int | None
    created_at: datetime
    plan_changed_at: datetime | None = None


class Plane:
    def __init__(self, projects):
        self.projects = projects

    def list_projects(self):
        return list(self.projects)


def test_sync_projects_writes_the_quota_periods_of_the_plan_rules(con):
    from turret.plans import compute_period

    changed = datetime(2025, 6, 10, 9, tzinfo=UTC)
    projects = [
        Project(PROJECT, "acme", "pro", 42, datetime(2025, 4, 20, tzinfo=UTC)),
        Project("t", "trialco", "trial", None, datetime(2025, 5, 25, tzinfo=UTC)),
        Project("u", "upgraded", "business", None, datetime(2025, 5, 1, tzinfo=UTC), plan_changed_at=changed),
    ]
    now = datetime(2025, 6, 15, tzinfo=UTC)
    assert loader.sync_projects(con, Plane(projects), now=now) == 3
    periods = con.execute("select * from raw.quota_periods order by all").fetchall()
    by_project = {}
    for project_id, start, end, limit in periods:
        by_project.setdefault(project_id, []).append((start, end, limit))
    assert by_project[PROJECT][-1] == (datetime(2025, 6, 1), datetime(2025, 7, 1), 42)  # the override
    assert len(by_project[PROJECT]) == 3  # April, May, June
    assert by_project["t"] == [(datetime(2025, 5, 25), datetime(2025, 6, 8), 250_000),
                               (datetime(2025, 6, 8), datetime(2025, 7, 1), 0)]  # the trial ended
    assert by_project["u"] == [(datetime(2025, 6, 10, 9), datetime(2025, 7, 1), 10_000_000)]
    for p in projects:  # the period holding "now" is the one the API computes
        period = compute_period(p.plan, p.monthly_limit, p.plan_changed_at or p.created_at, now,
                                plan_changed=p.plan_changed_at is not None)
        start, end = period.start.replace(tzinfo=None), period.end.replace(tzinfo=None)
        assert (start, end, period.limit) in by_project[p.project_id]
    # A later sync replaces the periods.
    loader.sync_projects(con, Plane(projects[:1]), now=now)
    assert {r[0] for r in con.execute("select project_id from raw.quota_periods").fetchall()} == {PROJECT}
