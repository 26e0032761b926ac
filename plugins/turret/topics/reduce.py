"""Dimension reducers for the topic engine: UMAP (default), PCA and a do-nothing step.

hdbscan on raw 384-d sentence vectors is far too slow (minutes for 20k points) and density estimates degrade
in high dimensions, so the engine reduces first. UMAP (cosine, 5 dimensions) is the default: on the dev
suite it separated intents far better than PCA (docs/topics_engine.md). It is seeded, so a fit is
repeatable; numba compiles it once per environment (``make install`` warms it, ``warm_up``). Below
``UMAP_MIN_TEXTS`` texts the neighbour graph is too thin and PCA stands in. PCA stays available as the fast
option (seconds for 200k x 384). Every reducer follows the scikit-learn shape: ``fit_transform(X)``.
"""

from __future__ import annotations

import numpy as np

from turret.topic_defaults import REDUCER_COMPONENTS, REDUCER_NEIGHBORS, UMAP_MIN_TEXTS
from turret.vectors import unit_rows


class PCAReducer:
    """PCA to ``n_components`` then L2-normalise, so euclidean distances downstream track cosine ones."""

    def __init__(self, n_components: int = 10, *, normalize: bool = True, random_state: int = 42):
        self.n_components = n_components
        self.normalize = normalize
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        X = np.asarray(X, dtype=np.float32)
        k = max(1, min(self.n_components, X.shape[0] - 1, X.shape[1]))
        # Full SVD for small inputs keeps results bit-for-bit deterministic; randomized is seeded anyway.
        solver = "full" if X.shape[0] <= 5000 else "randomized"
        self.pca_ = PCA(n_components=k, svd_solver=solver, random_state=self.random_state)
        Z = self.pca_.fit_transform(X).astype(np.float32)
        return unit_rows(Z) if self.normalize else Z


class UMAPReducer:
    """UMAP (cosine) to ``n_components``; imported lazily because numba compiles it on first use.

    Fewer than ``min_texts`` rows are reduced by PCA to the same dimensions instead (``fallback_``)."""

    def __init__(self, n_components: int = REDUCER_COMPONENTS, n_neighbors: int = REDUCER_NEIGHBORS, *,
                 random_state: int = 42, min_texts: int = UMAP_MIN_TEXTS):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.min_texts = min_texts

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        # Copies of one vector (a text many users send, "thanks", or texts differing only in case) tie in
        # UMAP's neighbour search, whose order then varies from process to process, and so would the fit:
        # the distinct rows are reduced, in order of first appearance, and each copy takes its row's point.
        _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(first)
        distinct = X[first[order]] if first.size < X.shape[0] else X
        self.fallback_ = distinct.shape[0] < max(self.min_texts, self.n_neighbors + 2)
        if self.fallback_:
            return PCAReducer(self.n_components).fit_transform(X)
        Z = self._umap(distinct)
        if distinct is X:
            return Z
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        return Z[position[inverse]]

    def _umap(self, X: np.ndarray) -> np.ndarray:
        try:
            import umap
        except ImportError as exc:  # pragma: no cover - umap-learn is a core dependency
            raise RuntimeError("UMAPReducer needs umap-learn: pip install umap-learn") from exc
        self.umap_ = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=min(self.n_neighbors, max(2, X.shape[0] - 1)),
            min_dist=0.0,
            metric="cosine",
            random_state=self.random_state,
            n_jobs=1,  # a seeded UMAP runs on one thread anyway; saying so silences its warning
        )
        return np.asarray(self.umap_.fit_transform(X), dtype=np.float32)


def warm_up() -> None:
    """Compile UMAP's numba code once (cached in the environment), so the first pipeline run does not pay it.

    5,000 points, so that the approximate nearest-neighbour search UMAP uses from 4,096 points on
    (pynndescent) is compiled too, not only the exact one."""
    rng = np.random.default_rng(0)
    UMAPReducer().fit_transform(rng.normal(size=(5000, 16)).astype(np.float32))


class NoReducer:
    """Skip reduction (small or already-low-dimensional inputs)."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)


def make_reducer(name: str, **kwargs) -> PCAReducer | UMAPReducer | NoReducer:
    """A reducer by name: ``umap`` (default), ``pca`` or ``none``."""
    name = (name or "umap").lower()
    if name == "pca":
        return PCAReducer(**kwargs)
    if name == "umap":
        return UMAPReducer(**kwargs)
    if name == "none":
        return NoReducer()
    raise ValueError(f"unknown reducer {name!r}: use pca, umap or none")
