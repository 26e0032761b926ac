"""Keyword labels: a short phrase from the topic's own texts, chosen by what the topic means.

For each topic of a (project, field), in one call:

1. candidates: c-TF-IDF's best 1-4-word phrases that occur contiguously within a clause of the topic's
   texts, misspellings and fragments ("receive a physical", nearly always followed by "card") left out
   (``turret.labels.phrases``);
2. each candidate is embedded with the topic embedding model and scored by how close it is to its topic's
   centroid, less half how close it is to the nearest *other* centroid (a label should tell topics apart);
3. a topic with no content phrase (only "thanks", "ok", "bye"...) whose centroid reads like chit-chat (the
   greeting, thanks/closing and yes/no prototypes of ``turret.conversation``) is named as such ("Thanks and
   goodbyes");
4. labels are made distinct: where two topics want one label, the topic that fits it best keeps it and the
   other takes its next candidate.

Without an encoder (no embedding model at hand) step 2 ranks by c-TF-IDF weight alone. Deterministic: the same
topics give the same labels.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from turret.labels.base import TopicDocuments, TopicLabel
from turret.labels.phrases import Phrase, Spelling, candidate_phrases, model_vocabulary
from turret.vectors import unit_rows

# Names of chit-chat topics, by turret.conversation's kind.
CONVERSATIONAL_LABELS = {
    "greeting": "Greetings",
    "closing": "Thanks and goodbyes",
    "confirmation": "Yes / no answers",
}


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True)
class Candidates:
    """The candidate labels of one call: each topic's phrases (best c-TF-IDF weight first) and, with an
    encoder, every topic's centroid and each distinct phrase's embedding (rows of ``vectors``, in the order
    of ``texts``), all unit vectors."""

    phrases: Mapping[str, list[Phrase]]
    texts: list[str]
    vectors: np.ndarray | None = None
    centroids: np.ndarray | None = None

    def similarity(self) -> np.ndarray:
        """Cosine of each phrase (rows, as ``texts``) to each topic's centroid (columns, as the topics)."""
        if self.vectors is None or self.centroids is None:
            raise ValueError("candidates were made without an encoder")
        return self.vectors @ self.centroids.T

    def rows(self, key: str) -> np.ndarray:
        """Rows of ``vectors`` (and of ``similarity()``) of topic ``key``'s phrases, in their order."""
        return np.array([self._row[p.text] for p in self.phrases[key]], dtype=int)

    @functools.cached_property
    def _row(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.texts)}


class KeywordLabeler:
    """Labels from phrases of the topics' texts, no LLM involved; the fallback of every other labeler.

    ``encoder``: anything with ``encode(texts) -> (n x d) unit vectors`` in the space of the topics'
    centroids (the topic embedding model). ``None``: phrases are ranked by c-TF-IDF weight alone.
    ``vocabulary``: whole words of the embedding model's tokenizer, for the spelling check; ``"auto"`` reads
    the packaged model's ``vocab.txt``; ``None`` judges spelling from the texts alone.
    Knobs: ``candidates``, how many of a topic's phrases (best c-TF-IDF weight first) are scored by meaning;
    ``max_words`` per phrase; ``contrast``, how much closeness to another topic's centroid costs;
    ``length_bonus``, the score a phrase gains per word after the first (0: none);
    ``max_continuation``, the share of a phrase's texts in which one content word may follow (or precede) it
    before the phrase counts as a fragment of a longer one (``None``: no such check);
    ``docs_per_topic`` texts per topic are embedded for a centroid when a topic comes without one;
    ``conversational_similarity``: how close a centroid must be to a chit-chat prototype for a topic without
    content phrases to be named as chit-chat (default: turret.conversation's rule for conversational topics).
    """

    labeler_id = "keywords"

    def __init__(
        self,
        encoder: Encoder | None = None,
        *,
        vocabulary: Collection[str] | str | None = "auto",
        contrast: float = 0.5,
        candidates: int = 60,
        max_words: int = 4,
        length_bonus: float = 0.0,
        max_continuation: float | None = 0.75,
        docs_per_topic: int = 50,
        conversational_similarity: float | None = None,
    ) -> None:
        self.encoder = encoder
        self.vocabulary = vocabulary
        self.contrast = contrast
        self.candidates = candidates
        self.max_words = max_words
        self.length_bonus = length_bonus
        self.max_continuation = max_continuation
        self.docs_per_topic = docs_per_topic
        if conversational_similarity is None:
            from turret.conversation import ConversationParams

            conversational_similarity = ConversationParams().conversational_topic_similarity
        self.conversational_similarity = conversational_similarity

    # ------------------------------------------------------------------------------------------- public

    def label(self, topics: Sequence[TopicDocuments], *, reserved: Collection[str] = ()) -> list[TopicLabel]:
        topics = list(topics)
        if not topics:
            return []
        keys = [t.key for t in topics]
        if len(set(keys)) != len(keys):
            raise ValueError("topic keys must be distinct")
        candidates = self.candidates_of(topics)
        phrases = candidates.phrases
        ranked = self._rank(topics, candidates)
        chosen = _distinct(ranked, reserved)
        forms = _surface_forms(str(d) for t in topics for d in t.sample)
        taken = {r.strip().lower() for r in reserved} | {c.lower() for c in chosen.values() if c}
        out = []
        for topic in topics:
            label = chosen[topic.key]
            if label:
                text = _sentence_case(label, forms)
            elif ranked[topic.key]:  # every candidate went to a topic it suits better: its best, numbered
                text = _numbered(_sentence_case(ranked[topic.key][0][1], forms), taken)
            else:
                text = f"Topic {topic.key}"
            out.append(TopicLabel(topic.key, text, _description(topic, phrases[topic.key]), self.labeler_id))
        return out

    def label_one(self, topic: TopicDocuments) -> TopicLabel:
        return self.label([topic])[0]

    def candidates_of(self, topics: Sequence[TopicDocuments]) -> Candidates:
        """Step 1 (and the embeddings step 2 scores): each topic's candidate phrases; with an encoder, the
        topics' centroids and the phrases' embeddings."""
        topics = list(topics)
        samples = {t.key: [str(d) for d in t.sample] for t in topics}
        spelling = Spelling.from_texts((d for docs in samples.values() for d in docs), self._vocabulary())
        phrases = candidate_phrases(
            samples,
            spelling=spelling,
            top_n=self.candidates,
            max_words=self.max_words,
            max_continuation=self.max_continuation,
        )
        texts = sorted({p.text for t in topics for p in phrases[t.key]})
        if self.encoder is None:
            return Candidates(phrases, texts)
        vectors = unit_rows(np.asarray(self.encoder.encode(texts), dtype=np.float32)) if texts else None
        return Candidates(phrases, texts, vectors, self._centroids(topics))

    def score(self, own: np.ndarray, other: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Step 2's ranking: closeness to the own centroid (``own``), less ``contrast`` times closeness to
        the nearest other centroid (``other``), plus ``length_bonus`` per word after the first (``words``)."""
        return own - self.contrast * other + self.length_bonus * words

    # ------------------------------------------------------------------------------------------ ranking

    def _vocabulary(self) -> Collection[str] | None:
        if self.vocabulary == "auto":
            return model_vocabulary()
        return self.vocabulary  # type: ignore[return-value]

    def _rank(
        self, topics: list[TopicDocuments], candidates: Candidates
    ) -> dict[str, list[tuple[float, str]]]:
        """Candidate labels per topic as (score, phrase), best first."""
        phrases = candidates.phrases
        if self.encoder is None:
            return {t.key: [(p.weight, p.text) for p in phrases[t.key]] for t in topics}
        C = candidates.centroids
        kinds = list(CONVERSATIONAL_LABELS)
        from turret.conversation import PROTOTYPE_SENTENCES

        protos = [s for kind in kinds for s in PROTOTYPE_SENTENCES[kind]]
        Q = unit_rows(np.asarray(self.encoder.encode(protos), dtype=np.float32))
        proto_kind = [kind for kind in kinds for _ in PROTOTYPE_SENTENCES[kind]]
        S = candidates.similarity() if candidates.texts else None  # phrase x topic cosine
        out: dict[str, list[tuple[float, str]]] = {}
        for j, topic in enumerate(topics):
            cands = phrases[topic.key]
            scored: list[tuple[float, str]] = []
            if cands:
                idx = candidates.rows(topic.key)
                own = S[idx, j]
                if len(topics) > 1:
                    others = np.delete(S[idx], j, axis=1).max(axis=1)
                else:
                    others = np.zeros_like(own)
                words = np.array([len(p.text.split()) - 1 for p in cands])
                score = self.score(own, others, words)
                pairs = zip(score.tolist(), (p.text for p in cands), strict=True)
                scored = sorted(pairs, key=lambda x: (-x[0], x[1]))
            # Chit-chat: no content phrase is common in the topic, and its centroid reads like a prototype.
            proto_sim = Q @ C[j]
            best = int(np.argmax(proto_sim))
            if proto_sim[best] >= self.conversational_similarity:
                chat_label = (float("inf"), CONVERSATIONAL_LABELS[proto_kind[best]])
                if not cands or cands[0].chat:
                    scored.insert(0, chat_label)
                else:  # content phrases first ("Worked"); the kind's name once they are all taken
                    scored.append((float("-inf"), chat_label[1]))
            out[topic.key] = scored
        return out

    def _centroids(self, topics: list[TopicDocuments]) -> np.ndarray:
        rows: list[np.ndarray | None] = []
        missing: list[int] = []
        for i, t in enumerate(topics):
            if t.centroid is not None and len(t.centroid):
                rows.append(np.asarray(t.centroid, dtype=np.float32))
            else:
                rows.append(None)
                missing.append(i)
        if missing:
            docs = [
                [str(d) for d in topics[i].sample[: self.docs_per_topic]] or [topics[i].key] for i in missing
            ]
            V = unit_rows(np.asarray(self.encoder.encode([d for ds in docs for d in ds]), dtype=np.float32))
            start = 0
            for i, ds in zip(missing, docs, strict=True):
                rows[i] = V[start : start + len(ds)].mean(axis=0)
                start += len(ds)
        return unit_rows(np.vstack(rows))


def _distinct(
    ranked: Mapping[str, list[tuple[float, str]]], reserved: Collection[str]
) -> dict[str, str | None]:
    """One label per topic, no two alike (nor like a reserved one): where topics want the same phrase, the one
    it scores best for keeps it and the others move on to their next candidate."""
    taken = {r.strip().lower() for r in reserved}
    position = dict.fromkeys(ranked, 0)
    chosen: dict[str, str | None] = {}
    pending = list(ranked)
    while pending:
        wants: dict[str, list[tuple[float, str]]] = {}
        for key in pending:
            cands = ranked[key]
            while position[key] < len(cands) and cands[position[key]][1].lower() in taken:
                position[key] += 1
            if position[key] >= len(cands):
                chosen[key] = None
                continue
            score, phrase = cands[position[key]]
            wants.setdefault(phrase.lower(), []).append((score, key))
        pending = []
        for phrase, claims in sorted(wants.items()):
            claims.sort(key=lambda c: (-c[0], c[1]))
            winner = claims[0][1]
            chosen[winner] = ranked[winner][position[winner]][1]
            taken.add(phrase)
            for _score, key in claims[1:]:
                position[key] += 1
                pending.append(key)
    # A topic that ran out of candidates: its key makes its label unique.
    return chosen


def _numbered(phrase: str, taken: set[str]) -> str:
    """``phrase (2)``, ``phrase (3)``...: the first not in ``taken`` (lower case), which it joins."""
    n = 2
    while f"{phrase} ({n})".lower() in taken:
        n += 1
    taken.add(f"{phrase} ({n})".lower())
    return f"{phrase} ({n})"


def _surface_forms(texts) -> dict[str, str]:
    """How words are written when not at the start of a text: "ATM", "PayPal", "London" keep their case."""
    seen: dict[str, Counter[str]] = {}
    for text in texts:
        words = str(text).replace("\u2019", "'").split()
        for raw in words[1:]:
            word = raw.strip(".,!?;:()[]\"'")
            if word and word.lower() != word:
                seen.setdefault(word.lower(), Counter())[word] += 1
            elif word:
                seen.setdefault(word, Counter())[word] += 1
    return {w: forms.most_common(1)[0][0] for w, forms in seen.items() if forms.most_common(1)[0][0] != w}


def _sentence_case(phrase: str, forms: Mapping[str, str]) -> str:
    if phrase in CONVERSATIONAL_LABELS.values():
        return phrase
    words = [forms.get(w, w) for w in phrase.split()]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _description(topic: TopicDocuments, phrases: Sequence[Phrase]) -> str:
    terms = [k.strip() for k in topic.keywords if k and k.strip()][:3] or [p.text for p in phrases[:3]]
    if not terms:
        return f"Messages grouped in topic {topic.key}."
    return f"Messages about {_join_english(terms)}."


def _join_english(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
