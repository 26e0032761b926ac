"""Parent themes: groups of about ``TOPICS_PER_THEME`` topics, from Ward linkage of the topic centroids, with
ids that stay put from one run to the next (``match_theme_ids``)."""

from __future__ import annotations

import numpy as np

from turret.topic_defaults import THEME_HYSTERESIS, TOPICS_PER_THEME
from turret.vectors import unit_rows


def n_themes_for(k: int, topics_per_theme: int = TOPICS_PER_THEME) -> int:
    """round(k / topics_per_theme) themes, at least 1: 1 for up to 5 topics (at 4 per theme), 19 for 77."""
    return max(1, int(round(k / topics_per_theme)))


def assign_themes(
    centroids: np.ndarray, sizes: np.ndarray, n_themes: int | None = None, *, apart: np.ndarray | None = None
) -> np.ndarray:
    """Theme index (0..m-1, biggest theme first by member count) of each topic centroid.

    Ward linkage of the unit centroids merges the two groups whose union adds the least spread, so a theme is
    a compact group of topics, not a chain of neighbours, and big groups do not swallow small ones.
    ``apart``: topics kept out of that grouping (chit-chat), which form one theme of their own; the count
    (``n_themes`` or ``n_themes_for``) is of the other topics' themes.
    """
    k = centroids.shape[0]
    apart = np.zeros(k, dtype=bool) if apart is None else np.asarray(apart, dtype=bool)
    rest = np.flatnonzero(~apart)
    raw = np.zeros(k, dtype=np.int64)
    m = min(len(rest), n_themes or n_themes_for(len(rest)))
    if m > 1:
        from scipy.cluster.hierarchy import fcluster, linkage

        unit = unit_rows(centroids, np.float64)[rest]
        groups = fcluster(linkage(unit, method="ward"), m, criterion="maxclust") - 1
        _, raw[rest] = np.unique(groups, return_inverse=True)
    if apart.any():
        raw[apart] = raw[rest].max() + 1 if len(rest) else 0
    if k == 0:
        return raw
    m = int(raw.max()) + 1
    totals = np.bincount(raw, weights=np.asarray(sizes, dtype=np.float64), minlength=m)
    first = np.array([np.argmax(raw == t) for t in range(m)])
    order = np.lexsort((first, -totals))
    remap = np.empty(m, dtype=np.int64)
    remap[order] = np.arange(m)
    return remap[raw]


def keep_previous_themes(
    centroids: np.ndarray,
    groups: np.ndarray,
    previous: np.ndarray,
    margin: float = THEME_HYSTERESIS,
    *,
    apart: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Hysteresis: a topic that was in (the group matched to) its old theme and now lands in another group
    goes back, unless the new group's centre is closer to it by more than ``margin`` (cosine). Returns the
    groups (renumbered 0..m-1, in order, when a group empties) and how many topics were kept back.

    ``groups``: the new group of each topic; ``previous``: the group index of each topic's old theme after
    ``match_theme_ids``, -1 for a topic that had none or whose theme matched no group. ``apart``: the topics
    ``assign_themes`` set apart; a topic never goes back across that line (into or out of their group).
    """
    groups = np.asarray(groups, dtype=np.int64).copy()
    previous = np.asarray(previous, dtype=np.int64)
    apart = np.zeros(len(groups), dtype=bool) if apart is None else np.asarray(apart, dtype=bool)
    apart_group = np.zeros(int(max(groups.max(initial=-1), previous.max(initial=-1))) + 1, dtype=bool)
    apart_group[groups[apart]] = True
    moved = np.flatnonzero((previous >= 0) & (previous != groups) & (apart_group[previous] == apart))
    if not len(moved):
        return groups, 0
    C = unit_rows(centroids, np.float64)
    sums = np.zeros((int(groups.max()) + 1, C.shape[1]))
    np.add.at(sums, groups, C)

    def closeness(rows: np.ndarray, to: np.ndarray) -> np.ndarray:
        # Cosine to the centre of the group's other members: a small group's centre leans towards each member.
        centre = sums[to] - np.where((groups[rows] == to)[:, None], C[rows], 0.0)
        norms = np.linalg.norm(centre, axis=1)
        cosine = np.einsum("ij,ij->i", C[rows], centre) / np.maximum(norms, 1e-12)
        return np.where(norms > 1e-12, cosine, -1.0)  # a group of this topic alone: no pull

    back = closeness(moved, previous[moved]) >= closeness(moved, groups[moved]) - margin
    groups[moved[back]] = previous[moved[back]]
    _, groups = np.unique(groups, return_inverse=True)
    return groups.astype(np.int64), int(back.sum())


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
