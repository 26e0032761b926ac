"""The demo data set: size, shape, determinism, paraphrase diversity and the planted journeys."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from turret.demo import dataset
from turret.demo.dataset import (
    PLANTED_TRANSITIONS,
    TOPICS,
    generate,
    topic_sequences,
    transition_probabilities,
)


@pytest.fixture(scope="module")
def events():
    return generate()


def test_counts_sessions_users(events):
    sessions = Counter(e.session_id for e in events)
    assert len(events) >= 3000
    assert len(sessions) >= 400
    # Multi-turn: every session has at least 3 turns.
    assert min(sessions.values()) >= 3
    users = {e.user_id: set() for e in events}
    for e in events:
        users[e.user_id].add(e.session_id)
    assert 100 <= len(users) <= 200
    repeat = [u for u, s in users.items() if len(s) >= 2]
    assert len(repeat) / len(users) > 0.6


def test_repeat_sessions_are_days_apart(events):
    spans: dict[str, tuple[datetime, datetime]] = {}
    by_user: dict[str, list[tuple[datetime, datetime]]] = {}
    for e in events:
        t = datetime.fromisoformat(e.timestamp)
        lo, hi = spans.get(e.session_id, (t, t))
        spans[e.session_id] = (min(lo, t), max(hi, t))
    for e in events:
        by_user.setdefault(e.user_id, [])
    user_of = {e.session_id: e.user_id for e in events}
    for sid, span in spans.items():
        by_user[user_of[sid]].append(span)
    gaps = []
    for sessions in by_user.values():
        sessions.sort()
        for (_, end), (start, _) in pairwise(sessions):
            assert start > end, "sessions of one user overlap"
            gaps.append((start - end).total_seconds())
    assert sorted(gaps)[len(gaps) // 2] > 86400  # the median gap is more than a day


def test_every_topic_present_and_acks_sprinkled(events):
    topics = Counter(e.topic for e in events if not e.is_ack)
    assert set(topics) == set(TOPICS)
    assert len(TOPICS) >= 12
    assert min(topics.values()) >= 60
    acks = [e for e in events if e.is_ack]
    assert 0.03 < len(acks) / len(events) < 0.25
    assert all(e.topic is None for e in acks)
    # Acks occur mid-session too, not only at the end.
    mid = sum(1 for seq in topic_sequences(events, include_acks=True).values() if "ack" in seq[:-1])
    assert mid > 50


def test_deterministic_for_a_seed():
    a, b = generate(seed=3, n_sessions=60), generate(seed=3, n_sessions=60)
    assert [e.to_payload() for e in a] == [e.to_payload() for e in b]
    c = generate(seed=4, n_sessions=60)
    assert [e.metadata["prompt"] for e in a] != [e.metadata["prompt"] for e in c]


def test_ids_do_not_depend_on_now():
    a = generate(seed=3, n_sessions=40)
    b = generate(seed=3, n_sessions=40, now=datetime(2030, 5, 1, tzinfo=UTC))
    assert [e.event_id for e in a] == [e.event_id for e in b]
    assert [e.metadata["prompt"] for e in a] == [e.metadata["prompt"] for e in b]


def test_paraphrase_diversity(events):
    texts = [e.metadata["prompt"] for e in events]
    assert len(set(texts)) / len(texts) > 0.8
    # Within each topic, most texts are distinct too (not one sentence repeated).
    for topic in TOPICS:
        t = [e.metadata["prompt"] for e in events if e.topic == topic]
        assert len(set(t)) / len(t) > 0.75, topic
    lengths = [len(t) for t in texts]
    assert min(lengths) < 15 and max(lengths) > 120


def test_planted_transitions_are_frequent(events):
    probs = transition_probabilities(events)
    pair_counts = Counter()
    for seq in topic_sequences(events).values():
        pair_counts.update(pairwise(seq))
    for (source, target), p in PLANTED_TRANSITIONS.items():
        assert pair_counts[(source, target)] >= 60, (source, target)
        assert probs[(source, target)] > p - 0.12, (source, target, probs[(source, target)])
        # It is the strongest way out of its source.
        others = [q for (a, b), q in probs.items() if a == source and b != target]
        assert probs[(source, target)] > max(others)
    # Unplanted transitions stay weak, so the planted ones stand out.
    planted_sources = {s for s, _ in PLANTED_TRANSITIONS}
    for (a, b), q in probs.items():
        if a not in planted_sources and a != b:
            assert q < 0.3, (a, b, q)


def test_onboarding_users_return_with_integrations(events):
    sessions: dict[str, list] = {}
    for e in events:
        sessions.setdefault(e.user_id, [])
    first_topic: dict[str, tuple[str, str, str]] = {}
    for e in events:
        if e.is_ack:
            continue
        if e.session_id not in first_topic or e.timestamp < first_topic[e.session_id][0]:
            first_topic[e.session_id] = (e.timestamp, e.user_id, e.topic)
    asked = {e.session_id for e in events if e.topic == "onboarding"}
    by_user: dict[str, list[tuple[str, str]]] = {}
    for sid, (ts, user, _) in first_topic.items():
        by_user.setdefault(user, []).append((ts, sid))
    returned = total = 0
    for seq in by_user.values():
        seq.sort()
        for (_, sid), (_, nxt) in pairwise(seq):
            if sid in asked:
                total += 1
                returned += first_topic[nxt][2] == "integrations"
    assert total >= 30
    assert returned / total > 0.5


def test_metadata_shape_and_payload(events):
    now = dataset.DEFAULT_NOW
    for e in events:
        payload = e.to_payload()
        assert set(payload) == {"name", "session_id", "user_id", "timestamp", "event_id", "metadata"}
        assert set(e.metadata) == {"prompt", "platform", "language", "plan_tier", "response_ms"}
        assert e.metadata["platform"] in dataset.PLATFORMS
        assert e.metadata["language"] in dataset.LANGUAGES
        assert e.metadata["plan_tier"] in dataset.PLAN_TIERS
        assert isinstance(e.metadata["response_ms"], int) and e.metadata["response_ms"] > 0
        assert e.event_id.startswith("evt_") and len(e.event_id) == 36
        assert e.timestamp.endswith("Z")
        t = datetime.fromisoformat(e.timestamp)
        assert now - timedelta(days=7) <= t < now
    assert len({e.event_id for e in events}) == len(events)
    languages = Counter(e.metadata["language"] for e in events)
    assert languages["en"] / len(events) > 0.85
    assert {"es", "de", "fr"} <= set(languages)


@pytest.mark.parametrize("kwargs", [{"n_sessions": 0}, {"n_users": 0}, {"ack_rate": 1.5}])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        generate(**kwargs)


def test_outcomes_follow_their_message_as_the_track_convention_credits_them(events):
    """Each outcome lies after its message and before the session's next message (so docs/marts.md's
    convention credits it to that message), purchases follow answers about plans, ids are stable."""
    from turret.demo.dataset import EVENT_NAME, UPGRADE_PRICES, UPGRADE_TOPICS, outcomes

    out = outcomes(events)
    assert out == outcomes(events) and out == sorted(out, key=lambda e: (e.timestamp, e.event_id))
    names = Counter(e.name for e in out)
    assert set(names) == {"click", "purchase"}
    assert 0.2 < names["click"] / sum(not e.is_ack for e in events) < 0.4
    assert len({e.event_id for e in out} | {e.event_id for e in events}) == len(out) + len(events)
    by_session: dict[str, list] = {}
    for e in sorted(events + out, key=lambda e: (e.timestamp, e.event_id)):
        by_session.setdefault(e.session_id, []).append(e)
    for session in by_session.values():
        credited = None
        for e in session:
            if e.name == EVENT_NAME:
                credited = e
                continue
            assert credited is not None and not credited.is_ack, "an outcome before any answer"
            assert e.topic == credited.topic and e.user_id == credited.user_id
            if e.name == "purchase":
                assert credited.topic in UPGRADE_TOPICS
                tier = credited.metadata["plan_tier"]
                assert (e.metadata["plan"], e.metadata["revenue"]) == UPGRADE_PRICES[tier]
    # The messages' generator is untouched: outcomes are drawn per message, apart from the conversations.
    assert [e.to_payload() for e in generate()] == [e.to_payload() for e in events]
    assert all(e.name == EVENT_NAME for e in events)
