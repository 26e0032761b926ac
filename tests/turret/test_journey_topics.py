"""pipeline.journey_topics: the conversation model run over the warehouse, per dimension, idempotently."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pytest
from turret.conversation import CLOSING, CONTINUATION, TOPICAL, ConversationParams
from turret.embed import ensure_embeddings_table
from turret.journey_topics import assign_journey_topics
from turret.session_steps import write_session_steps
from turret.topics.store import ensure_state
from turret.warehouse import ensure_schema

D = 8
MODEL = "test-model"
P, F = "proj", "prompt"
T0 = datetime(2026, 3, 2, 9, 0, 0)


def unit(*weights: float) -> np.ndarray:
    v = np.zeros(D, dtype=np.float32)
    v[: len(weights)] = weights
    return v / np.linalg.norm(v)


THANKS = unit(0, 0, 0, 0, 0, 0, 0, 1)
NOISE = unit(0, 0, 0, 1)
CENTROIDS = {10: unit(1), 20: unit(0, 1)}
PARAMS = ConversationParams(prototypes={CLOSING: THANKS[None, :]})

# (session, [(text, vector, engine topic)]) in time order.
SESSIONS = [
    ("a", [("reset my password", unit(1), 10), ("thanks!", THANKS, -1),
           ("and the pricing?", unit(0, 1), 20)]),
    ("b", [("ok", NOISE, -1), ("what does pro cost", unit(0, 1), 20), ("for 3 seats", NOISE, -1)]),
]


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)
    ensure_state(c)
    ensure_embeddings_table(c, D)
    for s, (session, messages) in enumerate(SESSIONS):
        for i, (text, vector, topic) in enumerate(messages):
            event_id = f"{session}{i}"
            at = T0 + timedelta(hours=s, minutes=i)
            text_hash = hashlib.sha256(text.encode()).hexdigest()[:32]
            c.execute(
                "insert into raw.events values (?, ?, 'turret', null, 'user_prompt', ?, 'u1', false, false, "
                "?, ?,"
                " ?, 'seg', ?)",
                [P, event_id, session, at, at, json.dumps({F: text}), s * 10 + i],
            )
            c.execute("insert into pipeline.event_texts values (?, ?, ?, ?, ?)",
                      [P, event_id, F, text_hash, text])
            c.execute("insert into pipeline.event_topics values (?, ?, ?, ?, 'cluster', null, 'r1')",
                      [P, event_id, F, topic])
            c.execute("insert into pipeline.embeddings values (?, ?, ?) on conflict do nothing",
                      [MODEL, text_hash, vector.tolist()])
    for tid, vector in CENTROIDS.items():
        c.execute("insert into pipeline.topic_centroids values (?, ?, ?, ?, 1, '[]', null, null)",
                  [P, F, tid, vector.tolist()])
    write_session_steps(c)
    yield c
    c.close()


def rows(con) -> list[tuple]:
    return con.execute(
        "select event_id, journey_topic_id, kind, segment_index from pipeline.journey_topics "
        "order by event_id"
    ).fetchall()


def test_acknowledgements_and_follow_ups_keep_the_conversation_topic(con):
    stats = assign_journey_topics(con, model=MODEL, params=PARAMS)
    assert stats["dimensions"][f"{P}/{F}"] == {
        "messages": 6, "sessions": 2, "whole_dimension": True, "segments": 3,
        "kinds": {CLOSING: 1, CONTINUATION: 2, TOPICAL: 3},
    }
    assert rows(con) == [
        ("a0", 10, TOPICAL, 0),
        ("a1", 10, CLOSING, 0),  # "thanks!" carries the topic it thanks for
        ("a2", 20, TOPICAL, 1),
        ("b0", -1, CONTINUATION, -1),  # nothing topical said yet
        ("b1", 20, TOPICAL, 0),  # the session's first topic
        ("b2", 20, CONTINUATION, 0),  # "for 3 seats" answers within it
    ]


def test_rerunning_writes_the_same_rows_and_a_refit_recomputes_every_session(con):
    assign_journey_topics(con, model=MODEL, params=PARAMS)
    first = rows(con)
    assert assign_journey_topics(con, model=MODEL, params=PARAMS)["sessions"] == 0
    assert rows(con) == first
    # Centroids that moved between fits leave the sessions nobody touched as they were...
    con.execute("delete from pipeline.topic_centroids where topic_id = 20")
    assign_journey_topics(con, model=MODEL, params=PARAMS)
    assert rows(con) == first
    # ...and a refit (topic 20 gone, its texts now nearest to topic 10) rewrites every session's steps.
    con.execute(
        "insert into pipeline.topic_models (project_id, field, model, fitted_run_id, fitted_at, n_fit, "
        "min_cluster_size, mean_similarity, next_topic_id, pool_attempt_size, params) "
        "values (?, ?, ?, 'r2', now()::timestamp + interval 1 day, 6, 2, 0.5, 21, 0, '{}')",
        [P, F, MODEL],
    )
    write_session_steps(con, stamp=datetime(2099, 1, 1))
    assert assign_journey_topics(con, model=MODEL, params=PARAMS)["sessions"] == 2
    assert {r[1] for r in rows(con)} <= {10, -1}


def test_a_new_session_is_decoded_alone_and_as_a_full_run_would(con):
    assign_journey_topics(con, model=MODEL, params=PARAMS)
    before = rows(con)
    at = T0 + timedelta(hours=5)
    messages = [("pricing for teams", unit(0, 1), 20), ("thanks!", THANKS, -1)]
    for i, (text, vector, topic) in enumerate(messages):
        text_hash = hashlib.sha256(text.encode()).hexdigest()[:32]
        con.execute(
            "insert into raw.events values "
            "(?, ?, 'turret', null, 'user_prompt', 'c', 'u2', false, false, ?, ?, ?, 'seg2', ?)",
            [P, f"c{i}", at + timedelta(minutes=i), at, json.dumps({F: text}), i],
        )
        con.execute("insert into pipeline.event_texts values (?, ?, ?, ?, ?)",
                    [P, f"c{i}", F, text_hash, text])
        con.execute("insert into pipeline.event_topics values (?, ?, ?, ?, 'cluster', null, 'r2')",
                    [P, f"c{i}", F, topic])
        con.execute("insert into pipeline.embeddings values (?, ?, ?) on conflict do nothing",
                    [MODEL, text_hash, vector.tolist()])
    write_session_steps(con)
    stats = assign_journey_topics(con, model=MODEL, params=PARAMS)
    assert stats["sessions"] == 1 and stats["messages"] == 2
    incremental = rows(con)
    assert [r for r in incremental if not r[0].startswith("c")] == before
    new = [r for r in incremental if r[0].startswith("c")]
    assert new == [("c0", 20, TOPICAL, 0), ("c1", 20, CLOSING, 0)]
    # Another conversation model recomputes the dimension: the same rows as the incremental run.
    changed = ConversationParams(prototypes=PARAMS.prototypes, stay_probability=0.91)
    stats = assign_journey_topics(con, model=MODEL, params=changed)
    assert stats["sessions"] == 3 and stats["dimensions"][f"{P}/{F}"]["whole_dimension"]
    assert rows(con) == incremental


def test_messages_without_a_vector_for_the_model_are_left_out(con):
    stats = assign_journey_topics(con, model="another-model", params=PARAMS)
    assert stats["messages"] == 0 and rows(con) == []
