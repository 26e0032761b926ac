"""Where each topic sits on the topic map: topics that are worded alike are drawn close together.

The published marts carry no embeddings (they stay in the warehouse), so the map is built from what the marts
do hold, the way BERTopic's intertopic distance map is: one class-based TF-IDF document per topic (its label,
keywords and a sample of its scrubbed messages), cosine distances between them, and classical
multi-dimensional scaling to two dimensions. The layout depends only on the snapshot, so it is computed once
per snapshot and project field, and stays put while the filters change the point sizes.
"""

from __future__ import annotations

import json
from typing import Any

EXAMPLES_IN_HOVER = 3


def layout(topics: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """``{topic_id: {"x", "y", "examples"}}`` from ``{topic_id: {"label", "keywords", "texts"}}``."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = sorted(topics)
    if not ids:
        return {}
    docs = []
    for topic_id in ids:
        t = topics[topic_id]
        keywords = keywords_of(t.get("keywords"))
        docs.append(" ".join([str(t.get("label") or ""), *keywords, *[str(x) for x in t.get("texts") or []]]))
    if len(ids) == 1:
        coords = np.zeros((1, 2))
    else:
        try:
            tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(docs)
            similarity = (tfidf @ tfidf.T).toarray()
        except ValueError:  # no words at all (only stop words or symbols)
            similarity = np.eye(len(ids))
        coords = _classical_mds(np.clip(1.0 - similarity, 0.0, None))
    return {
        topic_id: {"x": float(coords[i, 0]), "y": float(coords[i, 1]),
                   "examples": [str(x) for x in (topics[topic_id].get("texts") or [])[:EXAMPLES_IN_HOVER]]}
        for i, topic_id in enumerate(ids)
    }


def keywords_of(raw: Any) -> list[str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [raw]
    if isinstance(raw, list):
        return [str(k[0] if isinstance(k, (list, tuple)) else k.get("word", "") if isinstance(k, dict) else k)
                for k in raw]
    return []


def _classical_mds(distances: Any) -> Any:
    """Two coordinates whose Euclidean distances approximate ``distances`` (Torgerson scaling)."""
    import numpy as np

    n = distances.shape[0]
    centering = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centering @ (distances ** 2) @ centering
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:2]
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    # eigh's sign is arbitrary: fix it so the same snapshot always gives the same picture.
    for axis in range(coords.shape[1]):
        column = coords[:, axis]
        if column[np.argmax(np.abs(column))] < 0:
            coords[:, axis] = -column
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((n, 2 - coords.shape[1]))])
    return coords
