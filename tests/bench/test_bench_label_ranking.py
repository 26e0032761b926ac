"""bench/label_ranking.py scores the keyword labeler's own candidates and ranking (no data, a toy encoder)."""

from __future__ import annotations

import hashlib

import numpy as np
from turret.labels import KeywordLabeler, TopicDocuments

from bench.label_ranking import _signals, match_at_1, product_ranking, weighted


class BagOfWords:
    """A deterministic toy encoder: each word a fixed random direction, a text the mean of its words."""

    def encode(self, texts):
        def word(w):
            return np.random.default_rng(int(hashlib.sha1(w.encode()).hexdigest()[:8], 16)).normal(size=32)

        out = [np.mean([word(w) for w in t.lower().split()] or [np.zeros(32)], axis=0) for t in texts]
        return np.asarray(out, dtype=np.float32)


TOPICS = {
    "0": ["my card has not arrived", "card delivery is late", "when will my card arrive",
          "card delivery time"],
    "1": ["exchange rate is wrong", "wrong exchange rate applied", "exchange rate for euros",
          "rate too high"],
    "2": ["reset my password", "forgot my password", "password reset link", "cannot reset password"],
}
INTENTS = ["card delivery", "exchange rate", "password reset"]


def test_the_product_ranking_of_the_benchmark_picks_the_labelers_own_label():
    encoder = BagOfWords()
    labeler = KeywordLabeler(encoder, vocabulary=None)
    docs = [TopicDocuments(k, v[:2], texts=v) for k, v in TOPICS.items()]
    members = {k: [INTENTS[int(k)]] * len(v) for k, v in TOPICS.items()}
    G = encoder.encode(INTENTS)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    topics = _signals(labeler, docs, members, INTENTS, G)
    candidates = labeler.candidates_of(docs)
    labels = {lab.key: lab.label.lower() for lab in labeler.label(docs)}
    for doc, (size, signals, hit) in zip(docs, topics, strict=True):
        assert size == len(TOPICS[doc.key]) and len(hit) == len(candidates.phrases[doc.key])
        best = candidates.phrases[doc.key][int(np.argmax(product_ranking(labeler)(signals)))]
        assert best.text == labels[doc.key]  # the labels are distinct here: no topic took another's
    # The grid's point {oth1: -contrast} is the product's ranking, so both count the same hits.
    ours = match_at_1(topics, product_ranking(labeler))
    assert match_at_1(topics, weighted({"oth1": -labeler.contrast})) == ours
    assert 0.0 <= ours <= 1.0
