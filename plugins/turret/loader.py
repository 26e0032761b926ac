"""Load sealed landing segments into ``raw.events``; snapshot the control plane's projects and quota periods.

Each segment is loaded exactly once, in one transaction: its valid rows go to ``raw.events`` and the body of
each Trieve event, as sent, to ``raw.event_payloads`` (a repeated ``(project_id, event_id)`` is skipped,
first one wins, and counted), its malformed lines to ``raw.quarantine`` with the reason, and one manifest
row to ``raw.loaded_segments``. A crash mid-segment leaves nothing behind,
so the next run loads the whole segment again; a loaded segment is never read twice.

Lines are parsed in Python (the landing reader validates them) and inserted in bulk from a pandas frame:
per-row inserts would cost seconds per thousand rows in DuckDB.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from turret.bounds import IngestBounds

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
    "payload",
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
        _payload_json(record.get("payload")),
    )


def _payload_json(payload: Any) -> str | None:
    if payload is None:
        return None
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _parse_segment(
    path: Path, segment: str, bounds: IngestBounds | None = None
) -> tuple[list[tuple], list[tuple]]:
    """(event rows, quarantine rows) of one segment; within-segment duplicates are left for SQL to drop.

    A record outside the ingest bounds (``turret.bounds``: written under looser settings, or by hand) is
    quarantined with the bound it breaks, like a malformed line.
    """
    from turret.landing import read_segment

    bounds = bounds or _default_bounds()
    rows: list[tuple] = []
    bad: list[tuple] = []
    for line in read_segment(path):
        if line.record is None:
            bad.append((segment, line.line_no, line.error or "invalid record", line.raw))
            continue
        if (problem := bounds.record_problem(line.record)) is not None:
            bad.append((segment, line.line_no, problem, line.raw))
            continue
        try:
            rows.append(_event_row(line.record, segment, line.line_no))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # The reader validated the record; this only guards against a writer of a newer format.
            bad.append((segment, line.line_no, f"cannot convert record: {exc}", line.raw))
    return rows, bad


def _insert_events(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> int:
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
        # The body as sent, for the rows that won: same (project, event) and the same landed line.
        con.execute(
            """
            insert or replace into raw.event_payloads
            select b.project_id, b.event_id, cast(b.payload as json)
            from _turret_load_batch b
            semi join raw.events e
                on e.project_id = b.project_id and e.event_id = b.event_id
                and e.segment = b.segment and e.line_no = cast(b.line_no as integer)
            where b.payload is not null
            """
        )
    finally:
        con.unregister("_turret_load_batch")
    return after - before


def _default_bounds() -> IngestBounds:
    from turret.bounds import IngestBounds
    from turret.settings import Settings

    return IngestBounds.from_settings(Settings())


def _drop_later_copies(
    con: duckdb.DuckDBPyConnection, rows: list[tuple], replaceable: Collection[str]
) -> int:
    """First copy wins across segments: delete the rows of ``replaceable`` segments (loaded by this same
    load, so nothing downstream has read them) that a row of ``rows`` received earlier repeats, and move
    them from ``rows_loaded`` to ``rows_duplicate`` in their segments' manifest. Returns how many went."""
    import pandas as pd

    if not rows or not replaceable:
        return 0
    keys = pd.DataFrame(
        [(r[0], r[1], r[10]) for r in rows], columns=["project_id", "event_id", "received_at"]
    )
    segments = pd.DataFrame({"segment": sorted(replaceable)})
    con.register("_turret_copy_keys", keys)
    con.register("_turret_replaceable", segments)
    try:
        beaten = con.execute(
            """
            select e.project_id, e.event_id, e.segment from raw.events e
            join (select project_id, event_id, min(cast(received_at as timestamp)) as received_at
                  from _turret_copy_keys group by all) k
              on e.project_id = k.project_id and e.event_id = k.event_id and k.received_at < e.received_at
            semi join _turret_replaceable r on r.segment = e.segment
            """
        ).fetchall()
        for project_id, event_id, segment in beaten:
            for table in ("raw.events", "raw.event_payloads"):  # the payload goes with its event
                con.execute(
                    f"delete from {table} where project_id = ? and event_id = ?", [project_id, event_id]
                )
            con.execute(
                """update raw.loaded_segments
                   set rows_loaded = rows_loaded - 1, rows_duplicate = rows_duplicate + 1
                   where segment = ?""",
                [segment],
            )
    finally:
        con.unregister("_turret_copy_keys")
        con.unregister("_turret_replaceable")
    return len(beaten)


def load_segment(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    segment: str,
    *,
    bounds: IngestBounds | None = None,
    replaceable: Collection[str] = (),
) -> LoadStats:
    """Load one segment in one transaction (the caller checked it is not loaded yet).

    ``replaceable`` names segments loaded earlier by the same load: a copy of an event they hold that this
    segment received earlier (another server process, the same hour) replaces theirs, so the first copy
    received wins whatever order the segments are read in.
    """
    rows, bad = _parse_segment(path, segment, bounds)
    now = _utc_now()
    con.execute("begin transaction")
    try:
        replaced = _drop_later_copies(con, rows, replaceable)
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
    # Net of the copies this segment took over from segments counted before it in the same load.
    return LoadStats(segments=1, rows_loaded=loaded - replaced, rows_duplicate=duplicates + replaced,
                     rows_quarantined=len(bad))


def load_landing(
    con: duckdb.DuckDBPyConnection,
    landing_root: str | Path,
    *,
    storage_options: dict[str, Any] | None = None,
    bounds: IngestBounds | None = None,
) -> LoadStats:
    """Load every sealed segment under ``landing_root`` that is not in ``raw.loaded_segments`` yet.

    ``bounds`` (default: those of the default settings) are the ingest bounds a record must be within to
    load; one outside them is quarantined. Among the copies of one event these segments hold, the one
    received first wins (``load_segment``'s ``replaceable``); a copy already loaded by an earlier load
    stays (it may have been processed since).

    ``landing_root`` is the local landing store (read straight from disk), or an fsspec URL where sealed
    segments were shipped (``TURRET_LANDING_URL``, e.g. ``s3://bucket/landing``; turret.storage), listed and
    read through fsspec with ``storage_options``. Segments are keyed by their path relative to the root either
    way, so switching from the local store to a URL holding the same segments loads nothing twice.
    """
    from turret import storage

    total = LoadStats()
    bounds = bounds or _default_bounds()
    done = {r[0] for r in con.execute("select segment from raw.loaded_segments").fetchall()}
    loaded_now: list[str] = []

    def load(path: Path, segment: str) -> None:
        _add(total, load_segment(con, path, segment, bounds=bounds, replaceable=loaded_now))
        loaded_now.append(segment)

    if storage.is_local(landing_root):
        from turret.landing import iter_sealed_segments

        root = storage.local_path(landing_root)
        for path in iter_sealed_segments(root) if root.exists() else ():
            if (segment := segment_key(path, root)) not in done:
                load(path, segment)
        return total
    url = str(landing_root)
    for segment in storage.list_sealed(url, storage_options):
        if segment not in done:
            with storage.local_copy(url, segment, storage_options) as path:
                load(path, segment)
    return total


def _add(total: LoadStats, stats: LoadStats) -> None:
    total.segments += 1
    total.rows_loaded += stats.rows_loaded
    total.rows_duplicate += stats.rows_duplicate
    total.rows_quarantined += stats.rows_quarantined


def quota_period_rows(project: Any, until: datetime) -> list[tuple]:
    """``(project_id, period_start, period_end, event_limit)`` of each quota period of ``project`` through
    the one containing ``until``, by the plan rules (turret.plans), in naive UTC like the warehouse."""
    from turret.plans import quota_periods

    changed_at = getattr(project, "plan_changed_at", None)
    periods = quota_periods(
        project.plan, project.monthly_limit, changed_at or project.created_at, until,
        plan_changed=changed_at is not None,
    )
    return [(str(project.project_id), _naive(start), _naive(end), limit) for start, end, limit in periods]


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo is not None else dt


def sync_projects(con: duckdb.DuckDBPyConnection, control_plane: Any, *, now: datetime | None = None) -> int:
    """Replace ``raw.projects`` with the control plane's projects, and ``raw.quota_periods`` with their quota
    periods through the one containing ``now`` (default: now), in one transaction; returns the count.

    The quota mart reads the periods instead of restating the plan rules (docs/adr/0010-plan-rules-owner.md).
    """
    until = now or datetime.now(UTC)
    rows, periods = [], []
    for p in control_plane.list_projects():
        created = p.created_at
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        rows.append((str(p.project_id), p.name, p.plan, p.monthly_limit, _naive(created)))
        periods.extend(quota_period_rows(p, until))
    con.execute("begin transaction")
    try:
        con.execute("delete from raw.projects")
        con.execute("delete from raw.quota_periods")
        if rows:
            con.executemany("insert into raw.projects values (?, ?, ?, ?, ?)", rows)
        if periods:
            con.executemany("insert into raw.quota_periods values (?, ?, ?, ?)", periods)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)
