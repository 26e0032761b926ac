"""The demo data set: a week of prompts sent to the AI support assistant of a SaaS product ("Flowdesk").

Everything is generated from templates, deterministically for a seed; no shared data files. This module
decides who says what and when (users, sessions, topic chains); ``turret.demo.phrasing`` writes each
message. The shape is what Turret is built to find:

- ~150 repeat users, each with a few multi-turn sessions days apart, spread over the 7 days before ``now``;
- 14 topics, each with many paraphrases composed from templates (openers, slot fillers, context, closers,
  casing and typos) so two texts are rarely identical; a few users write in Spanish, German or French;
- topic shifts inside a session follow a Markov chain with a few strong planted transitions
  (``PLANTED_TRANSITIONS``) that an end-to-end test can check the journeys recover;
- acknowledgement turns ("thanks!", "ok that worked") sprinkled in, marked ``is_ack``;
- users who ask about onboarding come back in a later session with integration problems;
- what users do after an answer (``outcomes``): they open the help article it links (``click``), and after
  answers about plans some upgrade (``purchase`` with the plan's price as ``revenue``), sent as the ``/track``
  convention of docs/marts.md says, so the conversion marts have something to credit.

``DemoEvent.to_payload()`` is what is posted to ``/track/batch``; the gold ``topic`` and ``is_ack`` stay
out of it and are only for tests (an outcome's ``topic`` is the topic of the message it follows).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from turret.demo.phrasing import ack, prompt

# A fixed "now" so that generate() with no arguments is reproducible; the runner passes the real day.
DEFAULT_NOW = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 7
EVENT_NAME = "user_prompt"

PLATFORMS = ("web", "ios", "android", "slack")
PLATFORM_WEIGHTS = (0.5, 0.2, 0.15, 0.15)
PLAN_TIERS = ("free", "starter", "pro", "business", "enterprise")
PLAN_WEIGHTS = (0.35, 0.25, 0.2, 0.15, 0.05)
LANGUAGES = ("en", "es", "de", "fr")
# Share of users who write in each non-English language (when the topic has templates in it).
LANGUAGE_USER_SHARE = {"es": 0.05, "de": 0.04, "fr": 0.04}

TOPICS: tuple[str, ...] = (
    "password_reset",
    "billing_invoices",
    "pricing_plans",
    "upgrade_downgrade",
    "integrations",
    "api_keys_rate_limits",
    "bug_reports",
    "data_export",
    "sso_saml",
    "account_deletion_gdpr",
    "onboarding",
    "mobile_app",
    "notifications",
    "team_invites",
)

# The strong transitions planted in the chain: P(next topic = target | current topic = source).
PLANTED_TRANSITIONS: Mapping[tuple[str, str], float] = {
    ("pricing_plans", "upgrade_downgrade"): 0.6,
    ("password_reset", "sso_saml"): 0.5,
    ("integrations", "bug_reports"): 0.5,
    ("onboarding", "team_invites"): 0.45,
}
# A user who asked about onboarding opens a later session about integrations with this probability.
ONBOARDING_RETURN_TO_INTEGRATIONS = 0.7
# Staying on the same topic (a follow-up question) when no planted transition applies.
SELF_TRANSITION = 0.2

# Topic popularity for the first turn of a session (the remaining topics share what is left equally).
START_WEIGHTS = {
    "password_reset": 3.0,
    "pricing_plans": 3.0,
    "integrations": 3.0,
    "onboarding": 2.5,
    "billing_invoices": 2.0,
    "bug_reports": 1.5,
    "api_keys_rate_limits": 1.5,
}



@dataclass(frozen=True)
class DemoEvent:
    """One posted event plus the gold answers (``topic``, ``is_ack``) that are never posted."""

    name: str
    session_id: str
    user_id: str
    timestamp: str
    event_id: str
    metadata: dict[str, Any]
    topic: str | None = field(default=None, compare=False)
    is_ack: bool = field(default=False, compare=False)

    def to_payload(self) -> dict[str, Any]:
        """The body of this event in ``POST /track/batch``; gold labels stay out."""
        return {
            "name": self.name,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "timestamp": self.timestamp,
            "event_id": self.event_id,
            "metadata": dict(self.metadata),
        }


@dataclass
class _User:
    user_id: str
    platform: str
    plan_tier: str
    language: str
    n_sessions: int
    asked_onboarding: bool = False


def generate(
    seed: int = 7,
    n_sessions: int = 450,
    *,
    n_users: int = 150,
    now: datetime | None = None,
    ack_rate: float = 0.12,
    foreign_languages: bool = True,
) -> list[DemoEvent]:
    """Generate the demo events, sorted by timestamp; the same arguments always give the same events.

    ``now`` is the end of the 7-day window (default ``DEFAULT_NOW``); event ids, session ids and user ids
    depend only on ``seed`` and ``n_sessions``, so re-posting after a change of ``now`` is deduplicated.
    """
    if n_sessions < 1:
        raise ValueError("n_sessions must be at least 1")
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if not 0.0 <= ack_rate < 1.0:
        raise ValueError("ack_rate must be in [0, 1)")
    now = (now or DEFAULT_NOW).astimezone(UTC)
    rng = random.Random(f"turret-demo:{seed}")
    n_users = min(n_users, n_sessions)
    users = _make_users(rng, n_users, n_sessions, foreign_languages)
    window_start = now - timedelta(days=WINDOW_DAYS)

    events: list[DemoEvent] = []
    session_no = 0
    for user in users:
        for start in _session_starts(rng, user.n_sessions, window_start, now):
            session_id = f"demo-s{seed}-{session_no:05d}"
            events.extend(_session(rng, seed, n_sessions, session_id, session_no, user, start, now, ack_rate))
            session_no += 1
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return events


def topic_sequences(events: list[DemoEvent], *, include_acks: bool = False) -> dict[str, list[str]]:
    """Gold topic sequence of each session in time order (acks left out unless asked), for tests."""
    sessions: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        if e.name != EVENT_NAME or (e.is_ack and not include_acks):
            continue
        sessions.setdefault(e.session_id, []).append((e.timestamp, "ack" if e.is_ack else str(e.topic)))
    return {sid: [t for _, t in sorted(seq)] for sid, seq in sessions.items()}


def transition_probabilities(events: list[DemoEvent]) -> dict[tuple[str, str], float]:
    """Observed P(next topic | topic) over consecutive non-ack turns in the same session (self-loops kept)."""
    counts: dict[tuple[str, str], int] = {}
    totals: dict[str, int] = {}
    for seq in topic_sequences(events).values():
        for a, b in zip(seq, seq[1:], strict=False):
            counts[(a, b)] = counts.get((a, b), 0) + 1
            totals[a] = totals.get(a, 0) + 1
    return {(a, b): n / totals[a] for (a, b), n in counts.items()}


# --- outcomes ---------------------------------------------------------------------------------------------

# Share of topical answers whose linked help article the user opens.
HELP_ARTICLE_CLICK_RATE = 0.3
# Answers about plans that are followed by an upgrade to the next tier, at that tier's monthly price.
UPGRADE_TOPICS = ("pricing_plans", "upgrade_downgrade")
UPGRADE_RATE = 0.2
UPGRADE_PRICES = {"free": ("starter", 19.0), "starter": ("pro", 49.0), "pro": ("business", 199.0)}
# An outcome after a session's last message comes within this many seconds of it.
LAST_MESSAGE_WINDOW_S = 300.0


def outcomes(events: list[DemoEvent], seed: int = 7) -> list[DemoEvent]:
    """What users did after the assistant answered each of ``events``' messages: a ``click`` on the help
    article the answer linked, and after an answer about plans sometimes a ``purchase`` of the next tier.

    Each outcome lies between its message and the session's next message (within
    ``LAST_MESSAGE_WINDOW_S`` after the last one, and before the latest timestamp of ``events``), so the
    ``/track`` convention credits it to that message. Drawn from a generator per message, so the same
    messages always get the same outcomes, whatever else is generated; ids depend only on the message's id.
    """
    by_session: dict[str, list[DemoEvent]] = {}
    for e in events:
        if e.name == EVENT_NAME:
            by_session.setdefault(e.session_id, []).append(e)
    if not by_session:
        return []
    latest = max(_parse(e.timestamp) for msgs in by_session.values() for e in msgs)
    out: list[DemoEvent] = []
    for messages in by_session.values():
        messages.sort(key=lambda e: (e.timestamp, e.event_id))
        for i, message in enumerate(messages):
            if message.is_ack:
                continue
            at = _parse(message.timestamp)
            following = _parse(messages[i + 1].timestamp) if i + 1 < len(messages) else None
            end = following or min(at + timedelta(seconds=LAST_MESSAGE_WINDOW_S), latest)
            gap = (end - at).total_seconds()
            rng = random.Random(f"turret-demo-outcome:{seed}:{message.event_id}")
            base = {"platform": message.metadata["platform"], "plan_tier": message.metadata["plan_tier"]}
            if rng.random() < HELP_ARTICLE_CLICK_RATE:
                when = at + timedelta(seconds=rng.uniform(0.1, 0.4) * gap)
                article = "help/" + str(message.topic).replace("_", "-")
                out.append(_outcome(seed, message, "click", when, {"article": article, **base}))
            upgrade = UPGRADE_PRICES.get(message.metadata["plan_tier"])
            if message.topic in UPGRADE_TOPICS and upgrade and rng.random() < UPGRADE_RATE:
                plan, price = upgrade
                when = at + timedelta(seconds=rng.uniform(0.5, 0.9) * gap)
                bought = {"plan": plan, "revenue": price, **base}
                out.append(_outcome(seed, message, "purchase", when, bought))
    out.sort(key=lambda e: (e.timestamp, e.event_id))
    return out


def _outcome(seed: int, message: DemoEvent, name: str, when: datetime, metadata: dict[str, Any]) -> DemoEvent:
    digest = hashlib.sha256(f"turret-demo-outcome:{seed}:{message.event_id}:{name}".encode()).hexdigest()
    return DemoEvent(name=name, session_id=message.session_id, user_id=message.user_id,
                     timestamp=_timestamp(when), event_id="evt_" + digest[:32], metadata=metadata,
                     topic=message.topic)


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


# --- users and sessions --------------------------------------------------------------------------------


def _make_users(rng: random.Random, n_users: int, n_sessions: int, foreign: bool) -> list[_User]:
    # Every user gets one session, the rest go to users at random with a heavy-ish tail (some users come
    # back often), capped so sessions of one user stay days apart within the week.
    per_user = [1] * n_users
    weights = [rng.paretovariate(2.0) for _ in range(n_users)]
    for _ in range(n_sessions - n_users):
        while True:
            i = rng.choices(range(n_users), weights=weights)[0]
            if per_user[i] < 6 or all(p >= 6 for p in per_user):
                per_user[i] += 1
                break
    users = []
    for i in range(n_users):
        language = "en"
        if foreign:
            r = rng.random()
            for lang, share in LANGUAGE_USER_SHARE.items():
                if r < share:
                    language = lang
                    break
                r -= share
        users.append(
            _User(
                user_id=f"demo-user-{i:04d}",
                platform=rng.choices(PLATFORMS, weights=PLATFORM_WEIGHTS)[0],
                plan_tier=rng.choices(PLAN_TIERS, weights=PLAN_WEIGHTS)[0],
                language=language,
                n_sessions=per_user[i],
            )
        )
    return users


def _session_starts(rng: random.Random, k: int, window_start: datetime, now: datetime) -> list[datetime]:
    # Split the window into k equal slots and start one session in each: a user's sessions are then
    # about 7/k days apart, never overlapping, and all end before ``now`` (the last hour is kept free).
    span = (now - window_start).total_seconds() - 3600
    slot = span / k
    starts = []
    for j in range(k):
        offset = j * slot + rng.uniform(0.05, 0.85) * slot
        starts.append(window_start + timedelta(seconds=offset))
    return starts


def _next_topic(rng: random.Random, current: str) -> str:
    for (source, target), p in PLANTED_TRANSITIONS.items():
        if source == current:
            r = rng.random()
            if r < p:
                return target
            if r < p + SELF_TRANSITION / 2:
                return current
            return rng.choice([t for t in TOPICS if t not in (current, target)])
    if rng.random() < SELF_TRANSITION:
        return current
    return _start_topic(rng, exclude=current)


def _start_topic(rng: random.Random, exclude: str | None = None) -> str:
    candidates = [t for t in TOPICS if t != exclude]
    return rng.choices(candidates, weights=[START_WEIGHTS.get(t, 1.0) for t in candidates])[0]


def _session(
    rng: random.Random,
    seed: int,
    n_sessions: int,
    session_id: str,
    session_no: int,
    user: _User,
    start: datetime,
    now: datetime,
    ack_rate: float,
) -> list[DemoEvent]:
    if user.asked_onboarding and rng.random() < ONBOARDING_RETURN_TO_INTEGRATIONS:
        topic = "integrations"
        user.asked_onboarding = False
    else:
        topic = _start_topic(rng)
    # 3 to 12 topic turns, mean about 6.5: most conversations are short, a few go on.
    n_turns = min(12, 3 + _poisson(rng, 3.5))
    platform = user.platform if rng.random() < 0.85 else rng.choice(PLATFORMS)
    at = start
    turns: list[tuple[str | None, tuple[str, str], datetime]] = []
    previous = None
    for i in range(n_turns):
        text = prompt(rng, topic, user.language, platform, follow_up=(topic == previous))
        turns.append((topic, text, at))
        if topic == "onboarding":
            user.asked_onboarding = True
        at += timedelta(seconds=rng.uniform(20, 240))
        if i < n_turns - 1 and rng.random() < ack_rate:
            turns.append((None, ack(rng, user.language), at))
            at += timedelta(seconds=rng.uniform(10, 90))
        previous = topic
        topic = _next_topic(rng, topic)
    if rng.random() < ack_rate * 3:
        turns.append((None, ack(rng, user.language), at))

    events = []
    for turn, (topic_of_turn, (text, language), when) in enumerate(turns):
        when = min(when, now - timedelta(seconds=1))
        digest = hashlib.sha256(f"turret-demo:{seed}:{n_sessions}:{session_no}:{turn}".encode()).hexdigest()
        is_ack = topic_of_turn is None
        events.append(
            DemoEvent(
                name=EVENT_NAME,
                session_id=session_id,
                user_id=user.user_id,
                timestamp=_timestamp(when),
                event_id="evt_" + digest[:32],
                metadata={
                    "prompt": text,
                    "platform": platform,
                    "language": language,
                    "plan_tier": user.plan_tier,
                    # Assistant latency: log-normal around ~1.2 s, longer answers for longer prompts.
                    "response_ms": int(rng.lognormvariate(math.log(900 + 4 * len(text)), 0.45)),
                },
                topic=topic_of_turn,
                is_ack=is_ack,
            )
        )
    return events


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
