"""The warehouse side of conversation-aware journeys (:mod:`turret.conversation`): pipeline.journey_topics.

For every (project, text field), each message of each session gets the topic the *conversation* is on
(``journey_topic_id``; -1 until something topical has been said), its kind (topical, continuation,
greeting, closing, confirmation) and the index of the topical segment it belongs to. Sessions are walked in
the order of ``pipeline.session_steps``. ``turret.journeys`` and dbt's ``int_session_steps`` read this table,
so transitions, journeys, segments and drop-offs follow the conversation, while the per-message topic stays
in ``pipeline.event_topics`` and ``marts.fct_events``.

A session's assignment depends on all its messages, on the current centroids and on corpus statistics of
the topics (``topic_specificity``, ``topic_persistence``). Only the sessions whose steps were rewritten since
their journey topics were (``pipeline.session_steps.updated_at``: a new message, a message's topic changed,
or the dimension's topics were fitted again) are decoded again; the corpus statistics always come from
every session of the dimension. Other sessions keep what they were given, as messages keep their topic
between fits: an hour costs what its sessions cost, not the history. A different conversation model
(``params_key``, in ``pipeline.journey_state``) recomputes the whole dimension. The decoder is
deterministic, so re-running an hour writes identical rows. Messages without a vector for the configured
model yet are left out; dbt falls back to their per-message topic.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb

    from turret.conversation import ConversationParams

log = logging.getLogger(__name__)

# The messages of a dimension that have a vector, in session step order (pipeline.session_steps, the one
# definition of that order), which the decoder gets as its ordering column. ``{vector}`` adds what the
# decoder reads besides (similarity, length, vector); ``{only}`` restricts to _turret_journey_sessions.
_MESSAGES_TEMPLATE = """
    select
        s.project_id,
        s.field,
        s.session_id,
        s.event_id,
        s.step_index,
        s.topic_id{vector}
    from pipeline.session_steps as s
    join pipeline.event_topics as t
        on t.project_id = s.project_id and t.field = s.field and t.event_id = s.event_id
    join pipeline.event_texts as x
        on x.project_id = s.project_id and x.event_id = s.event_id and x.field = s.field
    join pipeline.embeddings as m on m.model = ? and m.text_hash = x.text_hash
    {only}
    where s.project_id = ? and s.field = ?
    order by s.session_id, s.step_index
"""
_DECODED = """,
        t.similarity,
        length(regexp_split_to_array(trim(x.text), '\\s+')) as n_words,
        m.vector"""
_MESSAGES_SQL = _MESSAGES_TEMPLATE.format(vector=_DECODED, only="")
_CHANGED_MESSAGES_SQL = _MESSAGES_TEMPLATE.format(
    vector=_DECODED, only="semi join _turret_journey_sessions as c on c.session_id = s.session_id",
)
# Corpus statistics need only session and topic of every message.
_SEQUENCE_SQL = _MESSAGES_TEMPLATE.format(vector="", only="")

# Sessions whose steps were written after their journey topics, or that lost messages.
_CHANGED_SESSIONS_SQL = """
    create or replace temp table _turret_journey_sessions as
    select distinct session_id from (
        select s.session_id
        from pipeline.session_steps as s
        left join pipeline.journey_topics as j
            on j.project_id = s.project_id and j.field = s.field and j.event_id = s.event_id
        where s.project_id = $pid and s.field = $field
          and (j.event_id is null or j.updated_at is null or s.updated_at is null
               or s.updated_at > j.updated_at or j.session_id <> s.session_id)
        union all
        select j.session_id
        from pipeline.journey_topics as j
        anti join pipeline.session_steps as s
            on s.project_id = j.project_id and s.field = j.field and s.event_id = j.event_id
        where j.project_id = $pid and j.field = $field
    )
"""
_ALL_SESSIONS_SQL = """
    create or replace temp table _turret_journey_sessions as
    select distinct session_id from (
        select session_id from pipeline.session_steps where project_id = $pid and field = $field
        union all
        select session_id from pipeline.journey_topics where project_id = $pid and field = $field
    )
"""

OUT_COLUMNS = ["project_id", "field", "session_id", "event_id", "journey_topic_id", "kind", "segment_index"]


def params_key(model: str, params: ConversationParams) -> str:
    """What the journey topics of a dimension depend on besides its data: the embedding model and the
    conversation model's knobs and prototypes. Another key recomputes every session."""
    import hashlib
    from dataclasses import replace

    digest = hashlib.sha256(model.encode())
    digest.update(repr(replace(params, prototypes=None)).encode())
    for kind, vectors in sorted((params.prototypes or {}).items()):
        digest.update(kind.encode())
        digest.update(np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)).tobytes())
    return digest.hexdigest()[:32]


def assign_journey_topics(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    params: ConversationParams,
    project_id: str | None = None,
    stamp: datetime | None = None,
) -> dict[str, Any]:
    """Bring ``pipeline.journey_topics`` up to date for every dimension (or one project's).

    Decodes the sessions whose steps changed since their journey topics were written (all of a dimension
    when its ``params_key`` changed); reads the steps of ``pipeline.session_steps``
    (``turret.session_steps.write_session_steps`` first). ``model`` keys the vectors in
    ``pipeline.embeddings`` (``turret.topics.store.model_key``); ``params`` carries the conversational
    prototypes embedded with that same model. ``stamp`` (default now, UTC) is the rows' ``updated_at``.
    Returns per-dimension counts.
    """
    from turret.conversation import NON_TOPICAL_KINDS
    from turret.embed import has_embeddings_table
    from turret.warehouse import ensure_schema

    ensure_schema(con)  # pipeline.journey_topics is part of the warehouse contract (turret.warehouse)
    stamp = stamp or datetime.now(UTC).replace(tzinfo=None)
    key = params_key(model, params)
    sql = "select distinct project_id, field from pipeline.session_steps"
    args: list[Any] = []
    if project_id is not None:
        sql += " where project_id = ?"
        args.append(project_id)
    dimensions = con.execute(sql + " order by 1, 2", args).fetchall()
    has_vectors = has_embeddings_table(con)
    stats: dict[str, Any] = {}
    for pid, field in dimensions:
        name = f"{pid}/{field}"
        if not has_vectors:
            stats[name] = {"skipped": "no pipeline.embeddings table yet"}
            continue
        state = con.execute(
            "select params_key from pipeline.journey_state where project_id = ? and field = ?", [pid, field]
        ).fetchone()
        whole = state is None or state[0] != key
        con.execute(_ALL_SESSIONS_SQL if whole else _CHANGED_SESSIONS_SQL, {"pid": pid, "field": field})
        try:
            out = _decode_changed(con, model, pid, field, params)
            _replace(con, pid, field, out, key=key, stamp=stamp)
            (changed,) = con.execute("select count(*) from _turret_journey_sessions").fetchone()
        finally:
            con.execute("drop table if exists _turret_journey_sessions")
        kinds = out["kind"].value_counts().to_dict() if len(out) else {}
        topical = (
            out[~out["kind"].isin(NON_TOPICAL_KINDS) & (out["journey_topic_id"] >= 0)] if len(out) else out
        )
        stats[name] = {
            "messages": int(len(out)),
            "sessions": int(changed),
            "whole_dimension": whole,
            "segments": int(topical.groupby(["session_id", "segment_index"]).ngroups) if len(topical) else 0,
            "kinds": {str(k): int(v) for k, v in sorted(kinds.items())},
        }
        log.info("journey topics %s: %s", name, stats[name])
    totals = {k: sum(d.get(k, 0) for d in stats.values()) for k in ("messages", "sessions", "segments")}
    return {**totals, "dimensions": stats}


def _decode_changed(con: duckdb.DuckDBPyConnection, model: str, pid: str, field: str, params):
    """The conversation model over the sessions in _turret_journey_sessions, with the corpus statistics of
    the whole dimension."""
    from dataclasses import replace

    import pandas as pd

    from turret.conversation import FRAME_COLUMNS, assign_sessions_frame, topic_persistence, topic_specificity

    frame = con.execute(_CHANGED_MESSAGES_SQL, [model, pid, field]).df()
    if not len(frame):
        return pd.DataFrame(columns=OUT_COLUMNS)
    if params.min_topic_specificity > 0 and params.topic_specificity is None:
        every = con.execute(_SEQUENCE_SQL, [model, pid, field]).df()
        topics = every["topic_id"].fillna(-1).astype("int64")
        params = replace(
            params,
            topic_specificity=topic_specificity(every["session_id"], topics),
            topic_persistence=params.topic_persistence or topic_persistence(every["session_id"], topics),
        )
    centroids = {
        int(tid): np.asarray(vector, dtype=np.float32)
        for tid, vector in con.execute(
            "select topic_id, centroid from pipeline.topic_centroids where project_id = ? and field = ?",
            [pid, field],
        ).fetchall()
    }
    X = np.stack(frame["vector"].to_numpy()).astype(np.float32)
    # The decoder orders each session by ``occurred_at``: give it the session step order.
    frame = frame.assign(occurred_at=frame["step_index"])
    return assign_sessions_frame(frame[[*FRAME_COLUMNS, "n_words"]], X, centroids, params)


def _replace(con: duckdb.DuckDBPyConnection, pid: str, field: str, out, *, key: str, stamp: datetime) -> None:
    """Swap the journey topics of the sessions in _turret_journey_sessions for ``out`` in one transaction."""
    con.execute("begin transaction")
    try:
        con.execute(
            """delete from pipeline.journey_topics as j using _turret_journey_sessions as c
               where j.project_id = ? and j.field = ? and j.session_id = c.session_id""",
            [pid, field],
        )
        if len(out):
            con.register("_turret_journey_topics", out)
            try:
                con.execute(
                    "insert into pipeline.journey_topics (project_id, field, event_id, session_id, "
                    "journey_topic_id, kind, segment_index, updated_at) select project_id, field, event_id, "
                    "session_id, journey_topic_id, kind, segment_index, ? from _turret_journey_topics",
                    [stamp],
                )
            finally:
                con.unregister("_turret_journey_topics")
        con.execute(
            "insert or replace into pipeline.journey_state values (?, ?, ?, ?)", [pid, field, key, stamp]
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def conversation_params(encode) -> ConversationParams:
    """The default conversation model with its prototypes embedded by ``encode`` (the pipeline's embedder,
    so prototypes and messages live in one space whatever model is configured)."""
    from turret.conversation import ConversationParams, prototypes_from_encoder

    return ConversationParams(prototypes=prototypes_from_encoder(encode))
