"""Parent themes: a few groups of topics, from agglomerative clustering of the topic centroids."""

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
