"""The DuckDB warehouse: the only module that opens it, and the schema of the tables the pipeline owns.

DuckDB allows one writing process at a time, so only pipeline tasks call ``connect(settings)``; everything a
person or a BI tool reads goes through ``connect(settings, read_only=True)`` or the published copy.
The tables below are the contract between the loader, the topic engine and dbt (docs/architecture.md).
Python writes only ``raw.*`` and ``pipeline.*``; dbt alone builds and tests ``marts.*`` from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from turret.filemodes import PRIVATE_FILE, private_dir, private_file

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

SCHEMA_DDL: tuple[str, ...] = (
    "create schema if not exists raw",
    "create schema if not exists pipeline",
    """
    create table if not exists raw.events (
        project_id varchar not null,
        event_id varchar not null,
        contract varchar not null,
        event_type varchar,
        name varchar not null,
        session_id varchar not null,
        user_id varchar not null,
        session_id_generated boolean not null,
        user_id_generated boolean not null,
        occurred_at timestamp not null,
        received_at timestamp not null,
        metadata json not null,
        segment varchar not null,
        line_no integer not null,
        primary key (project_id, event_id)
    )
    """,
    """
    create table if not exists raw.loaded_segments (
        segment varchar primary key,
        loaded_at timestamp not null,
        rows_loaded integer not null,
        rows_quarantined integer not null,
        rows_duplicate integer not null
    )
    """,
    """
    create table if not exists raw.quarantine (
        segment varchar not null,
        line_no integer not null,
        reason varchar not null,
        line varchar,
        quarantined_at timestamp not null,
        primary key (segment, line_no)
    )
    """,
    """
    create table if not exists raw.projects (
        project_id varchar primary key,
        name varchar not null,
        plan varchar not null,
        monthly_limit bigint,
        created_at timestamp not null
    )
    """,
    # Each project's quota periods by the plan rules (turret.plans), written with raw.projects by the loader.
    """
    create table if not exists raw.quota_periods (
        project_id varchar not null,
        period_start timestamp not null,
        period_end timestamp not null,
        event_limit bigint,
        primary key (project_id, period_start)
    )
    """,
    # The body of a Trieve event exactly as sent (every field of its type); one row per raw.events row
    # that has one, loaded in the same transaction.
    """
    create table if not exists raw.event_payloads (
        project_id varchar not null,
        event_id varchar not null,
        payload json not null,
        primary key (project_id, event_id)
    )
    """,
    """
    create table if not exists pipeline.fields (
        project_id varchar not null,
        field varchar not null,
        detected_type varchar not null,
        override_type varchar,
        effective_type varchar not null,
        n_values bigint not null,
        n_distinct bigint not null,
        examples json,
        updated_at timestamp not null,
        primary key (project_id, field)
    )
    """,
    # When the field's effective type last changed (turret.fields): the incremental marts rebuild a project
    # whose fields were typed anew. Warehouses from before it had none (null: since ever).
    "alter table pipeline.fields add column if not exists typed_at timestamp",
    """
    create table if not exists pipeline.event_texts (
        project_id varchar not null,
        event_id varchar not null,
        field varchar not null,
        text_hash varchar not null,
        text varchar not null,
        primary key (project_id, event_id, field)
    )
    """,
    """
    create table if not exists pipeline.event_languages (
        project_id varchar not null,
        event_id varchar not null,
        field varchar not null,
        language varchar not null,
        primary key (project_id, event_id, field)
    )
    """,
    """
    create table if not exists pipeline.topics (
        project_id varchar not null,
        field varchar not null,
        topic_id integer not null,
        label varchar not null,
        description varchar,
        keywords json,
        label_source varchar not null,
        theme_id integer,
        size bigint not null,
        status varchar not null,
        created_run_id varchar,
        updated_run_id varchar,
        kind varchar not null default 'subject',
        primary key (project_id, field, topic_id)
    )
    """,
    # subject | conversational | unclustered (turret.topics.store); warehouses from before it had no kind.
    "alter table pipeline.topics add column if not exists kind varchar default 'subject'",
    """
    create table if not exists pipeline.themes (
        project_id varchar not null,
        field varchar not null,
        theme_id integer not null,
        label varchar not null,
        description varchar,
        primary key (project_id, field, theme_id)
    )
    """,
    """
    create table if not exists pipeline.event_topics (
        project_id varchar not null,
        event_id varchar not null,
        field varchar not null,
        topic_id integer not null,
        assigned_by varchar not null,
        similarity double,
        run_id varchar,
        primary key (project_id, event_id, field)
    )
    """,
    """
    create table if not exists pipeline.journey_topics (
        project_id varchar not null,
        field varchar not null,
        event_id varchar not null,
        session_id varchar not null,
        journey_topic_id integer not null,
        kind varchar not null,
        segment_index integer not null,
        updated_at timestamp,
        primary key (project_id, field, event_id)
    )
    """,
    # When the row was last decoded (turret.journey_topics); warehouses from before it had none.
    "alter table pipeline.journey_topics add column if not exists updated_at timestamp",
    # Keys of the raw events a passing raw data check has validated (turret.quality.validate_raw): the row's
    # place in its segment is part of the key, so an event loaded again from another segment is checked again.
    """
    create table if not exists pipeline.checked_events (
        project_id varchar not null,
        event_id varchar not null,
        segment varchar not null,
        line_no integer not null,
        checked_at timestamp not null,
        primary key (project_id, event_id, segment, line_no)
    )
    """,
    """
    create table if not exists pipeline.session_steps (
        project_id varchar not null,
        field varchar not null,
        session_id varchar not null,
        user_id varchar not null,
        step_index integer not null,
        event_id varchar not null,
        topic_id integer not null,
        occurred_at timestamp not null,
        updated_at timestamp,
        primary key (project_id, field, event_id)
    )
    """,
    # When the session's steps and its journey topics were last written (turret.session_steps): the change
    # marker of the session-level marts, which dbt builds incrementally. Warehouses from before it had none.
    "alter table pipeline.session_steps add column if not exists updated_at timestamp",
    # The conversation model a dimension's journey topics were computed with (turret.journey_topics): another
    # one recomputes every session of the dimension.
    """
    create table if not exists pipeline.journey_state (
        project_id varchar not null,
        field varchar not null,
        params_key varchar not null,
        updated_at timestamp not null,
        primary key (project_id, field)
    )
    """,
    """
    create table if not exists pipeline.journey_paths (
        project_id varchar not null,
        field varchar not null,
        scope varchar not null,
        path_length integer not null,
        path_topic_ids integer[] not null,
        sessions bigint not null,
        share double not null
    )
    """,
    # What each journey adds to the journey counts (turret.journeys.journey_parts): a session's or a user's
    # distinct paths, entry, exit and visited topics, so an hour walks only the journeys it changed.
    """
    create table if not exists pipeline.journey_parts (
        project_id varchar not null,
        field varchar not null,
        scope varchar not null,
        journey_id varchar not null,
        user_id varchar,
        part varchar not null,
        topic_ids integer[] not null,
        max_length integer not null,
        updated_at timestamp not null
    )
    """,
    """
    create table if not exists pipeline.journey_topic_stats (
        project_id varchar not null,
        field varchar not null,
        topic_id integer not null,
        entries bigint not null,
        exits bigint not null,
        visits bigint not null,
        dropoff_rate double not null,
        user_entries bigint not null,
        user_exits bigint not null,
        user_visits bigint not null,
        user_dropoff_rate double not null,
        primary key (project_id, field, topic_id)
    )
    """,
    """
    create table if not exists pipeline.topic_lineage (
        run_id varchar not null,
        project_id varchar not null,
        field varchar not null,
        topic_id integer not null,
        change varchar not null,
        related_topic_ids json,
        created_at timestamp not null
    )
    """,
    """
    create table if not exists pipeline.runs (
        run_id varchar primary key,
        kind varchar not null,
        started_at timestamp not null,
        finished_at timestamp,
        data_interval_start timestamp,
        data_interval_end timestamp,
        stats json
    )
    """,
)


def embeddings_ddl(dimension: int) -> str:
    """``pipeline.embeddings``: one vector per (model, text hash). Its vector size is the model's, so the
    first embedding run creates it (``turret.embed.ensure_embeddings_table``) rather than
    ``ensure_schema``."""
    return f"""
        create table if not exists pipeline.embeddings (
            model varchar not null,
            text_hash varchar not null,
            vector float[{int(dimension)}] not null,
            primary key (model, text_hash)
        )
    """


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables if they are missing (idempotent)."""
    for statement in SCHEMA_DDL:
        con.execute(statement)


def connect(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. Writers get the schema ensured; readers fail clearly if it does not exist yet."""
    import duckdb

    path = Path(settings.warehouse)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(
                f"no warehouse at {path}: run the pipeline first (turret pipeline run)"
            )
        return duckdb.connect(str(path), read_only=True)
    private_dir(path.parent)
    con = duckdb.connect(str(path))
    private_file(path, f"{path}.wal")  # DuckDB creates them with the umask's mode
    ensure_schema(con)
    return con


@contextmanager
def writer(settings: Settings, *, timeout_seconds: float = 3600.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened for writing by one process at a time.

    DuckDB refuses a second writing process outright; this waits for the first one instead (an exclusive
    ``flock`` on ``<warehouse>.lock``), so pipeline tasks of overlapping DAG runs, a re-fit and the
    command line queue up rather than fail. Airflow's one-slot ``turret_warehouse`` pool keeps the
    scheduler from starting them together in the first place.
    """
    import fcntl
    import time

    path = Path(settings.warehouse)
    private_dir(path.parent)
    deadline = time.monotonic() + timeout_seconds
    with open(os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_FILE), "a+") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another process has held {path} for over {timeout_seconds:.0f} s"
                    ) from None
                time.sleep(0.2)
        try:
            con = connect(settings)
            try:
                yield con
            finally:
                con.close()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
