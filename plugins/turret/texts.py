"""Extract the (scrubbed) texts of text fields into ``pipeline.event_texts``, the topic engine's input.

For each event and each metadata field whose effective type is ``text`` one row is written:
``(project_id, event_id, field, text_hash, text)`` where ``text`` has PII replaced (``turret.scrub``, on
unless ``settings.scrub_pii`` is false) and ``text_hash`` is the first 32 hex digits of the SHA-256 of that
scrubbed text. The hash is what embeddings are cached by, so one distinct text is embedded once ever.

Only (event, field) pairs not there yet are written, so reruns add nothing. Rows of a field that is no
longer ``text`` (an override changed it) are removed: the table holds exactly the text fields' texts.
Empty and whitespace-only values are skipped; numbers or booleans in a text field are kept as written.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

HASH_CHARS = 32


def text_hash(text: str) -> str:
    """The cache key of a (scrubbed) text: SHA-256 hex, first 32 characters."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def extract_texts(
    con: duckdb.DuckDBPyConnection, settings: Settings, project_id: str | None = None
) -> int:
    """Write the missing rows of ``pipeline.event_texts``; returns how many were added."""
    import pandas as pd

    from turret.scrub import scrub

    project_filter = "and f.project_id = $project" if project_id else ""
    params = {"project": project_id} if project_id else {}
    pending = con.execute(
        f"""
        with text_fields as (
            select project_id, field from pipeline.fields f
            where effective_type = 'text' {project_filter}
        ),
        text_values as (
            select e.project_id, e.event_id, j.key as field, j.value ->> '$' as value
            from raw.events e, json_each(e.metadata) j
            where j.type not in ('NULL', 'OBJECT', 'ARRAY')
              and e.project_id in (select project_id from text_fields)
        )
        select v.project_id, v.event_id, v.field, v.value
        from text_values v
        semi join text_fields f on f.project_id = v.project_id and f.field = v.field
        anti join pipeline.event_texts t
            on t.project_id = v.project_id and t.event_id = v.event_id and t.field = v.field
        order by v.project_id, v.event_id, v.field
        """,
        params,
    ).fetchall()

    from turret.language import detect

    cache: dict[str, tuple[str, str, str]] = {}
    rows = []
    for pid, event_id, field_name, value in pending:
        if value is None or not value.strip():
            continue
        done = cache.get(value)
        if done is None:
            cleaned = scrub(value) if settings.scrub_pii else value
            done = cache[value] = (text_hash(cleaned), cleaned, detect(cleaned))
        rows.append((pid, event_id, field_name, *done))

    con.execute("begin transaction")
    try:
        # Fields that stopped being text (an override) lose their rows.
        stale_filter = "and t.project_id = $project" if project_id else ""
        for table in ("pipeline.event_texts", "pipeline.event_languages"):
            con.execute(
                f"""
                delete from {table} t
                where not exists (
                    select 1 from pipeline.fields f
                    where f.project_id = t.project_id and f.field = t.field and f.effective_type = 'text'
                ) {stale_filter}
                """,
                params,
            )
        if rows:
            frame = pd.DataFrame.from_records(
                rows, columns=["project_id", "event_id", "field", "text_hash", "text", "language"]
            )
            con.register("_turret_texts_batch", frame)
            try:
                con.execute("insert into pipeline.event_texts select project_id, event_id, field, text_hash, "
                            "text from _turret_texts_batch")
                # The language of each text (turret.language): an enum field of its own in the marts.
                con.execute("insert or replace into pipeline.event_languages select project_id, event_id, "
                            "field, language from _turret_texts_batch")
            finally:
                con.unregister("_turret_texts_batch")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)
