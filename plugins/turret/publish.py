"""Publishing the marts as a read-only copy for BI tools and the ``turret`` read commands.

The warehouse has one writer (the pipeline) and DuckDB does not let readers open a file that a writer
holds, so readers get a copy. ``publish`` writes a complete new snapshot under a temporary name, then
switches one symlink with ``os.replace`` (atomic on POSIX), so a reader sees either the old copy or the new
one, never half of one. A reader that opened the old copy keeps reading it: old snapshots are removed only
when more than ``keep`` exist, and a removed file stays readable to whoever has it open.

Layout under ``settings.published`` (docs/bi.md)::

    turret.duckdb -> turret-<stamp>.duckdb    # open with: duckdb <published>/turret.duckdb -readonly
    turret-<stamp>.duckdb                      # tables in schema "marts", plus views in "main"
                                               # in SNAPSHOT_STORAGE_VERSION: DuckDB 1.x reads it
    parquet/current -> <stamp>                 # parquet/<stamp>/<table>.parquet, one file per mart

With ``TURRET_PUBLISH_URL`` set (e.g. ``s3://bucket/marts``), the Parquet files also go to
``<url>/<stamp>/<table>.parquet`` and ``<url>/current.json`` is written last (turret.storage.publish_parquet);
the DuckDB copy stays local for BI tools.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

# Snapshots kept on disk (a setting candidate: see the report). Two at least, so a reader of the previous
# copy is not cut off by the very next publish.
KEEP_SNAPSHOTS = 3
CURRENT_NAME = "turret.duckdb"
MARTS_SCHEMA = "marts"
META_TABLE = "_turret_publish"
# The snapshot is written in DuckDB 1.0's storage format, the oldest the library can write: every DuckDB 1.x
# and 2.x reader opens it (BI drivers and the duckdb CLI on PyPI lag the library; a 2.0-format file fails
# there with "version number ... only read ..."). The warehouse keeps the library's own format.
SNAPSHOT_STORAGE_VERSION = "v1.0.0"


class PublishError(RuntimeError):
    """Nothing to publish, or the published copy cannot be read; the message says what to do."""


def publish(settings: Settings, con: duckdb.DuckDBPyConnection, *, keep: int = KEEP_SNAPSHOTS) -> Path:
    """Copy every table of the warehouse's ``marts`` schema into a new snapshot and switch to it.

    ``con`` is the pipeline's (writable) warehouse connection. Returns the new snapshot's path.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    tables = [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_type = 'BASE TABLE' "
            "order by table_name",
            [MARTS_SCHEMA],
        ).fetchall()
    ]
    if not tables:
        raise PublishError("nothing to publish: the warehouse has no marts yet (run dbt build first)")

    root = Path(settings.published)
    parquet_root = root / "parquet"
    parquet_root.mkdir(parents=True, exist_ok=True)
    stamp = _new_stamp(root)
    snapshot = root / f"turret-{stamp}.duckdb"
    partial = root / f".turret-{stamp}.duckdb.partial"
    parquet_dir = parquet_root / stamp
    parquet_partial = parquet_root / f".{stamp}.partial"

    alias = f"snap_{stamp.lower()}"
    con.execute(f"attach '{_sql_str(partial)}' as {alias} (storage_version '{SNAPSHOT_STORAGE_VERSION}')")
    try:
        con.execute(f"create schema {alias}.{MARTS_SCHEMA}")
        counts = {}
        for table in tables:
            source, target = f'{MARTS_SCHEMA}."{table}"', f'{alias}.{MARTS_SCHEMA}."{table}"'
            con.execute(f"create table {target} as select * from {source}")
            # Views in main so `select * from dim_topics` works too, next to `marts.dim_topics`.
            con.execute(f'create view {alias}.main."{table}" as select * from {source}')
            counts[table] = con.execute(f"select count(*) from {target}").fetchone()[0]
        con.execute(
            f"create table {alias}.main.{META_TABLE} "
            "(stamp varchar, published_at timestamp, table_name varchar, row_count bigint)"
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        for table, n in counts.items():
            con.execute(f"insert into {alias}.main.{META_TABLE} values (?, ?, ?, ?)", [stamp, now, table, n])
    finally:
        con.execute(f"detach {alias}")

    parquet_partial.mkdir()
    for table in tables:
        target = parquet_partial / f"{table}.parquet"
        con.execute(f"copy {MARTS_SCHEMA}.\"{table}\" to '{_sql_str(target)}' (format parquet)")

    # Both copies are complete: give them their final names, then switch the pointers.
    os.replace(partial, snapshot)
    os.replace(parquet_partial, parquet_dir)
    _switch_symlink(root / CURRENT_NAME, snapshot.name)
    _switch_symlink(parquet_root / "current", stamp)
    _prune(root, parquet_root, keep)
    _publish_parquet_url(settings, parquet_dir, stamp, counts, now, keep)
    return snapshot


def _publish_parquet_url(
    settings: Settings, parquet_dir: Path, stamp: str, counts: dict[str, int], now: datetime, keep: int
) -> None:
    """Copy the Parquet snapshot to ``TURRET_PUBLISH_URL``, pointer last; nothing when it is unset."""
    if not settings.publish_url:
        return  # The local parquet/current symlink is the pointer (turret.storage.read_pointer reads it).
    from turret import storage

    url = settings.publish_url
    storage.publish_parquet(
        parquet_dir, url, stamp, counts, published_at=now.isoformat() + "Z",
        options=storage.storage_options(settings, url), keep=keep,
    )


def current_snapshot(settings: Settings) -> Path | None:
    """The snapshot ``turret.duckdb`` points at, or None when nothing was published."""
    link = Path(settings.published) / CURRENT_NAME
    return link.resolve() if link.exists() else None


def open_marts(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A read-only connection holding ``marts.*``: the published copy if any, else the warehouse.

    Returns ``(connection, description of the source)``; raises ``PublishError`` when there is neither,
    or when the warehouse exists but dbt has not built the marts yet.
    """
    import duckdb

    published = Path(settings.published) / CURRENT_NAME
    if published.exists():
        return duckdb.connect(str(published), read_only=True), f"published copy {published.resolve()}"
    warehouse = Path(settings.warehouse)
    if not warehouse.exists():
        raise PublishError(
            f"no published marts at {published} and no warehouse at {warehouse}: "
            "run the pipeline first (turret pipeline run)"
        )
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        raise PublishError(
            f"cannot open the warehouse {warehouse} read-only ({str(exc).splitlines()[0]}); "
            "a pipeline task may be writing it: wait for it, or publish the marts"
        ) from None
    (n,) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ?", [MARTS_SCHEMA]
    ).fetchone()
    if not n:
        con.close()
        raise PublishError(f"the warehouse {warehouse} has no marts yet: run the pipeline (dbt build) first")
    return con, f"warehouse {warehouse}"


def _new_stamp(root: Path) -> str:
    # Microseconds make collisions unlikely; the loop makes them impossible within one folder.
    while True:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        if not (root / f"turret-{stamp}.duckdb").exists():
            return stamp


def _switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` (relative) atomically: make a new link beside it, rename over it."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _prune(root: Path, parquet_root: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` snapshots (never the current one)."""
    current = os.readlink(root / CURRENT_NAME)
    snapshots = sorted(p for p in root.glob("turret-*.duckdb") if not p.is_symlink())
    for old in snapshots[:-keep]:
        if old.name != current:
            old.unlink(missing_ok=True)
            Path(f"{old}.wal").unlink(missing_ok=True)
    current_parquet = os.readlink(parquet_root / "current")
    folders = sorted(p for p in parquet_root.iterdir() if p.is_dir() and not p.is_symlink()
                     and not p.name.startswith("."))
    for old in folders[:-keep]:
        if old.name != current_parquet:
            shutil.rmtree(old, ignore_errors=True)


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")
