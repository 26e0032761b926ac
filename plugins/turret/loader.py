"""Load sealed landing segments into ``raw.events``, and snapshot the control plane's projects.

Each segment is loaded exactly once, in one transaction: its valid rows go to ``raw.events`` (a repeated
``(project_id, event_id)`` is skipped, first one wins, and counted), its malformed lines to ``raw.quarantine``
with the reason, and one manifest row to ``raw.loaded_segments``. A crash mid-segment leaves nothing behind,
so the next run loads the whole segment again; a loaded segment is never read twice.

Lines are parsed in Python (the landing reader validates them) and inserted in bulk from a pandas frame:
per-row inserts would cost seconds per thousand rows in DuckDB.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

_EVENT_COLUMNS = (
    "project_id",
    "event_id",
    "contract",
    "event_type",
    "name",
    "session_id",
    "user_id",
    "session_id_generated",
    "user_id_generated",
    "occurred_at",
    "received_at",
    "metadata",
    "segment",
    "line_no",
)


@dataclass
class LoadStats:
    """What one ``load_landing`` call did."""

    segments: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0


def _utc_now() -> datetime:
    """Naive UTC, like every timestamp in the warehouse (DuckDB's now() would follow the session zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(text: str) -> datetime:
    from turret.landing import parse_iso

    return parse_iso(text).astimezone(UTC).replace(tzinfo=None)


def segment_key(path: Path, root: Path) -> str:
    """How a segment is named in the warehouse: its path relative to the landing root (stable if moved)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _event_row(record: dict[str, Any], segment: str, line_no: int) -> tuple:
    return (
        record["project_id"],
        record["event_id"],
        record["contract"],
        record.get("event_type"),
        record["name"],
        record["session_id"],
        record["user_id"],
        bool(record["session_id_generated"]),
        bool(record["user_id_generated"]),
        _naive_utc(record["timestamp"]),
        _naive_utc(record["received_at"]),
        json.dumps(record["metadata"], ensure_ascii=False, separators=(",", ":")),
        segment,
        line_no,
    )


def _parse_segment(path: Path, segment: str) -> tuple[list[tuple], list[tuple]]:
    """(event rows, quarantine rows) of one segment; within-segment duplicates are left for SQL to drop."""
    from turret.landing import read_segment

    rows: list[tuple] = []
    bad: list[tuple] = []
    for line in read_segment(path):
        if line.record is None:
            bad.append((segment, line.line_no, line.error or "invalid record", line.raw))
            continue
        try:
            rows.append(_event_row(line.record, segment, line.line_no))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # The reader validated the record; this only guards against a writer of a newer format.
            bad.append((segment, line.line_no, f"cannot convert record: {exc}", line.raw))
    return rows, bad


def _insert_events(con: "duckdb.DuckDBPyConnection", rows: list[tuple]) -> int:
    """Insert rows not already in raw.events; within the batch the earliest line wins. Returns rows added."""
    import pandas as pd

    if not rows:
        return 0
    frame = pd.DataFrame.from_records(rows, columns=list(_EVENT_COLUMNS))
    con.register("_turret_load_batch", frame)
    try:
        before = con.execute("select count(*) from raw.events").fetchall()[0][0]
        con.execute(
            """
            insert into raw.events
            select
                b.project_id, b.event_id, b.contract, b.event_type, b.name, b.session_id, b.user_id,
                b.session_id_generated, b.user_id_generated,
                cast(b.occurred_at as timestamp), cast(b.received_at as timestamp),
                cast(b.metadata as json), b.segment, cast(b.line_no as integer)
            from _turret_load_batch b
            anti join raw.events e on e.project_id = b.project_id and e.event_id = b.event_id
            qualify row_number() over (partition by b.project_id, b.event_id order by b.line_no) = 1
            """
        )
        after = con.execute("select count(*) from raw.events").fetchall()[0][0]
    finally:
        con.unregister("_turret_load_batch")
    return after - before


def load_segment(con: "duckdb.DuckDBPyConnection", path: Path, segment: str) -> LoadStats:
    """Load one segment in one transaction (the caller checked it is not loaded yet)."""
    rows, bad = _parse_segment(path, segment)
    now = _utc_now()
    con.execute("begin transaction")
    try:
        loaded = _insert_events(con, rows)
        if bad:
            con.executemany(
                "insert or replace into raw.quarantine values (?, ?, ?, ?, ?)", [(*b, now) for b in bad]
            )
        duplicates = len(rows) - loaded
        con.execute(
            "insert into raw.loaded_segments values (?, ?, ?, ?, ?)",
            [segment, now, loaded, len(bad), duplicates],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    if bad:
        log.warning("segment %s: %d line(s) quarantined, first: %s", segment, len(bad), bad[0][2])
    return LoadStats(segments=1, rows_loaded=loaded, rows_duplicate=duplicates, rows_quarantined=len(bad))


def load_landing(
    con: "duckdb.DuckDBPyConnection",
    landing_root: str | Path,
    *,
    storage_options: dict[str, Any] | None = None,
) -> LoadStats:
    """Load every sealed segment under ``landing_root`` that is not in ``raw.loaded_segments`` yet.

    ``landing_root`` is the local landing store (read straight from disk), or an fsspec URL where sealed
    segments were shipped (``TURRET_LANDING_URL``, e.g. ``s3://bucket/landing``; turret.storage), listed and
    read through fsspec with ``storage_options``. Segments are keyed by their path relative to the root either
    way, so switching from the local store to a URL holding the same segments loads nothing twice.
    """
    from turret import storage

    total = LoadStats()
    done = {r[0] for r in con.execute("select segment from raw.loaded_segments").fetchall()}
    if storage.is_local(landing_root):
        from turret.landing import iter_sealed_segments

        root = storage.local_path(landing_root)
        for path in iter_sealed_segments(root) if root.exists() else ():
            if (segment := segment_key(path, root)) not in done:
                _add(total, load_segment(con, path, segment))
        return total
    url = str(landing_root)
    for segment in storage.list_sealed(url, storage_options):
        if segment not in done:
            with storage.local_copy(url, segment, storage_options) as path:
                _add(total, load_segment(con, path, segment))
    return total


def _add(total: LoadStats, stats: LoadStats) -> None:
    total.segments += 1
    total.rows_loaded += stats.rows_loaded
    total.rows_duplicate += stats.rows_duplicate
    total.rows_quarantined += stats.rows_quarantined


def sync_projects(con: "duckdb.DuckDBPyConnection", control_plane: Any) -> int:
    """Replace ``raw.projects`` with the control plane's projects in one transaction; returns the count."""
    rows = []
    for p in control_plane.list_projects():
        created = p.created_at
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        if created.tzinfo is not None:
            created = created.astimezone(UTC).replace(tzinfo=None)
        rows.append((str(p.project_id), p.name, p.plan, p.monthly_limit, created))
    con.execute("begin transaction")
    try:
        con.execute("delete from raw.projects")
        if rows:
            con.executemany("insert into raw.projects values (?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)
