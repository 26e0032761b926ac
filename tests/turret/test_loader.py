"""The loader: sealed landing segments into raw.events exactly once, bad lines quarantined, projects
synced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pytest
from turret import loader
from turret.warehouse import ensure_schema

from tests.fixtures.landing import PROJECT, record, write_segment

OTHER = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


def test_loads_valid_rows_quarantines_bad_ones_and_never_twice(con, tmp_path):
    root = tmp_path / "landing"
    write_segment(
        root,
        "hostA-1-20250615T120000000000Z-aa",
        [
            record("evt_" + "1" * 32),
            record("evt_" + "2" * 32),
            "{not json",
            json.dumps({"v": 1, "event_id": "x"}),  # missing keys
            record("evt_" + "1" * 32, prompt="second copy in the same segment"),  # duplicate
        ],
    )
    write_segment(
        root,
        "hostB-2-20250615T120100000000Z-bb",
        [record("evt_" + "1" * 32, prompt="third copy"), record("evt_" + "1" * 32, project=OTHER)],
    )
    write_segment(root, "hostC-3-20250615T120200000000Z-cc", [record("evt_" + "9" * 32)], sealed=False)

    stats = loader.load_landing(con, root)
    assert (stats.segments, stats.rows_loaded, stats.rows_duplicate, stats.rows_quarantined) == (2, 3, 2, 2)

    rows = con.execute(
        "select project_id, event_id, metadata ->> '$.prompt', segment, line_no from raw.events order by all"
    ).fetchall()
    assert rows == [
        (PROJECT, "evt_" + "1" * 32, "How do I reset my password?",
         "date=2025-06-15/hour=12/hostA-1-20250615T120000000000Z-aa.jsonl", 1),
        (PROJECT, "evt_" + "2" * 32, "How do I reset my password?",
         "date=2025-06-15/hour=12/hostA-1-20250615T120000000000Z-aa.jsonl", 2),
        (OTHER, "evt_" + "1" * 32, "How do I reset my password?",
         "date=2025-06-15/hour=12/hostB-2-20250615T120100000000Z-bb.jsonl", 2),
    ]
    quarantine = con.execute("select line_no, reason, line from raw.quarantine order by line_no").fetchall()
    assert [q[0] for q in quarantine] == [3, 4]
    assert "invalid JSON" in quarantine[0][1] and quarantine[0][2] == "{not json"
    assert "missing key" in quarantine[1][1]
    manifest = con.execute(
        "select segment, rows_loaded, rows_quarantined, rows_duplicate from raw.loaded_segments order by 1"
    ).fetchall()
    assert [m[1:] for m in manifest] == [(2, 2, 1), (1, 0, 1)]

    again = loader.load_landing(con, root)
    assert again == loader.LoadStats(0, 0, 0, 0)
    assert con.execute("select count(*) from raw.events").fetchone()[0] == 3


def test_first_copy_received_wins_across_segments_of_one_load(con, tmp_path):
    """Two server processes landed the same event_id with different bodies: the copy received first wins,
    whatever order the segment names sort in; the manifest and the stats count the other as a duplicate."""
    root = tmp_path / "landing"
    event = "evt_" + "7" * 32
    write_segment(root, "hostA-1-20250615T120000000000Z-aa", [
        record(event, prompt="received second", received_at="2025-06-15T12:05:00.000000Z"),
        record("evt_" + "8" * 32),
    ])
    write_segment(root, "hostB-2-20250615T120100000000Z-bb", [
        record(event, prompt="received first", received_at="2025-06-15T12:01:00.000000Z"),
    ])
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_duplicate) == (2, 1)
    assert con.execute(
        "select metadata ->> '$.prompt', segment from raw.events where event_id = ?", [event]
    ).fetchall() == [("received first", "date=2025-06-15/hour=12/hostB-2-20250615T120100000000Z-bb.jsonl")]
    manifest = con.execute(
        "select rows_loaded, rows_duplicate from raw.loaded_segments order by segment"
    ).fetchall()
    assert manifest == [(1, 1), (1, 0)]


def test_the_first_copy_keeps_its_own_trieve_payload(con, tmp_path):
    root = tmp_path / "landing"
    event = "evt_" + "7" * 32

    def trieve(query: str, received_at: str) -> dict:
        rec = record(event, prompt=query, received_at=received_at)
        rec.update(contract="trieve", event_type="search", payload={"event_type": "search", "query": query})
        return rec

    write_segment(root, "hostA-1-20250615T120000000000Z-aa", [trieve("second", "2025-06-15T12:05:00Z")])
    write_segment(root, "hostB-2-20250615T120100000000Z-bb", [trieve("first", "2025-06-15T12:01:00Z")])
    loader.load_landing(con, root)
    assert con.execute("select payload ->> '$.query' from raw.event_payloads").fetchall() == [("first",)]


def test_a_copy_loaded_by_an_earlier_load_is_kept(con, tmp_path):
    """Once loaded, an event may have been checked and embedded: a late segment never replaces it."""
    root = tmp_path / "landing"
    event = "evt_" + "7" * 32
    write_segment(root, "hostA-1-20250615T120000000000Z-aa", [
        record(event, prompt="loaded first", received_at="2025-06-15T12:05:00.000000Z"),
    ])
    loader.load_landing(con, root)
    write_segment(root, "hostB-2-20250615T120100000000Z-bb", [
        record(event, prompt="sealed late", received_at="2025-06-15T12:01:00.000000Z"),
    ])
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_duplicate) == (0, 1)
    assert con.execute("select metadata ->> '$.prompt' from raw.events").fetchall() == [("loaded first",)]


OUT_OF_BOUNDS = [
    pytest.param({"timestamp": "1969-12-31T23:59:59.000000Z"}, "before 1970-01-01", id="before-1970"),
    pytest.param({"timestamp": "2025-06-15T12:10:01.000000Z"}, "seconds in the future", id="future"),
    pytest.param({"metadata": {"prompt": "x" * 10_001}}, "metadata.prompt is 10001 characters",
                 id="long-text"),
    pytest.param({"metadata": {"k" * 129: "x"}}, "129 characters", id="long-key"),
    pytest.param({"metadata": {" ": "x"}}, "empty key", id="blank-key"),
    pytest.param({"name": "n" * 201}, "name is 201 characters", id="long-name"),
    pytest.param({"user_id": "u" * 257}, "user_id is 257 characters", id="long-id"),
]


@pytest.mark.parametrize(("changes", "words"), OUT_OF_BOUNDS)
def test_a_record_outside_the_ingest_bounds_is_quarantined_with_the_bound(con, tmp_path, changes, words):
    root = tmp_path / "landing"
    write_segment(root, "h-1-20250615T120000000000Z-aa", [record("evt_" + "1" * 32, **changes),
                                                          record("evt_" + "2" * 32)])
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_quarantined) == (1, 1)
    [(line_no, reason)] = con.execute("select line_no, reason from raw.quarantine").fetchall()
    assert line_no == 1 and reason.startswith("out of bounds: ") and words in reason


def test_bounds_follow_the_settings(con, tmp_path):
    from turret.bounds import IngestBounds
    from turret.settings import Settings

    root = tmp_path / "landing"
    write_segment(root, "h-1-20250615T120000000000Z-aa", [record("evt_" + "1" * 32, prompt="x" * 50)])
    tight = IngestBounds.from_settings(Settings(max_text_length=40))
    assert loader.load_landing(con, root, bounds=tight).rows_quarantined == 1


def test_dollar_and_dotted_keys_load_as_names(con, tmp_path):
    root = tmp_path / "landing"
    rec = record("evt_" + "1" * 32)
    rec["metadata"] = {"$prompt": "How do I reset it?", "a.b": "x", "$.c": "y"}
    write_segment(root, "h-1-20250615T120000000000Z-aa", [rec])
    assert loader.load_landing(con, root).rows_loaded == 1
    keys = con.execute("select j.key from raw.events, json_each(metadata) j order by 1").fetchall()
    assert keys == [("$.c",), ("$prompt",), ("a.b",)]


def test_timestamps_are_naive_utc_and_columns_typed(con, tmp_path):
    root = tmp_path / "landing"
    rec = record("evt_" + "a" * 32, timestamp="2025-06-15T14:30:00+02:00",
                 received_at="2025-06-15T12:31:00.250000Z")
    rec.update(contract="trieve", event_type="search", payload={"query": "x"})
    rec["metadata"] = {"query": "ünïcode ✓", "n": 3, "ok": True, "none": None}
    write_segment(root, "h-1-20250615T120000000000Z-aa", [rec])
    loader.load_landing(con, root)
    row = con.execute(
        "select occurred_at, received_at, contract, event_type, session_id_generated, user_id_generated, "
        "metadata from raw.events"
    ).fetchone()
    assert row[0] == datetime(2025, 6, 15, 12, 30) and row[0].tzinfo is None
    assert row[1] == datetime(2025, 6, 15, 12, 31, 0, 250000)
    assert row[2:6] == ("trieve", "search", False, True)
    assert json.loads(row[6]) == {"query": "ünïcode ✓", "n": 3, "ok": True, "none": None}


def test_a_failed_segment_leaves_nothing_and_loads_on_the_next_run(con, tmp_path, monkeypatch):
    root = tmp_path / "landing"
    write_segment(root, "h-1-20250615T120000000000Z-aa", [record("evt_" + "1" * 32), "garbage"])
    real = loader._insert_events

    def insert_then_fail(c, rows):
        real(c, rows)
        raise RuntimeError("disk full")

    monkeypatch.setattr(loader, "_insert_events", insert_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        loader.load_landing(con, root)
    for table in ("raw.events", "raw.quarantine", "raw.loaded_segments"):
        assert con.execute(f"select count(*) from {table}").fetchone()[0] == 0, table

    monkeypatch.setattr(loader, "_insert_events", real)
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_quarantined) == (1, 1)


def test_torn_last_line_is_quarantined(con, tmp_path):
    root = tmp_path / "landing"
    path = write_segment(root, "h-1-20250615T120000000000Z-aa", [record("evt_" + "1" * 32)])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"v": 1, "event_id": "evt_')  # the writer died mid-line
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_quarantined) == (1, 1)
    assert "torn line" in con.execute("select reason from raw.quarantine").fetchone()[0]


def test_missing_landing_root_loads_nothing(con, tmp_path):
    assert loader.load_landing(con, tmp_path / "nowhere") == loader.LoadStats()


def test_bulk_load_of_many_events(con, tmp_path):
    root = tmp_path / "landing"
    n = 20_000
    lines = [record(f"evt_{i:032x}", prompt=f"question number {i}") for i in range(n)]
    write_segment(root, "h-1-20250615T120000000000Z-aa", lines[: n // 2])
    write_segment(root, "h-1-20250615T130000000000Z-bb", lines[n // 2 - 100 :], hour="hour=13")
    stats = loader.load_landing(con, root)
    assert (stats.rows_loaded, stats.rows_duplicate) == (n, 100)
    assert con.execute("select count(distinct event_id) from raw.events").fetchone()[0] == n


@dataclass
class Project:
    project_id: str
    name: str
    plan: str
    monthly_limit: int | None
    created_at: datetime


class FakeControlPlane:
    def __init__(self, projects):
        self.projects = projects

    def list_projects(self):
        return list(self.projects)


def test_sync_projects_replaces_the_snapshot(con):
    first = FakeControlPlane(
        [
            Project(PROJECT, "acme", "pro", 100_000, datetime(2025, 1, 1, 10, tzinfo=UTC)),
            Project(OTHER, "trialco", "trial", None, datetime(2025, 6, 10)),
        ]
    )
    assert loader.sync_projects(con, first) == 2
    assert loader.sync_projects(con, FakeControlPlane([first.projects[1]])) == 1
    assert con.execute("select * from raw.projects").fetchall() == [
        (OTHER, "trialco", "trial", None, datetime(2025, 6, 10))
    ]
