"""Metadata field typing: decide per project and key whether a field is ``text``, ``enum`` or ``number``.

A field's type is detected when its first event is loaded and re-validated on every run from all values
seen so far (docs/topics.md, "Field typing"; docs/adr/0004-field-typing.md). Only ``text`` fields are
embedded and clustered, so the expensive mistake is calling an id or a category "text"; the rules lean
towards ``enum`` when in doubt.

Rules, applied to the non-null values of one field:

1. no non-null value yet               -> enum   (nothing to cluster or sum; re-checked next run)
2. all booleans                        -> enum
3. all JSON numbers or numeric strings -> number (a numeric string with a leading zero, "007" or "02139",
                                                  is a code, not a quantity: it makes the field enum)
4. otherwise every value is read as a string (numbers and booleans mixed in too):
   text if at least half the values read like prose (three or more words, or 40+ characters with a space)
   and values are not a handful repeated over and over (<= 20 distinct over 50+ values, or a distinct
   ratio under 5% over 50+ values, is a menu of canned phrases: enum); else enum. Ids (uuid-like, no
   spaces, all distinct) are therefore enum: a high-cardinality enum that is never clustered.

An override (``set_override``) always wins; ``auto`` clears it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import duckdb

    from turret.settings import Settings

TYPES = ("text", "enum", "number")
EXAMPLES_PER_FIELD = 5

# Prose detection (rule 4).
PROSE_MIN_WORDS = 3
PROSE_MIN_CHARS = 40
PROSE_MIN_SHARE = 0.5
# Canned-phrase detection: a field repeats few values many times.
CANNED_MIN_VALUES = 50
CANNED_MAX_DISTINCT = 20
CANNED_MAX_DISTINCT_RATIO = 0.05

# A JSON-ish decimal without a leading zero (0 itself and 0.5 are fine); exponents allowed.
_NUMERIC_RE = r"^\s*[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*$"
_PROSE_RE = r"\S+\s+\S+\s+\S+"


class FieldError(ValueError):
    """A field command got a value it cannot use; the message says what is wrong."""


@dataclass
class FieldStats:
    """What detection looks at: counts over all non-null values of one (project, field)."""

    n_values: int = 0
    n_distinct: int = 0
    n_bool: int = 0
    n_number: int = 0
    n_numeric_string: int = 0
    n_string: int = 0
    n_prose: int = 0
    examples: list[Any] = field(default_factory=list)


@dataclass
class FieldType:
    """One row of ``pipeline.fields``."""

    project_id: str
    field: str
    detected_type: str
    override_type: str | None
    effective_type: str
    n_values: int
    n_distinct: int
    examples: list[Any]
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return out


def detect_type(stats: FieldStats) -> str:
    """The detected type for these statistics (rules in the module docstring)."""
    n = stats.n_values
    if n == 0:
        return "enum"
    if stats.n_bool == n:
        return "enum"
    if stats.n_number + stats.n_numeric_string == n:
        return "number"
    prose_share = stats.n_prose / n
    if prose_share < PROSE_MIN_SHARE:
        return "enum"
    if n >= CANNED_MIN_VALUES and (
        stats.n_distinct <= CANNED_MAX_DISTINCT or stats.n_distinct / n < CANNED_MAX_DISTINCT_RATIO
    ):
        return "enum"
    return "text"


def _scalar_values_sql(project_filter: str) -> str:
    # One row per (event, non-null scalar metadata value). `s` is the value as text: JSON strings
    # unquoted, numbers and booleans as written.
    return f"""
        select e.project_id, j.key as field, j.type as jtype, j.value ->> '$' as s
        from raw.events e, json_each(e.metadata) j
        where j.type not in ('NULL', 'OBJECT', 'ARRAY') {project_filter}
    """


def compute_stats(
    con: duckdb.DuckDBPyConnection, project_id: str | None = None, *, scrub_examples: bool = True
) -> dict[tuple, FieldStats]:
    """Statistics of every (project, field) seen in ``raw.events`` (only ``project_id`` if given).

    Fields whose every value so far is null still get an entry (``n_values`` 0). Example values are raw
    metadata (for a text field: whole user prompts), so string examples go through ``turret.scrub`` unless
    ``scrub_examples`` is false (``TURRET_SCRUB_PII=false``), as texts do on their way to the topic engine.
    """
    where = "and e.project_id = $project" if project_id else ""
    params = {"project": project_id} if project_id else {}
    stats: dict[tuple, FieldStats] = {}
    keys_sql = f"""
        select distinct e.project_id, j.key
        from raw.events e, json_each(e.metadata) j
        where true {where}
    """
    for pid, key in con.execute(keys_sql, params).fetchall():
        stats[(pid, key)] = FieldStats()
    agg_sql = f"""
        with v as ({_scalar_values_sql(where)})
        select project_id, field,
            count(*) as n_values,
            count(distinct s) as n_distinct,
            count(*) filter (where jtype = 'BOOLEAN') as n_bool,
            count(*) filter (where jtype in ('BIGINT', 'UBIGINT', 'DOUBLE')) as n_number,
            count(*) filter (where jtype = 'VARCHAR' and regexp_matches(s, '{_NUMERIC_RE}'))
                as n_numeric_string,
            count(*) filter (where jtype = 'VARCHAR') as n_string,
            count(*) filter (
                where jtype = 'VARCHAR'
                and (regexp_matches(s, '{_PROSE_RE}')
                     or (length(s) >= {PROSE_MIN_CHARS} and regexp_matches(s, '\\s')))
            ) as n_prose
        from v
        group by all
    """
    for row in con.execute(agg_sql, params).fetchall():
        pid, key, *counts = row
        stats[(pid, key)] = FieldStats(*counts)
    # Examples: the most frequent values first (ties by value), so they are stable between runs.
    examples_sql = f"""
        with v as ({_scalar_values_sql(where)}),
        counted as (
            select project_id, field, jtype, s, count(*) as c from v group by all
        )
        select project_id, field, jtype, s from counted
        qualify row_number() over (partition by project_id, field order by c desc, s) <= {EXAMPLES_PER_FIELD}
        order by project_id, field, c desc, s
    """
    for pid, key, jtype, s in con.execute(examples_sql, params).fetchall():
        example = _typed_example(jtype, s, scrub_examples)
        if example not in stats[(pid, key)].examples:  # two values may scrub to the same text
            stats[(pid, key)].examples.append(example)
    return stats


def _typed_example(jtype: str, s: str, scrub_strings: bool = True) -> Any:
    if jtype == "BOOLEAN":
        return s == "true"
    if jtype in ("BIGINT", "UBIGINT"):
        return int(s)
    if jtype == "DOUBLE":
        return float(s)
    if scrub_strings:
        from turret.scrub import scrub

        return scrub(s)
    return s


def _scrub_setting(settings: Settings | None) -> bool:
    """``settings.scrub_pii``; without settings, the environment's (the pipeline task passes none)."""
    if settings is None:
        from turret.settings import Settings

        settings = Settings.from_env()
    return bool(settings.scrub_pii)


def type_fields(
    con: duckdb.DuckDBPyConnection,
    project_id: str | None = None,
    *,
    settings: Settings | None = None,
    recorded_overrides: Mapping[tuple[str, str], str | None] | None = None,
) -> list[FieldType]:
    """Detect (or re-validate) every field's type from ``raw.events`` and upsert ``pipeline.fields``.

    Overrides win over detection: ``recorded_overrides`` (``{(project_id, field): type or None}``, from the
    control plane, where ``turret fields set`` and the dashboard record them: :mod:`turret.field_overrides`;
    None there clears an override), else the one the warehouse already holds. Returns the rows written,
    sorted by project and field.
    Correctness before speed: statistics are recomputed from all events (DuckDB scans 100k events' JSON in
    well under a second), so detection always reflects every value seen so far. Examples are scrubbed of
    PII per ``settings.scrub_pii`` (``Settings.from_env()`` when no settings are given), and every run
    rewrites them, so examples stored before scrubbing existed are replaced on the next run.
    """
    stats = compute_stats(con, project_id, scrub_examples=_scrub_setting(settings))
    overrides = dict(
        ((pid, key), ov)
        for pid, key, ov in con.execute(
            "select project_id, field, override_type from pipeline.fields where override_type is not null"
        ).fetchall()
    )
    for (pid, key), override in (recorded_overrides or {}).items():
        if project_id is None or pid == project_id:
            overrides[(pid, key)] = override
    now = datetime.now(UTC).replace(tzinfo=None)
    result = []
    for (pid, key), st in sorted(stats.items()):
        detected = detect_type(st)
        override = overrides.get((pid, key))
        result.append(
            FieldType(
                project_id=pid,
                field=key,
                detected_type=detected,
                override_type=override,
                effective_type=override or detected,
                n_values=st.n_values,
                n_distinct=st.n_distinct,
                examples=st.examples,
                updated_at=now,
            )
        )
    if result:
        con.execute("begin transaction")
        try:
            con.executemany(
                """
                insert into pipeline.fields (project_id, field, detected_type, override_type, effective_type,
                                             n_values, n_distinct, examples, updated_at, typed_at)
                values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                on conflict (project_id, field) do update set
                    detected_type = excluded.detected_type,
                    override_type = excluded.override_type,
                    effective_type = excluded.effective_type,
                    n_values = excluded.n_values,
                    n_distinct = excluded.n_distinct,
                    examples = excluded.examples,
                    updated_at = excluded.updated_at,
                    typed_at = case
                        when pipeline.fields.effective_type is distinct from excluded.effective_type
                        then excluded.typed_at else pipeline.fields.typed_at end
                """,
                [
                    (
                        f.project_id,
                        f.field,
                        f.detected_type,
                        f.override_type,
                        f.effective_type,
                        f.n_values,
                        f.n_distinct,
                        json.dumps(f.examples, ensure_ascii=False),
                        f.updated_at,
                        f.updated_at,
                    )
                    for f in result
                ],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return result


def _row_to_field(row: tuple) -> FieldType:
    pid, key, detected, override, effective, n_values, n_distinct, examples, updated_at = row
    return FieldType(
        project_id=pid,
        field=key,
        detected_type=detected,
        override_type=override,
        effective_type=effective,
        n_values=n_values,
        n_distinct=n_distinct,
        examples=json.loads(examples) if examples else [],
        updated_at=updated_at,
    )


def list_fields(con: duckdb.DuckDBPyConnection, project_id: str) -> list[FieldType]:
    """The typed fields of one project, sorted by field name (as last written by ``type_fields``)."""
    rows = con.execute(
        """
        select project_id, field, detected_type, override_type, effective_type, n_values, n_distinct,
               examples, updated_at
        from pipeline.fields where project_id = ? order by field
        """,
        [project_id],
    ).fetchall()
    return [_row_to_field(r) for r in rows]


def set_override(
    con: duckdb.DuckDBPyConnection,
    project_id: str,
    field_name: str,
    type_: str | None,
    *,
    settings: Settings | None = None,
) -> FieldType:
    """Set (``text``/``enum``/``number``) or clear (``auto`` or None) a field's override; returns the row.

    A field seen in ``raw.events`` but not typed yet is typed first; an unknown field is an error.
    """
    if type_ is not None and type_ != "auto" and type_ not in TYPES:
        raise FieldError(f"unknown type {type_!r}: use one of {', '.join(TYPES)} or auto")
    override = None if type_ in (None, "auto") else type_
    known = {f.field for f in list_fields(con, project_id)}
    if field_name not in known:
        type_fields(con, project_id, settings=settings)
        known = {f.field for f in list_fields(con, project_id)}
    if field_name not in known:
        hint = f"; known fields: {', '.join(sorted(known))}" if known else "; the project has no fields yet"
        raise FieldError(f"no metadata field {field_name!r} in project {project_id}{hint}")
    con.execute(
        """
        update pipeline.fields
        set override_type = $1, effective_type = coalesce($1, detected_type), updated_at = $2,
            typed_at = case when effective_type is distinct from coalesce($1, detected_type) then $2
                            else typed_at end
        where project_id = $3 and field = $4
        """,
        [override, datetime.now(UTC).replace(tzinfo=None), project_id, field_name],
    )
    return next(f for f in list_fields(con, project_id) if f.field == field_name)


def text_fields(con: duckdb.DuckDBPyConnection, project_id: str | None = None) -> list[tuple[str, str]]:
    """(project_id, field) of every field whose effective type is ``text``."""
    sql = "select project_id, field from pipeline.fields where effective_type = 'text'"
    params: list[Any] = []
    if project_id:
        sql += " and project_id = ?"
        params.append(project_id)
    return [tuple(r) for r in con.execute(sql + " order by 1, 2", params).fetchall()]
