"""Data checks with great-expectations: one suite on raw events, one on the marts.

Each check is a SQL query over the warehouse that yields a small frame, validated with one GX expectation
in an ephemeral context (pandas datasource over DuckDB ``.df()``; GX over SQLAlchemy/duckdb-engine fails on
table reflection). Aggregated invariants (probabilities summing to 1, facts finding their topic) are shaped
in SQL first, so GX sees one row per thing that can be wrong and the report can show that row.

Every validation writes ``<home>/quality/<suite>-<UTC timestamp>.json`` and ``<suite>-latest.json``. A
failing suite raises ``DataCheckFailed`` whose message names each failed check, the number of bad rows and
a few examples. great_expectations is imported inside functions: it takes seconds to import.

The hourly ``check_raw`` task validates only the raw events no earlier run has validated
(``validate_raw(..., unchecked_only=True)``): ``pipeline.checked_events`` keeps the key of every event a
passing suite has seen, so the cost follows the new rows, and a row that reaches ``raw.events`` by any way
(the loader or a direct insert) is checked once.

A bad row never stops the run. A check about one row (``Check.row_level``: a null, an event time or a text
outside the ingest bounds of ``turret.bounds``) moves each row it fails from ``raw.events`` to
``raw.quarantine`` with the check's name as the reason, counts it in the report (``rows_quarantined``), and
the suite passes. Only a check about the whole batch (``event_id`` unique per project) or a check that cannot
run fails the suite; a failing suite records nothing, so the next run checks those rows again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

log = logging.getLogger(__name__)

# Sums of floating-point probabilities may differ from 1 by rounding, never by more than this.
PROBABILITY_TOLERANCE = 1e-9
# How many failing rows a report shows per check.
EXAMPLES_PER_CHECK = 5
# Keys of the raw events a passing raw suite has validated (validate_raw(unchecked_only=True); defined in
# turret.warehouse). An update in place of an already checked row is not seen: run the full suite for that.
CHECKED_EVENTS_TABLE = "pipeline.checked_events"
_UNCHECKED_EVENTS = "_turret_unchecked_events"


class DataCheckFailed(Exception):
    """A suite had failing checks. ``report`` holds the details; ``str()`` is readable on a terminal."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.render())
        self.report = report


@dataclass
class CheckResult:
    """The outcome of one expectation on one table."""

    name: str
    table: str
    expectation: str
    success: bool
    rows_checked: int
    unexpected_count: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    # Rows this (row-level) check failed that were moved to raw.quarantine instead of failing the suite.
    quarantined: int = 0

    @property
    def passed(self) -> bool:
        """Passed, or failed only on rows that are now in quarantine."""
        return self.success or (
            self.error is None and self.unexpected_count > 0 and self.quarantined == self.unexpected_count
        )


@dataclass
class Report:
    """A suite's results; ``path`` is the JSON file written for it."""

    suite: str
    success: bool
    checked_at: str
    checks: list[CheckResult]
    path: str | None = None
    # Rows the suite was limited to, when it was (raw with unchecked_only: the events not checked before).
    rows_in_scope: int | None = None
    # Rows moved to raw.quarantine because a row-level check failed on them.
    rows_quarantined: int = 0

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def render(self) -> str:
        """Multi-line text: a summary line, then each failed check with its bad rows."""
        passed = len(self.checks) - len(self.failed)
        lines = [
            f"data checks '{self.suite}': {'passed' if self.success else 'FAILED'} "
            f"({passed}/{len(self.checks)} checks passed)"
        ]
        for check in self.checks:
            if check.success:
                continue
            if check.passed:
                lines.append(f"  ! {check.name} [{check.table}]: {check.quarantined} row(s) quarantined")
            else:
                what = check.error or f"{check.unexpected_count} of {check.rows_checked} rows fail"
                lines.append(f"  x {check.name} [{check.table}, {check.expectation}]: {what}")
            for example in check.examples:
                lines.append("      " + ", ".join(f"{k}={v}" for k, v in example.items()))
        if self.path:
            lines.append(f"  full results: {self.path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as written to the JSON file."""
        return asdict(self)

    def as_dict(self) -> dict[str, Any]:
        """A compact summary (for an Airflow XCom): the full results are in the file at ``path``."""
        out = {
            "suite": self.suite,
            "success": self.success,
            "checks": len(self.checks),
            "failed": [c.name for c in self.failed],
            "path": self.path,
        }
        if self.rows_in_scope is not None:
            out["rows_in_scope"] = self.rows_in_scope
        if self.suite == "raw":
            out["rows_quarantined"] = self.rows_quarantined
        return out


@dataclass(frozen=True)
class Check:
    """A named invariant: the SQL giving the rows to look at, and the expectation they must meet."""

    name: str
    table: str
    sql: str
    expectation: Callable[[Any], Any]  # gx.expectations module -> Expectation
    # Columns shown in the report's example rows (all when None).
    example_columns: tuple[str, ...] | None = None
    # About one row (its frame has project_id and event_id): a failing row is quarantined, not fatal.
    row_level: bool = False


def raw_checks(
    settings: Settings,
    now: datetime | None = None,
    since: datetime | None = None,
    *,
    events: str = "raw.events",
) -> list[Check]:
    """Checks on raw.events: unique ids (the batch), then per row the required columns and the ingest bounds
    of ``turret.bounds`` (event time, name and id lengths, metadata keys and texts), the same bounds the
    ingest API enforces, so an event the API acknowledged passes them.

    ``since`` limits the checks to events received from then on, so a run does not pull the whole history
    into memory; uniqueness is then checked within that window. ``events`` is the relation to check (a
    table with raw.events' columns: ``validate_raw`` passes the unchecked events this way).
    """
    from turret.bounds import MAX_METADATA_KEY_LENGTH, MAX_NAME_LENGTH, MIN_TIMESTAMP, IngestBounds

    bounds = IngestBounds.from_settings(settings)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if since is not None:
        events = f"(select * from {events} where received_at >= timestamp '{since.isoformat(sep=' ')}')"
    latest = now + timedelta(seconds=bounds.max_future_skew_seconds)
    required = [
        "project_id", "event_id", "contract", "name", "session_id", "user_id",
        "occurred_at", "received_at", "metadata",
    ]  # fmt: skip
    checks = [
        Check(
            "event_id unique per project",
            "raw.events",
            f"select project_id, event_id from {events}",
            lambda E: E.ExpectCompoundColumnsToBeUnique(column_list=["project_id", "event_id"]),
        ),
    ]
    # One frame for all the null checks (run_suite reads each distinct query once).
    missing_sql = "select project_id, event_id, " + ", ".join(
        f"{column} is null as {column}_missing" for column in required
    ) + f" from {events}"
    for column in required:
        checks.append(
            Check(
                f"{column} not null",
                "raw.events",
                missing_sql,
                lambda E, column=column: E.ExpectColumnValuesToBeInSet(
                    column=f"{column}_missing", value_set=[False]
                ),
                example_columns=("project_id", "event_id", f"{column}_missing"),
                row_level=True,
            )
        )
    skew = bounds.max_future_skew_seconds
    # Event times compared as epoch seconds: GX is several times slower on timestamp columns.
    times_sql = f"""select project_id, event_id, occurred_at, received_at,
                           epoch(occurred_at) as occurred_epoch,
                           epoch(occurred_at) - epoch(received_at) as seconds_after_received
                    from {events}"""
    # Metadata is walked as key/value pairs (json_each): a key is a name, never a JSON path ("$x", "a.b").
    metadata_sql = f"""
        select e.project_id, e.event_id, count(j.key) as keys,
               coalesce(max(length(j.key)), 0) as longest_key,
               coalesce(bool_or(trim(j.key) = ''), false) as has_blank_key,
               coalesce(max(length(j.value ->> '$')) filter (where j.type = 'VARCHAR'), 0) as longest_text
        from {events} e, json_each(e.metadata) j
        group by all
    """
    labels_sql = f"""select project_id, event_id, name,
                            case when trim(name) = '' then 0 else length(name) end as name_length,
                            greatest(length(event_id), length(session_id), length(user_id)) as longest_id
                     from {events}"""
    checks += [
        Check(
            f"occurred_at between {MIN_TIMESTAMP:%Y-%m-%d} and now",
            "raw.events",
            times_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="occurred_epoch",
                min_value=MIN_TIMESTAMP.timestamp(),
                max_value=latest.replace(tzinfo=UTC).timestamp(),
            ),
            example_columns=("project_id", "event_id", "occurred_at"),
            row_level=True,
        ),
        Check(
            f"occurred_at at most {skew} s after received_at",
            "raw.events",
            times_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(column="seconds_after_received", max_value=skew),
            example_columns=("project_id", "event_id", "occurred_at", "received_at"),
            row_level=True,
        ),
        Check(
            f"name 1 to {MAX_NAME_LENGTH} characters",
            "raw.events",
            labels_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="name_length", min_value=1, max_value=MAX_NAME_LENGTH
            ),
            example_columns=("project_id", "event_id", "name_length"),
            row_level=True,
        ),
        Check(
            f"ids at most {bounds.max_id_length} characters",
            "raw.events",
            labels_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="longest_id", min_value=1, max_value=bounds.max_id_length
            ),
            example_columns=("project_id", "event_id", "longest_id"),
            row_level=True,
        ),
        Check(
            f"metadata at most {bounds.max_metadata_keys} keys",
            "raw.events",
            metadata_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(column="keys", max_value=bounds.max_metadata_keys),
            example_columns=("project_id", "event_id", "keys"),
            row_level=True,
        ),
        Check(
            f"metadata keys 1 to {MAX_METADATA_KEY_LENGTH} characters",
            "raw.events",
            metadata_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="longest_key", max_value=MAX_METADATA_KEY_LENGTH
            ),
            example_columns=("project_id", "event_id", "longest_key"),
            row_level=True,
        ),
        Check(
            "metadata keys not blank",
            "raw.events",
            metadata_sql,
            lambda E: E.ExpectColumnValuesToBeInSet(column="has_blank_key", value_set=[False]),
            example_columns=("project_id", "event_id", "has_blank_key"),
            row_level=True,
        ),
        Check(
            f"metadata texts at most {bounds.max_text_length} characters",
            "raw.events",
            metadata_sql,
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="longest_text", min_value=0, max_value=bounds.max_text_length
            ),
            example_columns=("project_id", "event_id", "longest_text"),
            row_level=True,
        ),
    ]
    return checks


def marts_checks() -> list[Check]:
    """Checks on the marts dbt built and the journey tables."""
    low, high = 1 - PROBABILITY_TOLERANCE, 1 + PROBABILITY_TOLERANCE
    return [
        Check(
            "transition probabilities sum to 1 per from-topic",
            "marts.agg_topic_transitions",
            """select project_id, field, from_topic_id, sum(probability) as probability_sum
               from marts.agg_topic_transitions group by all""",
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="probability_sum", min_value=low, max_value=high
            ),
        ),
        Check(
            "every event's topic is in dim_topics",
            "marts.fct_events",
            # One row per topic the facts use (not per event), so the frame stays small on big marts.
            """select f.project_id, f.field, f.topic_id, count(*) as events,
                      bool_and(d.topic_id is not null) as has_topic
               from marts.fct_events f
               left join marts.dim_topics d using (project_id, field, topic_id)
               group by all""",
            lambda E: E.ExpectColumnValuesToBeInSet(column="has_topic", value_set=[True]),
        ),
        # fct_events keeps every pipeline.event_topics row whose event is in raw.events, Unclustered (-1)
        # included, so together these two say: every extracted text is in fct_events with a topic. One row
        # per (project, field) with the number of texts missing and one of them as an example.
        Check(
            "every text has a topic row",
            "pipeline.event_topics",
            """select t.project_id, t.field, count(*) as texts,
                      count(*) filter (where a.event_id is null) as without_topic,
                      min(t.event_id) filter (where a.event_id is null) as example_event_id
               from pipeline.event_texts t
               left join pipeline.event_topics a using (project_id, event_id, field)
               group by all""",
            lambda E: E.ExpectColumnValuesToBeInSet(column="without_topic", value_set=[0]),
        ),
        Check(
            "every topic row reaches fct_events",
            "marts.fct_events",
            """select a.project_id, a.field, count(*) as assigned,
                      count(*) filter (where f.event_id is null) as missing_in_mart,
                      min(a.event_id) filter (where f.event_id is null) as example_event_id
               from pipeline.event_topics a
               left join marts.fct_events f using (project_id, event_id, field)
               group by all""",
            lambda E: E.ExpectColumnValuesToBeInSet(column="missing_in_mart", value_set=[0]),
        ),
        Check(
            "every text field has an Unclustered topic",
            "marts.dim_topics",
            """select project_id, field, bool_or(topic_id = -1) as has_unclustered
               from marts.dim_topics group by all""",
            lambda E: E.ExpectColumnValuesToBeInSet(column="has_unclustered", value_set=[True]),
        ),
        Check(
            "quota usage never negative",
            "marts.fct_quota_usage",
            """select project_id, plan, least(events_accepted, projected_events, coalesce(share_used, 0))
                      as smallest_value
               from marts.fct_quota_usage""",
            lambda E: E.ExpectColumnValuesToBeBetween(column="smallest_value", min_value=0),
        ),
        Check(
            "quota share between 0 and 1 unless over the limit",
            "marts.fct_quota_usage",
            """select project_id, plan, events_accepted, event_limit, share_used
               from marts.fct_quota_usage where not is_over_limit and share_used is not null""",
            lambda E: E.ExpectColumnValuesToBeBetween(column="share_used", min_value=0, max_value=1),
        ),
        # The journey marts (dbt, over turret.journeys' pipeline tables). Each query names what is wrong
        # with a row in `problem` (null when nothing is).
        Check(
            "journey paths are well-formed",
            "marts.journey_paths",
            """select project_id, field, scope, path, sessions, share,
                      case
                        when count(*) over (partition by project_id, field, scope, path_topic_ids) > 1
                          then 'duplicate path'
                        when scope not in ('session', 'user') then 'unknown scope'
                        when path_length < 2 or path_length <> len(path_topic_ids) then 'bad path_length'
                        when sessions < 1 then 'no sessions'
                        when share < 0 or share > 1 then 'share outside 0..1'
                      end as problem
               from marts.journey_paths""",
            lambda E: E.ExpectColumnValuesToBeNull(column="problem"),
            example_columns=("project_id", "field", "scope", "path", "problem"),
        ),
        Check(
            "journey topic stats are consistent",
            "marts.journey_topic_stats",
            """select project_id, field, topic_id, entries, exits, visits, user_entries, user_exits,
                      user_visits,
                      case
                        when count(*) over (partition by project_id, field, topic_id) > 1
                          then 'duplicate topic'
                        when visits < 1 or user_visits < 1 then 'no visits'
                        when greatest(entries, exits) > visits then 'entries or exits above visits'
                        when greatest(user_entries, user_exits) > user_visits
                          then 'user entries or exits above user visits'
                        when user_visits > visits then 'more users than sessions visit it'
                        when abs(dropoff_rate - exits / visits) > 1e-9
                          or abs(user_dropoff_rate - user_exits / user_visits) > 1e-9
                          then 'dropoff_rate is not exits / visits'
                      end as problem
               from marts.journey_topic_stats""",
            lambda E: E.ExpectColumnValuesToBeNull(column="problem"),
            example_columns=("project_id", "field", "topic_id", "problem"),
        ),
    ]


def validate_raw(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    since: datetime | None = None,
    unchecked_only: bool = False,
    raise_on_failure: bool = True,
) -> Report:
    """Run the raw-events suite (events received since ``since``, default all); write its JSON; raise
    ``DataCheckFailed`` if any check fails.

    ``unchecked_only`` (the hourly ``check_raw`` task) limits the suite to the events not in
    ``pipeline.checked_events`` (and received since ``since``, when given), moves the rows a row-level
    check fails to ``raw.quarantine`` (``Report.rows_quarantined``) and, when the suite passes, records the
    rest there, so each row is validated once however it got into raw.events. A failing suite records
    nothing. ``Report.rows_in_scope`` then says how many events were checked. Needs a writable connection.
    Without ``unchecked_only`` the suite is an audit of what is there: nothing moves, every failure fails.
    """
    if not unchecked_only:
        checks = raw_checks(settings, since=since)
        return run_suite("raw", checks, con, settings, raise_on_failure=raise_on_failure)

    from turret.warehouse import ensure_schema

    ensure_schema(con)
    received = "" if since is None else f"where e.received_at >= timestamp '{since.isoformat(sep=' ')}'"
    # One snapshot of the unchecked rows: the checks read it, and exactly these rows are recorded after.
    con.execute(
        f"""create or replace temp table {_UNCHECKED_EVENTS} as
            select e.* from raw.events e
            anti join {CHECKED_EVENTS_TABLE} c using (project_id, event_id, segment, line_no)
            {received}"""
    )
    try:
        (in_scope,) = con.execute(f"select count(*) from {_UNCHECKED_EVENTS}").fetchone()
        checks = raw_checks(settings, events=_UNCHECKED_EVENTS)
        report = run_suite(
            "raw", checks, con, settings, raise_on_failure=False, rows_in_scope=int(in_scope),
            quarantine=lambda failing: quarantine_events(con, failing, also_from=_UNCHECKED_EVENTS),
        )
        if report.success and in_scope:
            con.execute(
                f"""insert or ignore into {CHECKED_EVENTS_TABLE}
                    select project_id, event_id, segment, line_no, ? from {_UNCHECKED_EVENTS}
                    where project_id is not null and event_id is not null
                      and segment is not null and line_no is not null""",
                [datetime.now(UTC).replace(tzinfo=None)],
            )
    finally:
        con.execute(f"drop table if exists {_UNCHECKED_EVENTS}")
    if not report.success and raise_on_failure:
        raise DataCheckFailed(report)
    return report


def validate_marts(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, raise_on_failure: bool = True
) -> Report:
    """Run the marts suite (after dbt build); same contract as ``validate_raw``."""
    return run_suite("marts", marts_checks(), con, settings, raise_on_failure=raise_on_failure)


def quarantine_events(
    con: duckdb.DuckDBPyConnection, failing: dict[str, list[tuple[str, str]]], *, also_from: str | None = None
) -> dict[str, int]:
    """Move the events a row-level check failed from ``raw.events`` to ``raw.quarantine`` in one transaction.

    ``failing`` maps a check's name to the ``(project_id, event_id)`` keys of the rows it failed; the
    reason recorded is the first failing check's name, the line the row as JSON. ``also_from`` names a table
    holding a copy of the rows (the unchecked snapshot) to drop them from as well. Returns, per check, how
    many of its rows are now in quarantine.
    """
    import pandas as pd

    reasons: dict[tuple[str, str], str] = {}
    for name, keys in failing.items():
        for key in keys:
            if key[0] is not None and key[1] is not None:
                reasons.setdefault((str(key[0]), str(key[1])), f"data check failed: {name}")
    if not reasons:
        return {name: 0 for name in failing}
    frame = pd.DataFrame(
        [(p, e, r) for (p, e), r in reasons.items()], columns=["project_id", "event_id", "reason"]
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    con.register("_turret_quarantine_keys", frame)
    con.execute("begin transaction")
    try:
        moved = {
            (p, e)
            for p, e in con.execute(
                """insert or replace into raw.quarantine
                   select e.segment, e.line_no, q.reason, to_json(e)::varchar, ?
                   from raw.events e join _turret_quarantine_keys q using (project_id, event_id)
                   returning json_extract_string(line, '$.project_id'),
                             json_extract_string(line, '$.event_id')""",
                [now],
            ).fetchall()
        }
        # A Trieve event's body (raw.event_payloads) goes with it; the landing line keeps everything.
        for table in ("raw.events", "raw.event_payloads", *([also_from] if also_from else [])):
            con.execute(
                f"""delete from {table} t using _turret_quarantine_keys q
                    where t.project_id = q.project_id and t.event_id = q.event_id"""
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_turret_quarantine_keys")
    if moved:
        log.warning("%d event(s) quarantined by the raw data checks", len(moved))
    return {name: sum((str(k[0]), str(k[1])) in moved for k in keys) for name, keys in failing.items()}


def run_suite(
    suite: str,
    checks: list[Check],
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    raise_on_failure: bool = True,
    rows_in_scope: int | None = None,
    quarantine: Callable[[dict[str, list[tuple[str, str]]]], dict[str, int]] | None = None,
) -> Report:
    """Validate every check (a missing table or a broken query is a failed check, not a crash).

    With ``quarantine``, the keys of the rows each failing row-level check flagged are passed to it (see
    :func:`quarantine_events`) and the counts it returns are recorded; such a check then passes the suite.
    When a batch-level check fails (or a check cannot run) nothing is passed: the batch stays as it is.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars would flood the Airflow task log.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(f"turret_{suite}")
    batch_definition = source.add_dataframe_asset(name="frame").add_batch_definition_whole_dataframe("all")

    frames: dict[str, Any] = {}
    failing: dict[str, list[tuple[str, str]]] = {}
    results = []
    for check in checks:
        result, keys = _run_check(check, con, batch_definition, gx.expectations, frames,
                                  complete=quarantine is not None and check.row_level)
        results.append(result)
        if keys:
            failing[check.name] = keys
    quarantined_rows = 0
    # Rows move only when every other finding is about single rows: a failing batch stays as it is.
    batch_ok = all(
        result.success or (check.row_level and result.error is None)
        for check, result in zip(checks, results, strict=True)
    )
    if quarantine is not None and failing and batch_ok:
        counts = quarantine(failing)
        for result in results:
            result.quarantined = counts.get(result.name, 0)
        quarantined_rows = len({k for keys in failing.values() for k in keys if None not in k})
    report = Report(
        suite=suite,
        success=all(r.passed for r in results),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        checks=results,
        rows_in_scope=rows_in_scope,
        rows_quarantined=quarantined_rows,
    )
    report.path = str(_write_report(report, settings))
    if not report.success and raise_on_failure:
        raise DataCheckFailed(report)
    return report


def _run_check(
    check: Check, con: Any, batch_definition: Any, expectations: Any, frames: dict[str, Any], *,
    complete: bool = False,
) -> tuple[CheckResult, list[tuple[str, str]]]:
    """The check's result and, with ``complete``, the ``(project_id, event_id)`` of every failing row."""
    expectation = check.expectation(expectations)
    kind = type(expectation).__name__
    try:
        if check.sql not in frames:
            frames[check.sql] = con.execute(check.sql).df()
        frame = frames[check.sql]
    except Exception as exc:  # a missing table or column is itself a finding
        return CheckResult(check.name, check.table, kind, False, 0, 0, error=_first_line(exc)), []
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(expectation, result_format="COMPLETE" if complete else "SUMMARY")
    info = outcome.result or {}
    if outcome.exception_info and outcome.exception_info.get("raised_exception"):
        error = outcome.exception_info.get("exception_message")
        return CheckResult(check.name, check.table, kind, False, len(frame), 0, error=error), []
    all_indexes = info.get("unexpected_index_list") or info.get("partial_unexpected_index_list") or []
    indexes = all_indexes[:EXAMPLES_PER_CHECK]
    shown = frame[list(check.example_columns)] if check.example_columns else frame
    examples = [_plain(shown.loc[i].to_dict()) for i in indexes if i in shown.index]
    keys: list[tuple[str, str]] = []
    if complete and not outcome.success:
        keyed = frame[["project_id", "event_id"]]
        keys = [tuple(keyed.loc[i]) for i in all_indexes if i in keyed.index]  # type: ignore[misc]
    result = CheckResult(
        name=check.name,
        table=check.table,
        expectation=kind,
        success=bool(outcome.success),
        rows_checked=len(frame),
        unexpected_count=int(info.get("unexpected_count") or 0),
        examples=examples,
    )
    return result, keys


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly values (timestamps and numpy scalars become str/float/int)."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if not isinstance(value, str | int | float | bool | type(None)):
            value = str(value)
        out[key] = value
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _write_report(report: Report, settings: Settings) -> Path:
    """``<home>/quality/<suite>-<stamp>.json`` plus ``<suite>-latest.json``, each written atomically."""
    folder = Path(settings.home) / "quality"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{report.suite}-{stamp}.json"
    report.path = str(path)
    text = json.dumps(report.to_dict(), indent=2, default=str)
    for target in (path, folder / f"{report.suite}-latest.json"):
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return path
