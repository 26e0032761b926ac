"""The warehouse side of conversation-aware journeys (:mod:`turret.conversation`): pipeline.journey_topics.

For every (project, text field), each message of each session gets the topic the *conversation* is on
(``journey_topic_id``; -1 until something topical has been said), its kind (topical, continuation,
greeting, closing, confirmation) and the index of the topical segment it belongs to. Sessions are walked in
the order of ``pipeline.session_steps``. ``turret.journeys`` and dbt's ``int_session_steps`` read this table,
so transitions, journeys, segments and drop-offs follow the conversation, while the per-message topic stays
in ``pipeline.event_topics`` and ``marts.fct_events``.

Each dimension is recomputed whole, in one transaction, on every run: a session's assignment depends on
all its messages, on the current centroids (which a refit moves) and on corpus statistics of the topics
(``topic_specificity``), and the decoder is cheap (about 2 s for 19k messages; docs/journeys.md). The
decoder is deterministic, so re-running an hour writes identical rows. Messages without a vector for the
configured model yet are left out; dbt falls back to their per-message topic.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import duckdb

    from turret.conversation import ConversationParams

log = logging.getLogger(__name__)

# One row per message of a dimension with its vector, in session step order (pipeline.session_steps, the one
# definition of that order), which the decoder gets as its ordering column.
_MESSAGES_SQL = """
    select
        s.project_id,
        s.field,
        s.session_id,
        s.event_id,
        s.step_index,
        s.topic_id,
        t.similarity,
        length(regexp_split_to_array(trim(x.text), '\\s+')) as n_words,
        m.vector
    from pipeline.session_steps as s
    join pipeline.event_topics as t
        on t.project_id = s.project_id and t.field = s.field and t.event_id = s.event_id
    join pipeline.event_texts as x
        on x.project_id = s.project_id and x.event_id = s.event_id and x.field = s.field
    join pipeline.embeddings as m on m.model = ? and m.text_hash = x.text_hash
    where s.project_id = ? and s.field = ?
    order by s.session_id, s.step_index
"""


def assign_journey_topics(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    params: ConversationParams,
    project_id: str | None = None,
) -> dict[str, Any]:
    """Rewrite ``pipeline.journey_topics`` for every dimension (or one project's) from the current topics.

    Reads the steps of ``pipeline.session_steps`` (``turret.session_steps.write_session_steps`` first).

    ``model`` keys the vectors in ``pipeline.embeddings`` (``turret.topics.store.model_key``); ``params``
    carries the conversational prototypes embedded with that same model. Returns per-dimension counts.
    """
    import pandas as pd

    from turret.conversation import FRAME_COLUMNS, NON_TOPICAL_KINDS, assign_sessions_frame
    from turret.embed import has_embeddings_table
    from turret.warehouse import ensure_schema

    ensure_schema(con)  # pipeline.journey_topics is part of the warehouse contract (turret.warehouse)
    sql = "select distinct project_id, field from pipeline.event_topics"
    args: list[Any] = []
    if project_id is not None:
        sql += " where project_id = ?"
        args.append(project_id)
    dimensions = con.execute(sql + " order by 1, 2", args).fetchall()
    has_vectors = has_embeddings_table(con)
    stats: dict[str, Any] = {}
    for pid, field in dimensions:
        key = f"{pid}/{field}"
        if not has_vectors:
            stats[key] = {"skipped": "no pipeline.embeddings table yet"}
            continue
        frame = con.execute(_MESSAGES_SQL, [model, pid, field]).df()
        centroids = {
            int(tid): np.asarray(vector, dtype=np.float32)
            for tid, vector in con.execute(
                "select topic_id, centroid from pipeline.topic_centroids where project_id = ? and field = ?",
                [pid, field],
            ).fetchall()
        }
        if len(frame):
            X = np.stack(frame["vector"].to_numpy()).astype(np.float32)
            # The decoder orders each session by ``occurred_at``: give it the session step order.
            frame = frame.assign(occurred_at=frame["step_index"])
            out = assign_sessions_frame(frame[[*FRAME_COLUMNS, "n_words"]], X, centroids, params)
        else:
            out = pd.DataFrame(columns=["project_id", "field", "session_id", "event_id", "journey_topic_id",
                                        "kind", "segment_index"])
        _replace(con, pid, field, out)
        kinds = out["kind"].value_counts().to_dict() if len(out) else {}
        topical = (
            out[~out["kind"].isin(NON_TOPICAL_KINDS) & (out["journey_topic_id"] >= 0)] if len(out) else out
        )
        stats[key] = {
            "messages": int(len(out)),
            "sessions": int(out["session_id"].nunique()) if len(out) else 0,
            "segments": int(topical.groupby(["session_id", "segment_index"]).ngroups) if len(topical) else 0,
            "kinds": {str(k): int(v) for k, v in sorted(kinds.items())},
        }
        log.info("journey topics %s: %s", key, stats[key])
    totals = {k: sum(d.get(k, 0) for d in stats.values()) for k in ("messages", "sessions", "segments")}
    return {**totals, "dimensions": stats}


def _replace(con: duckdb.DuckDBPyConnection, pid: str, field: str, out) -> None:
    con.execute("begin transaction")
    try:
        con.execute("delete from pipeline.journey_topics where project_id = ? and field = ?", [pid, field])
        if len(out):
            con.register("_turret_journey_topics", out)
            try:
                con.execute(
                    "insert into pipeline.journey_topics select project_id, field, event_id, session_id, "
                    "journey_topic_id, kind, segment_index from _turret_journey_topics"
                )
            finally:
                con.unregister("_turret_journey_topics")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def conversation_params(encode) -> ConversationParams:
    """The default conversation model with its prototypes embedded by ``encode`` (the pipeline's embedder,
    so prototypes and messages live in one space whatever model is configured)."""
    from turret.conversation import ConversationParams, prototypes_from_encoder

    return ConversationParams(prototypes=prototypes_from_encoder(encode))
