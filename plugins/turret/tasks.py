"""One function per pipeline task. The DAG files call these and nothing else.

Each function takes the settings and the run's identity, opens the warehouse through
``turret.warehouse.writer`` (one writer at a time), does one step, and returns a small JSON-able dict of
figures that Airflow keeps as the task's return value (XCom) and the run summary collects.

Idempotence: every step only adds what is missing (segments not loaded, texts not embedded, events not
assigned) or replaces what it derives, so running the same hour twice leaves the warehouse as it was.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from turret.settings import Settings

log = logging.getLogger(__name__)

# Task order of the hourly DAG; `turret pipeline run` and the docs list them in this order.
HOURLY_TASKS = (
    "load_landed",
    "has_new_events",
    "check_raw",
    "type_fields",
    "plan_embedding",
    "embed_partition",
    "merge_embeddings",
    "assign_topics",
    "label_topics",
    "assign_journeys",
    "compute_journeys",
    "dbt_build",
    "check_marts",
    "publish_marts",
)


def run_id_for(dag_id: str, interval_end: datetime | None) -> str:
    """A run id that is the same when the same hour runs again (idempotent lineage and run rows)."""
    end = interval_end or datetime.now(UTC)
    return f"{dag_id}/{end.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _timed(fn):
    def wrapper(*args: Any, **kwargs: Any) -> dict:
        started = time.perf_counter()
        result = fn(*args, **kwargs) or {}
        result = {k: v for k, v in dict(result).items()}
        result["seconds"] = round(time.perf_counter() - started, 3)
        log.info("%s: %s", fn.__name__, json.dumps(result, default=str))
        return result

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_timed
def load_landed(settings: Settings, *, interval_end: datetime | None = None) -> dict:
    """Seal landing segments of finished hours, ship them to ``TURRET_LANDING_URL`` when one is set, then
    load every sealed segment not loaded yet from where the loader reads them (that URL, else the local
    landing store)."""
    from turret import landing, loader, storage, warehouse
    from turret.bounds import IngestBounds
    from turret.controlplane import ControlPlane

    root = settings.landing_root
    root.mkdir(parents=True, exist_ok=True)
    sealed = landing.seal_orphans(root)
    sealed += landing.seal_idle(root, before=interval_end or landing.utc_now())
    shipped = storage.ship_landing(settings)
    url = storage.landing_url(settings)
    with warehouse.writer(settings) as con:
        loader.sync_projects(con, ControlPlane.from_settings(settings))
        stats = loader.load_landing(con, url, storage_options=storage.storage_options(settings, url),
                                    bounds=IngestBounds.from_settings(settings))
    # Quarantined rows first: `turret pipeline run` shows the first few figures of each task.
    stats_dict = _as_dict(stats)
    first = {key: stats_dict.pop(key) for key in ("rows_loaded", "rows_quarantined")}
    return {**first, "segments_sealed": len(sealed), "segments_shipped": _as_dict(shipped).get("shipped", 0),
            **stats_dict}


@_timed
def has_new_events(settings: Settings) -> dict:
    """Whether anything was loaded since the published snapshot; when not, the hourly DAG skips the rest
    of the run, so an hour with no new events costs little more than loading (``turret.idle``)."""
    from turret import idle, warehouse

    with warehouse.writer(settings) as con:
        reason = idle.work_to_do(con, settings)
    return {"new": reason is not None, "reason": reason or "the published marts cover every loaded segment"}


@_timed
def check_raw(settings: Settings) -> dict:
    """Validate the raw events no earlier run has validated (great-expectations). A row that fails a
    row-level check is moved to raw.quarantine with the check's name and counted; only a batch-level check
    fails the task, with its report. Each row is checked once however it got in
    (``pipeline.checked_events``), so the cost follows the new data."""
    from turret import quality, warehouse

    with warehouse.writer(settings) as con:
        report = quality.validate_raw(con, settings, unchecked_only=True)
    # The counts first: `turret pipeline run` shows the first few figures of each task.
    summary = _as_dict(report)
    first = {key: summary.pop(key) for key in ("rows_in_scope", "rows_quarantined") if key in summary}
    return {**first, **summary}


@_timed
def type_fields(settings: Settings) -> dict:
    """Detect each metadata field's type, then extract (scrubbed) texts of the text fields."""
    from turret import field_overrides, fields, texts, warehouse

    recorded = field_overrides.load_for(settings)  # the control plane's overrides (CLI and dashboard)
    with warehouse.writer(settings) as con:
        typed = fields.type_fields(con, settings=settings, recorded_overrides=recorded)
        extracted = texts.extract_texts(con, settings)
    return {"fields": len(typed), "texts_extracted": extracted}


@_timed
def plan_embedding(settings: Settings, *, run_id: str) -> dict:
    """Split the texts not embedded yet into bounded partitions (by project and hash range) under the
    pipeline URL; the returned ``partitions`` are the input of the mapped ``embed_partition`` task."""
    from turret import embed_partitions, warehouse

    with warehouse.writer(settings) as con:
        partitions = embed_partitions.plan(con, settings, run_id=run_id)
    return {"partitions": partitions, "texts_pending": sum(p["texts"] for p in partitions)}


@_timed
def embed_partition(settings: Settings, *, partition: dict) -> dict:
    """Embed one partition into its Parquet file under the pipeline URL; never opens the warehouse, so
    any number of these run at once, on any worker that reaches the pipeline URL."""
    from turret import embed_partitions

    return embed_partitions.embed_partition(settings, partition)


@_timed
def merge_embeddings(settings: Settings, *, partitions: list[dict]) -> dict:
    """Write every partition's vectors into ``pipeline.embeddings`` (the one warehouse writer)."""
    from turret import embed_partitions, warehouse
    from turret.topics.store import model_key

    with warehouse.writer(settings) as con:
        count = embed_partitions.merge(con, settings, partitions)
    return {"model": model_key(settings), "partitions": len(partitions), "texts_embedded": count}


@_timed
def assign_topics(settings: Settings, *, run_id: str, mode: str = "auto") -> dict:
    """Assign new texts to topics (incremental), or re-fit when asked or when drift calls for it; chit-chat
    topics are marked conversational by the prototypes the journey model uses."""
    from turret import embed, topics, warehouse
    from turret.conversation import prototypes_from_encoder

    config = topics.EngineConfig.from_settings(settings)  # the TURRET_TOPIC_* knobs
    embedder = embed.get_embedder(settings)
    prototypes = prototypes_from_encoder(embedder.encode)
    with warehouse.writer(settings) as con:
        return topics.update_topics(con, settings, run_id=run_id, mode=mode, config=config,
                                    prototypes=prototypes)


@_timed
def label_topics(settings: Settings, *, run_id: str) -> dict:
    """Name new and changed topics (LLM when configured, keywords otherwise)."""
    from turret import topics, warehouse

    with warehouse.writer(settings) as con:
        return topics.label_topics(con, settings, run_id=run_id)


@_timed
def assign_journeys(settings: Settings) -> dict:
    """Each session's steps in order (``pipeline.session_steps``), then the conversation-aware topics: which
    topic each message's conversation is on (acknowledgements and follow-ups keep the current one), the
    input of the journey tables and marts. Both touch only the sessions that changed."""
    from turret import embed, journey_topics, session_steps, warehouse
    from turret.topics.store import model_key

    embedder = embed.get_embedder(settings)
    params = journey_topics.conversation_params(embedder.encode)
    with warehouse.writer(settings) as con:
        steps = session_steps.write_session_steps(con)
        stats = journey_topics.assign_journey_topics(con, model=model_key(settings, embedder), params=params)
    return {**steps, **stats}


@_timed
def compute_journeys(settings: Settings) -> dict:
    """Paths, entries, exits and drop-offs per topic into ``pipeline.journey_*``, from the session steps and
    their conversation-aware topics; dbt's journey marts build on them."""
    from turret import journeys, warehouse

    with warehouse.writer(settings) as con:
        return journeys.compute_journeys(con)


@_timed
def check_marts(settings: Settings) -> dict:
    """Validate the marts with great-expectations; a failing suite fails the task with its report."""
    from turret import quality, warehouse

    with warehouse.writer(settings) as con:
        report = quality.validate_marts(con, settings)
    return _as_dict(report)


@_timed
def publish_marts(settings: Settings) -> dict:
    """Publish a read-only copy of the marts for BI tools, switched atomically."""
    from turret import publish, warehouse

    with warehouse.writer(settings) as con:
        path = publish.publish(settings, con)
    return {"published": str(path)}


def _as_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return {k: v for k, v in dataclasses.asdict(obj).items() if isinstance(v, (int, float, str, bool))}
    return {"result": str(obj)}
