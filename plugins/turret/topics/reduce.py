"""Dimension reducers for the topic engine: PCA (default), UMAP (optional) and a do-nothing step.

hdbscan on raw 384-d sentence vectors is far too slow (minutes for 20k points) and density estimates degrade
in high dimensions, so the engine reduces first. PCA is the default because it is deterministic, needs no
numba compilation and fits 200k x 384 in seconds; UMAP separates clusters better but costs minutes and a
numba warm-up, so it is opt-in. Every reducer follows the scikit-learn shape: ``fit_transform(X)``.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


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
        return l2_normalize(Z) if self.normalize else Z


class UMAPReducer:
    """UMAP (cosine) to ``n_components``; imported lazily because numba compiles it on first use."""

    def __init__(self, n_components: int = 5, n_neighbors: int = 15, *, random_state: int = 42):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
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
        )
        return np.asarray(self.umap_.fit_transform(X), dtype=np.float32)


class NoReducer:
    """Skip reduction (small or already-low-dimensional inputs)."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)


def make_reducer(name: str, **kwargs) -> PCAReducer | UMAPReducer | NoReducer:
    """A reducer by name: ``pca`` (default), ``umap`` or ``none``."""
    name = (name or "pca").lower()
    if name == "pca":
        return PCAReducer(**kwargs)
    if name == "umap":
        return UMAPReducer(**kwargs)
    if name == "none":
        return NoReducer()
    raise ValueError(f"unknown reducer {name!r}: use pca, umap or none")
