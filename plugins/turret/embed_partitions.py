"""Embedding fanned out: pending texts in bounded partitions, one mapped task per partition, one writer.

The hourly DAG embeds in three steps (docs/scaling.md, "Embedding: mapped over partitions"):

1. :func:`plan` (warehouse writer, one-slot pool): every distinct text hash of ``pipeline.event_texts`` with
   no vector for the model yet, split by project (a hash that several projects share goes to the smallest
   project id) and, within a project, into contiguous hash ranges of equal size and at most
   ``TURRET_EMBED_PARTITION_TEXTS`` texts. Each partition's texts go to
   ``<pipeline url>/embed/<run>/pending/part-NNNNN.parquet``, and the plan, a short list of small dicts, is
   the mapped task's input.
2. :func:`embed_partition` (any worker; never opens the warehouse): reads its partition's texts, embeds them
   and writes ``.../vectors/part-NNNNN.parquet`` (``text_hash``, ``vector``), complete or not at all. A
   partition whose vectors are already there is not embedded again (a retried or re-run task).
3. :func:`merge` (warehouse writer): checks that every planned partition has all its vectors, inserts them
   into ``pipeline.embeddings`` in one transaction (a key already there is kept), then removes the run's
   folder.

The pipeline URL (``TURRET_PIPELINE_URL``, a local folder by default) is any fsspec location every worker
reaches; Parquet is read and written by DuckDB on local temporary copies, so no other Parquet library is
needed. The vectors are the ones :func:`turret.embed.embed_pending` computes in one process: the same model
on the same texts, only grouped in other batches (tests/turret/test_embed_partitions.py compares the two).
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb

    from turret.embed import Embedder
    from turret.settings import Settings

log = logging.getLogger(__name__)

FOLDER = "embed"


class PartitionError(RuntimeError):
    """A partition's files are missing or do not match the plan; the message names the file."""


def run_key(run_id: str) -> str:
    """A folder name for a run id (``turret_hourly/2026-01-01T10:00:00Z`` -> ``turret_hourly-2026-...``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.") or "run"


def split(counts: Sequence[tuple[str, int]], max_texts: int) -> list[tuple[str, int, int]]:
    """``(project_id, start, stop)`` row ranges over rows ordered by project then hash: each project's
    rows cut into ``ceil(n / max_texts)`` contiguous ranges of (nearly) equal size."""
    if max_texts < 1:
        raise ValueError("max_texts must be positive")
    ranges = []
    offset = 0
    for project_id, n in counts:
        parts = max(1, math.ceil(n / max_texts))
        bounds = [offset + round(j * n / parts) for j in range(parts + 1)]
        ranges.extend((project_id, lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo)
        offset += n
    return ranges


def _location(settings: Settings, key: str) -> tuple[Any, str]:
    """``(filesystem, folder)`` of run ``key`` under the pipeline URL."""
    from turret import storage

    url = storage.pipeline_url(settings)
    fs, root = storage.resolve(url, storage.storage_options(settings, url))
    return fs, f"{root.rstrip('/')}/{FOLDER}/{key}"


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def plan(con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str) -> list[dict]:
    """Write the pending texts as partitions under the pipeline URL; returns one dict per partition."""
    from turret import embed, storage
    from turret.topics.store import model_key

    model = model_key(settings)
    key = run_key(run_id)
    fs, folder = _location(settings, key)
    if fs.exists(folder):  # a retried plan starts over
        fs.rm(folder, recursive=True)
    cached = (
        "anti join (select text_hash from pipeline.embeddings where model = $model) e "
        "on e.text_hash = t.text_hash"
        if embed.has_embeddings_table(con) else ""
    )
    con.execute(
        f"""
        create or replace temp table _turret_pending as
        select min(t.project_id) as project_id, t.text_hash, min(t.text) as text
        from pipeline.event_texts t
        {cached}
        group by t.text_hash
        """,
        {"model": model} if cached else {},
    )
    try:
        counts = con.execute(
            "select project_id, count(*) from _turret_pending group by project_id order by project_id"
        ).fetchall()
        ranges = split(counts, settings.embed_partition_texts)
        partitions = []
        with tempfile.TemporaryDirectory(prefix="turret-embed-plan-") as tmp:
            for index, (project_id, lo, hi) in enumerate(ranges):
                local = Path(tmp) / _part_name(index)
                con.execute(
                    f"""
                    copy (
                        select text_hash, text from _turret_pending
                        order by project_id, text_hash limit {hi - lo} offset {lo}
                    ) to '{_sql_path(local)}' (format parquet)
                    """
                )
                first, last = con.execute(
                    f"select min(text_hash), max(text_hash) from read_parquet('{_sql_path(local)}')"
                ).fetchone()
                storage._put_atomic(fs, local, f"{folder}/pending/{_part_name(index)}")
                partitions.append({"run": key, "index": index, "model": model, "project_id": project_id,
                                   "hash_from": first, "hash_to": last, "texts": hi - lo})
    finally:
        con.execute("drop table if exists _turret_pending")
    log.info("planned %d embedding partition(s) of %d text(s)", len(partitions),
             sum(p["texts"] for p in partitions))
    return partitions


def _parquet_rows(fs: Any, path: str) -> int | None:
    """Rows of the Parquet file ``path``, or None when it is not there."""
    import duckdb

    from turret import storage

    if not fs.exists(path):
        return None
    with storage.local_file(fs, path) as local, duckdb.connect() as mem:
        return int(mem.execute(f"select count(*) from read_parquet('{_sql_path(local)}')").fetchone()[0])


def embed_partition(settings: Settings, partition: dict, embedder: Embedder | None = None) -> dict:
    """Embed one planned partition into its vectors file; nothing to do when that file is complete."""
    import duckdb
    import pandas as pd

    from turret import embed, storage

    fs, folder = _location(settings, partition["run"])
    source = f"{folder}/pending/{_part_name(partition['index'])}"
    target = f"{folder}/vectors/{_part_name(partition['index'])}"
    done = _parquet_rows(fs, target)
    if done == partition["texts"]:
        return {"index": partition["index"], "texts_embedded": 0, "already_embedded": done}
    if not fs.exists(source):
        raise PartitionError(f"partition {partition['index']} of run {partition['run']} has no texts at "
                             f"{source}: run the plan again (the whole DAG run)")
    with storage.local_file(fs, source) as local, duckdb.connect() as mem:
        rows = mem.execute(
            f"select text_hash, text from read_parquet('{_sql_path(local)}') order by text_hash"
        ).fetchall()
    if len(rows) != partition["texts"]:
        raise PartitionError(f"{source} holds {len(rows)} texts, the plan says {partition['texts']}")
    embedder = embedder or embed.get_embedder(settings)
    model = getattr(embedder, "cache_model_id", embedder.model_name)
    if model != partition["model"]:
        raise PartitionError(f"partition planned for model {partition['model']!r}, "
                             f"but the embedder is {model!r}")
    vectors = embedder.encode([text for _, text in rows])
    dim = int(embedder.dimension)
    if vectors.shape != (len(rows), dim):
        raise embed.EmbeddingError(f"embedder returned shape {vectors.shape}, expected {(len(rows), dim)}")
    frame = pd.DataFrame({"text_hash": [h for h, _ in rows],
                          "vector": list(vectors.astype(np.float32, copy=False))})
    with tempfile.TemporaryDirectory(prefix="turret-embed-") as tmp, duckdb.connect() as mem:
        local = Path(tmp) / _part_name(partition["index"])
        mem.register("vectors", frame)
        mem.execute(f"copy (select text_hash, cast(vector as float[{dim}]) as vector from vectors) "
                    f"to '{_sql_path(local)}' (format parquet)")
        storage._put_atomic(fs, local, target)
    return {"index": partition["index"], "texts_embedded": len(rows)}


def merge(con: duckdb.DuckDBPyConnection, settings: Settings, partitions: Sequence[dict]) -> int:
    """Insert every partition's vectors into ``pipeline.embeddings`` (one transaction); returns the count
    of vectors read. Refuses a partition whose vectors are missing or incomplete."""
    from turret import embed, storage

    partitions = [p for p in partitions if p]
    if not partitions:
        return 0
    runs = {p["run"] for p in partitions}
    models = {p["model"] for p in partitions}
    if len(runs) != 1 or len(models) != 1:
        raise PartitionError(f"partitions of several runs or models cannot be merged together: "
                             f"{sorted(runs)} {sorted(models)}")
    fs, folder = _location(settings, runs.pop())
    model = models.pop()
    fs.invalidate_cache()
    total = 0
    with tempfile.TemporaryDirectory(prefix="turret-embed-merge-") as tmp:
        files = []
        for p in partitions:
            path = f"{folder}/vectors/{_part_name(p['index'])}"
            if not fs.exists(path):
                raise PartitionError(f"partition {p['index']} has no vectors at {path}: its embed task did "
                                     "not finish")
            if storage._is_local_fs(fs):
                local = Path(path)
            else:
                local = Path(tmp) / _part_name(p["index"])
                fs.get_file(path, str(local))
            rows = con.execute(f"select count(*) from read_parquet('{_sql_path(local)}')").fetchone()[0]
            if rows != p["texts"]:
                raise PartitionError(f"{path} holds {rows} vectors, the plan says {p['texts']}")
            files.append(local)
            total += rows
        listed = ", ".join(f"'{_sql_path(f)}'" for f in files)
        dim = con.execute(f"select max(len(vector)) from read_parquet([{listed}])").fetchone()[0]
        embed.ensure_embeddings_table(con, int(dim))
        con.execute("begin")
        try:
            con.execute(
                f"""
                insert into pipeline.embeddings
                select $model, text_hash, cast(vector as float[{int(dim)}]) from read_parquet([{listed}])
                on conflict do nothing
                """,
                {"model": model},
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    fs.rm(folder, recursive=True)
    return total


def _sql_path(path: Path | str) -> str:
    return str(path).replace("'", "''")
