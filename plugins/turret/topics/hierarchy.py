"""Parent themes: a few groups of topics, from agglomerative clustering of the topic centroids, with ids
that stay put from one run to the next (``match_theme_ids``)."""

from __future__ import annotations

import math

import numpy as np


def n_themes_for(k: int) -> int:
    """About sqrt(k) themes: 1 for up to 2 topics, 3 for 9, 10 for 100."""
    return 1 if k <= 2 else max(1, int(round(math.sqrt(k))))


def assign_themes(centroids: np.ndarray, sizes: np.ndarray, n_themes: int | None = None) -> np.ndarray:
    """Theme index (0..m-1, biggest theme first by member count) of each topic centroid.

    Average linkage on cosine distance: themes group topics whose centroids are close as a whole, without
    single-link chaining every banking intent into one theme.
    """
    k = centroids.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    m = min(k, n_themes or n_themes_for(k))
    if m <= 1:
        return np.zeros(k, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=m, metric="cosine", linkage="average").fit_predict(centroids)
    totals = np.bincount(raw, weights=np.asarray(sizes, dtype=np.float64), minlength=m)
    first = np.array([np.argmax(raw == t) for t in range(m)])
    order = np.lexsort((first, -totals))
    remap = np.empty(m, dtype=np.int64)
    remap[order] = np.arange(m)
    return remap[raw]


def match_theme_ids(
    previous: dict[int, int], groups: np.ndarray, topic_ids: list[int], next_id: int
) -> tuple[list[int], int]:
    """A stable id for each new theme group: the old theme whose member topics it shares most (Jaccard of
    topic-id sets, one-to-one by the Hungarian method), else a fresh id from ``next_id``.

    ``previous``: topic id -> its theme id before this run; ``groups``: the new group index of each topic
    in ``topic_ids`` order. Returns (theme id per group index, the next fresh id). Ids are never reused.
    """
    m = int(groups.max()) + 1 if len(groups) else 0
    new_sets = [{t for t, g in zip(topic_ids, groups.tolist(), strict=True) if g == j} for j in range(m)]
    old_ids = sorted(set(previous.values()))
    old_sets = [{t for t, th in previous.items() if th == o} for o in old_ids]
    ids = [-1] * m
    if old_ids and m:
        from scipy.optimize import linear_sum_assignment

        J = np.array([[len(a & b) / len(a | b) if a | b else 0.0 for b in new_sets] for a in old_sets])
        rows, cols = linear_sum_assignment(-J)
        for r, c in zip(rows, cols, strict=True):
            if J[r, c] > 0:
                ids[c] = old_ids[r]
    next_id = max([next_id, *(o + 1 for o in old_ids)])
    for j in range(m):
        if ids[j] < 0:
            ids[j] = next_id
            next_id += 1
    return ids, next_id
