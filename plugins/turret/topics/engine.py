"""The in-memory topic engine: reduce -> cluster -> reassign outliers -> centroids, scikit-learn style.

``TopicModel(...)`` only stores parameters; ``fit(X)`` learns ``labels_`` (cluster index per row, -1 for
unclustered), ``centroids_`` (unit vectors in the *embedding* space, so later texts can be assigned without
the reducer), ``similarities_`` and ``assigned_by_``. Every step is a constructor argument, BERTopic-like:
``reducer`` (anything with ``fit_transform``), ``clusterer`` (anything with ``fit_predict``; hdbscan with
size-scaled parameters when None). Persistence, stable ids and lineage live in ``turret.topics.store`` and
``turret.topics.matching``; this module knows nothing about DuckDB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from turret.topic_defaults import (  # noqa: F401  (re-exported: the engine's public defaults)
    ASSIGN_THRESHOLD,
    CLUSTER_SELECTION,
    FIT_SAMPLE,
    MIN_CLUSTER_SIZE_EXPONENT,
    MIN_CLUSTER_SIZE_FLOOR,
    MIN_CLUSTER_SIZE_SCALE,
    MIN_FIT_SIZE,
    MIN_SAMPLES,
    OUTLIER_THRESHOLD,
    REFINE_ITERATIONS,
    SUBJECT_SIZE_FRACTION,
    SUBJECT_SIZE_MAX_RANK,
    SUBJECT_SIZE_MAX_SHARPNESS,
    SUBJECT_SIZE_PROBES,
    SUBJECT_SIZE_PROMINENCE,
)
from turret.topics.reduce import UMAPReducer
from turret.vectors import unit_rows

# Fewer points than this are not clustered at all (everything waits as unclustered). A dimension's first fit
# waits for MIN_FIT_SIZE texts (turret.topics.store); this is the model's own floor (a small pending pool).
MIN_CLUSTER_INPUT = 10

ASSIGNED_CLUSTER = "cluster"
ASSIGNED_OUTLIER = "outlier_reassigned"
ASSIGNED_NEAREST = "nearest_centroid"
ASSIGNED_PENDING = "pending"
ASSIGNED_KEPT = "kept"


def default_min_cluster_size(n: int) -> int:
    """max(FLOOR, SCALE * n' ** EXPONENT) where n' is n rounded down to a power of two (topic_defaults).

    Sub-linear in n, so topics get finer as data grows without a large history shattering into
    micro-topics. The rounding keeps the granularity fixed while a dimension grows, so a refit after an
    hour of new data finds the same topics rather than coarser ones (stable ids).
    """
    if n < 1:
        return MIN_CLUSTER_SIZE_FLOOR
    bucket = 1 << (int(n).bit_length() - 1)
    return max(MIN_CLUSTER_SIZE_FLOOR,
               int(round(MIN_CLUSTER_SIZE_SCALE * bucket ** MIN_CLUSTER_SIZE_EXPONENT)))


def subject_size(
    X: np.ndarray,
    *,
    probes: int = SUBJECT_SIZE_PROBES,
    max_rank: int = SUBJECT_SIZE_MAX_RANK,
    prominence: float = SUBJECT_SIZE_PROMINENCE,
    max_sharpness: float = SUBJECT_SIZE_MAX_SHARPNESS,
    random_state: int = 0,
) -> float | None:
    """How many texts one subject typically holds, read from the texts alone; None when they show no scale.

    For a seeded sample of ``probes`` rows, the cosine to the 1st, 2nd, ... k-th nearest other row, averaged:
    it falls slowly among a subject's own texts, fastest where they run out and the next subject's texts
    begin, then slowly again. The rank where it falls fastest per half-octave of rank (between rank 4 and
    n/8, at most ``max_rank``) is the subject size, provided it falls there at least ``prominence`` times as
    fast as at the largest ranks read. Texts of one domain of closely related intents fall ever faster
    with rank, without an edge: None. So does a cliff, a fall over ``max_sharpness`` times the median fall:
    groups of near-identical texts (a template with its slots filled), not subjects. Rows are unit vectors.
    """
    n = X.shape[0]
    cap = min(max_rank, n // 8)
    if cap < 16:
        return None
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(probes, n), replace=False))
    X = np.asarray(X, dtype=np.float32)
    total = np.zeros(cap, dtype=np.float64)
    for start in range(0, rows.size, 256):
        chunk = rows[start : start + 256]
        S = X[chunk] @ X.T
        S[np.arange(chunk.size), chunk] = -np.inf  # not its own neighbour
        top = -np.partition(-S, cap - 1, axis=1)[:, :cap]
        total += -np.sort(-top, axis=1).sum(axis=0)
    profile = total / rows.size  # mean cosine to the k-th nearest neighbour, k = 1..cap
    ranks = 2.0 ** np.arange(0.0, np.log2(cap) + 1e-9, 0.5)
    values = np.interp(np.log(ranks), np.log(np.arange(1, cap + 1)), profile)
    fall = -np.diff(values)  # per half-octave
    middle = np.sqrt(ranks[1:] * ranks[:-1])
    usable = np.flatnonzero(middle >= 4)
    if usable.size < 4:
        return None
    edge = usable[np.argmax(fall[usable])]
    tail = fall[-2:].max()
    if edge >= fall.size - 2 or fall[edge] < prominence * tail:
        return None
    if fall[edge] > max_sharpness * float(np.median(fall[usable])):
        return None
    return float(middle[edge])


def min_cluster_size_for(n: int, subject: float | None, *, fraction: float = SUBJECT_SIZE_FRACTION) -> int:
    """The rule of n (``default_min_cluster_size``), or ``fraction`` of the subject size where the texts show
    smaller subjects than the rule expects (never larger than the rule)."""
    rule = default_min_cluster_size(n)
    if subject is None:
        return rule
    return min(rule, max(MIN_CLUSTER_SIZE_FLOOR, int(round(fraction * subject))))


def auto_min_cluster_size(X: np.ndarray, *, random_state: int = 0) -> tuple[int, float | None]:
    """The engine's automatic ``min_cluster_size`` for unit rows ``X``, and the subject size it read."""
    subject = subject_size(X, random_state=random_state)
    return min_cluster_size_for(X.shape[0], subject), subject


def nearest_centroid(
    X: np.ndarray, centroids: np.ndarray, *, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid (cosine) and that similarity, for unit rows; -1/-1.0 with no centroids.

    Works in chunks so memory stays bounded by ``chunk x k`` whatever the number of rows.
    """
    n = X.shape[0]
    idx = np.full(n, -1, dtype=np.int64)
    sim = np.full(n, -1.0, dtype=np.float32)
    if n == 0 or centroids.shape[0] == 0:
        return idx, sim
    C = np.asarray(centroids, dtype=np.float32)
    for start in range(0, n, chunk):
        S = X[start : start + chunk] @ C.T
        best = S.argmax(axis=1)
        idx[start : start + chunk] = best
        sim[start : start + chunk] = S[np.arange(S.shape[0]), best]
    return idx, sim


def compute_centroids(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Unit mean vector of each cluster 0..k-1 (rows of X assumed unit length)."""
    C = np.zeros((k, X.shape[1]), dtype=np.float64)
    mask = labels >= 0
    np.add.at(C, labels[mask], X[mask])
    return unit_rows(C)


def compact_labels(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters 0..k'-1 dropping empty ones, order kept; returns (labels, kept old indices)."""
    keep = np.flatnonzero(np.bincount(labels[labels >= 0], minlength=k) > 0)
    remap = np.full(max(k, 1), -1, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    return np.where(labels >= 0, remap[np.maximum(labels, 0)], -1), keep


def fold_clusters(
    X: np.ndarray, labels: np.ndarray, pairs: dict[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge cluster ``child`` into ``parent`` for each pair, renumber 0..k'-1 keeping the order of the
    remaining clusters; returns (labels, centroids, similarity of each row to its centroid)."""
    labels = labels.copy()
    for child, parent in pairs.items():
        labels[labels == child] = parent
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    labels, keep = compact_labels(labels, k)
    centroids = compute_centroids(X, labels, keep.size)
    sims = np.full(labels.shape[0], -1.0, dtype=np.float32)
    live = labels >= 0
    sims[live] = np.einsum("ij,ij->i", X[live], centroids[labels[live]])
    if (~live).any() and keep.size:
        sims[~live] = nearest_centroid(X[~live], centroids)[1]
    return labels, centroids, sims


class TopicModel:
    """Cluster unit-length embeddings into topics, with few outliers.

    Parameters are stored untouched (scikit-learn rule); ``None`` means "derive from the data at fit time".
    """

    def __init__(
        self,
        *,
        reducer: Any = None,
        clusterer: Any = None,
        min_cluster_size: int | None = None,
        min_samples: int | None = MIN_SAMPLES,
        cluster_selection_method: str = CLUSTER_SELECTION,
        outlier_threshold: float | None = OUTLIER_THRESHOLD,
        refine_iterations: int = REFINE_ITERATIONS,
        min_fit_size: int = MIN_CLUSTER_INPUT,
        fit_sample: int | None = FIT_SAMPLE,
        random_state: int = 0,
    ):
        self.reducer = reducer
        self.clusterer = clusterer
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.outlier_threshold = outlier_threshold
        self.refine_iterations = refine_iterations
        self.min_fit_size = min_fit_size
        self.fit_sample = fit_sample
        self.random_state = random_state

    # -- the algorithm, one named step each -------------------------------------------------------------

    def fit(self, X: np.ndarray) -> TopicModel:
        """Learn topics from ``X`` (n x d embeddings). Returns self."""
        X = unit_rows(X)
        n = X.shape[0]
        self.n_fit_ = n
        # The rows the reducer and the clusterer see: all of them, or a seeded sample of fit_sample.
        self.sample_ = self._sample(n)
        rows = self.sample_ if self.sample_ is not None else np.arange(n)
        fit_rows = X if self.sample_ is None else X[rows]
        # Where the size came from: "given", the "rule" of n, or the "subjects" the texts show.
        if self.min_cluster_size:
            self.min_cluster_size_, self.subject_size_ = self.min_cluster_size, None
            self.size_source_ = "given"
        else:
            self.min_cluster_size_, self.subject_size_ = auto_min_cluster_size(
                fit_rows, random_state=self.random_state
            )
            rule = default_min_cluster_size(fit_rows.shape[0])
            self.size_source_ = "subjects" if self.min_cluster_size_ < rule else "rule"
        labels = np.full(n, -1, dtype=np.int64)
        if rows.size >= max(self.min_fit_size, 2 * self.min_cluster_size_):
            labels[rows] = self._cluster(self._reduce(fit_rows))
        # (Otherwise too little data to find structure: everything waits as unclustered.)
        labels = self._order_by_size(labels)
        k = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
        self.centroids_ = compute_centroids(X, labels, k)
        self.labels_, self.similarities_, self.assigned_by_ = self._reduce_outliers(X, labels)
        if self.sample_ is not None:
            # Rows outside the sample were never clustered: they joined their nearest topic.
            unseen = np.ones(n, dtype=bool)
            unseen[self.sample_] = False
            self.assigned_by_[unseen & (self.assigned_by_ == ASSIGNED_OUTLIER)] = ASSIGNED_NEAREST
        self._refine(X)
        self.sizes_ = np.bincount(self.labels_[self.labels_ >= 0], minlength=k)
        if k and (self.sizes_ == 0).any():
            # Refinement emptied a topic: drop it and renumber so topics stay 0..k-1 without gaps.
            self.labels_, keep = compact_labels(self.labels_, k)
            self.centroids_, self.sizes_ = self.centroids_[keep], self.sizes_[keep]
        if self.sizes_.size:
            # Refinement moves texts: number the final topics biggest first again (ties keep their order).
            order = np.argsort(-self.sizes_, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            self.labels_ = np.where(self.labels_ >= 0, rank[np.maximum(self.labels_, 0)], -1)
            self.centroids_, self.sizes_ = self.centroids_[order], self.sizes_[order]
        self.n_topics_ = int(self.centroids_.shape[0])
        return self

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).labels_

    def assign(self, X: np.ndarray, threshold: float = ASSIGN_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
        """Nearest learned topic for new texts; -1 where cosine < ``threshold``."""
        idx, sim = nearest_centroid(unit_rows(X), self.centroids_)
        idx[sim < threshold] = -1
        return idx, sim

    @property
    def unclustered_share_(self) -> float:
        return float((self.labels_ < 0).mean()) if len(self.labels_) else 0.0

    # -- steps ------------------------------------------------------------------------------------------

    def _sample(self, n: int) -> np.ndarray | None:
        """Sorted row indices of a seeded random sample of ``fit_sample`` rows; None when all are used."""
        if not self.fit_sample or n <= self.fit_sample:
            return None
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(n, size=int(self.fit_sample), replace=False))

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        reducer = self.reducer if self.reducer is not None else UMAPReducer()
        self.reducer_ = reducer
        return reducer.fit_transform(X)

    def _cluster(self, Z: np.ndarray) -> np.ndarray:
        clusterer = self.clusterer
        if clusterer is None:
            import hdbscan

            clusterer = hdbscan.HDBSCAN(
                min_cluster_size=self.min_cluster_size_,
                min_samples=min(self.min_samples or self.min_cluster_size_, self.min_cluster_size_),
                cluster_selection_method=self.cluster_selection_method,
                core_dist_n_jobs=1,
            )
        self.clusterer_ = clusterer
        return np.asarray(clusterer.fit_predict(Z), dtype=np.int64)

    @staticmethod
    def _order_by_size(labels: np.ndarray) -> np.ndarray:
        """Renumber clusters biggest first (ties by first appearance) so output does not depend on the
        clusterer's internal numbering."""
        out = np.full_like(labels, -1)
        ids = np.unique(labels[labels >= 0])
        if ids.size == 0:
            return out
        sizes = np.array([(labels == i).sum() for i in ids])
        first = np.array([np.argmax(labels == i) for i in ids])
        order = np.lexsort((first, -sizes))
        for new, pos in enumerate(order):
            out[labels == ids[pos]] = new
        return out

    def _refine(self, X: np.ndarray) -> None:
        """Spherical k-means passes: recompute centroids from the current members, move every text to its
        nearest centroid (or to unclustered below the threshold). A topic that loses all members keeps its
        previous centroid so ids stay aligned with ``centroids_`` rows."""
        threshold = -1.0 if self.outlier_threshold is None else self.outlier_threshold
        k = self.centroids_.shape[0]
        for _ in range(self.refine_iterations if k else 0):
            fresh = compute_centroids(X, self.labels_, k)
            empty = ~fresh.any(axis=1)
            fresh[empty] = self.centroids_[empty]
            self.centroids_ = fresh
            idx, sim = nearest_centroid(X, self.centroids_)
            moved = idx != self.labels_
            idx[sim < threshold] = -1
            self.assigned_by_[moved & (idx >= 0) & (self.assigned_by_ == ASSIGNED_CLUSTER)] = ASSIGNED_NEAREST
            self.assigned_by_[(idx >= 0) & (self.assigned_by_ == ASSIGNED_PENDING)] = ASSIGNED_OUTLIER
            self.assigned_by_[idx < 0] = ASSIGNED_PENDING
            self.labels_, self.similarities_ = idx, sim

    def _reduce_outliers(
        self, X: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise points join the nearest centroid when close enough; cluster members keep their cluster."""
        n = X.shape[0]
        assigned_by = np.full(n, ASSIGNED_CLUSTER, dtype=object)
        sims = np.full(n, -1.0, dtype=np.float32)
        members = labels >= 0
        if self.centroids_.shape[0]:
            sims[members] = np.einsum("ij,ij->i", X[members], self.centroids_[labels[members]])
        noise = ~members
        labels = labels.copy()
        if noise.any():
            idx, sim = nearest_centroid(X[noise], self.centroids_)
            sims[noise] = sim
            threshold = self.outlier_threshold
            take = idx >= 0 if threshold is None else (idx >= 0) & (sim >= threshold)
            noise_rows = np.flatnonzero(noise)
            labels[noise_rows[take]] = idx[take]
            assigned_by[noise_rows[take]] = ASSIGNED_OUTLIER
            assigned_by[noise_rows[~take]] = ASSIGNED_PENDING
        return labels, sims, assigned_by
