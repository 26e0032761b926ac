"""Unit vectors: the one normalisation that embeddings, centroids and label phrases share, so a cosine is a
dot product everywhere."""

from __future__ import annotations

import numpy as np


def unit_rows(X: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Each row of ``X`` (a single vector becomes one row) scaled to length 1, as ``dtype``; rows of zeros
    stay zeros."""
    X = np.atleast_2d(np.asarray(X, dtype=dtype))
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms
