"""Parent themes from topic centroids."""

from __future__ import annotations

import numpy as np
from turret.topics.hierarchy import assign_themes, n_themes_for


def test_about_sqrt_k_themes():
    assert [n_themes_for(k) for k in (0, 1, 2, 3, 9, 10, 100)] == [1, 1, 1, 2, 3, 3, 10]


def test_topics_near_each_other_share_a_theme_biggest_theme_first():
    rng = np.random.default_rng(0)
    groups = np.eye(8)[:3]  # three orthogonal directions, three topics around each
    C = np.vstack([g + 0.2 * rng.standard_normal((3, 8)) for g in groups])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    sizes = np.array([1, 1, 1, 50, 50, 50, 5, 5, 5])
    themes = assign_themes(C, sizes)
    assert themes.tolist() == [2, 2, 2, 0, 0, 0, 1, 1, 1]


def test_few_topics_get_one_theme():
    assert assign_themes(np.eye(3)[:2], np.array([3, 4])).tolist() == [0, 0]
    assert assign_themes(np.zeros((0, 3)), np.zeros(0)).tolist() == []
