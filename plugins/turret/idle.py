"""Whether an hourly run has anything to do, so that an hour with no new events stops after loading.

The loader records when it loaded each segment (``raw.loaded_segments.loaded_at``, also for a segment whose
lines were all quarantined or duplicates); every published snapshot records when it was published
(``_turret_publish.published_at`` in ``turret.publish``). When the current snapshot is newer than every load,
the marts already cover everything in the warehouse and a run would rebuild the same marts: the hourly DAG
then skips every step after ``load_landed`` (``has_new_events``). A run that failed after loading leaves a
load newer than the snapshot, so the next hour does the work. The daily re-fit DAG never skips.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings


def published_at(settings: Settings) -> datetime | None:
    """When the current snapshot was published (naive UTC), or None when nothing was published."""
    import duckdb

    from turret.publish import META_TABLE, current_snapshot

    snapshot = current_snapshot(settings)
    if snapshot is None or not snapshot.exists():
        return None
    with duckdb.connect(str(snapshot), read_only=True) as con:
        try:
            return con.execute(f"select max(published_at) from main.{META_TABLE}").fetchone()[0]
        except duckdb.CatalogException:  # a snapshot of an older release, without the record
            return None


def work_to_do(con: duckdb.DuckDBPyConnection, settings: Settings) -> str | None:
    """Why a run has work to do, or None when the published snapshot already covers every load."""
    last_load = con.execute("select max(loaded_at) from raw.loaded_segments").fetchone()[0]
    published = published_at(settings)
    if published is None:
        return "nothing published yet"
    if last_load is not None and last_load >= published:
        return (f"segments loaded at {last_load:%Y-%m-%d %H:%M:%S} are not in the snapshot published at "
                f"{published:%Y-%m-%d %H:%M:%S}")
    return None
