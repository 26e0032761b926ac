"""Stable topic ids across re-fits: match new clusters to existing topics and describe what changed.

Score of (old topic i, new cluster j) = ``weight * max(cos(centroid_i, centroid_j), 0) + (1 - weight) *
jaccard(members_i, members_j)`` over event ids. The Hungarian method picks the best one-to-one pairing;
pairs scoring below ``min_score`` are not matches. Then, using member overlap:

- split: an old topic whose members make up most of several new clusters; the biggest keeps the id, the
  others get fresh ids. Lineage: the old id ``split`` (related = the new ids), each new id ``split``
  (related = [old id]).
- merged: an old topic left without a successor whose members mostly went to a cluster that another old
  topic continues as. Lineage: the absorbed id ``merged`` (related = [surviving id]) and the surviving id
  ``merged`` (related = the absorbed ids).
- new: a new cluster that continues no old topic: fresh id = highest id ever + 1 (ids are never reused).
- retired: an old topic with no successor at all.
- continued: everything else that kept its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MATCH_WEIGHT = 0.5  # share of centroid cosine in the score; the rest is member Jaccard
MIN_MATCH_SCORE = 0.5  # below this a Hungarian pair is two different topics
MIN_SHARE = 0.5  # a new cluster descends from an old topic when at least this share of its members did

CONTINUED, NEW, MERGED, SPLIT, RETIRED = "continued", "new", "merged", "split", "retired"


@dataclass(frozen=True)
class LineageChange:
    topic_id: int
    change: str
    related: tuple[int, ...] = ()


@dataclass
class MatchResult:
    new_ids: list[int]  # the topic id given to each new cluster, in input order
    lineage: list[LineageChange] = field(default_factory=list)
    next_id: int = 0  # the next fresh id after this match
    merged_into: dict[int, int] = field(default_factory=dict)  # absorbed old id -> surviving id
    retired: list[int] = field(default_factory=list)
    split_from: dict[int, int] = field(default_factory=dict)  # split-off cluster index -> keeper's index


def score_matrix(
    old_centroids: np.ndarray,
    old_members: Sequence[set],
    new_centroids: np.ndarray,
    new_members: Sequence[set],
    weight: float = MATCH_WEIGHT,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, overlap) matrices, old x new; overlap counts shared member ids."""
    cos = np.clip(np.asarray(old_centroids) @ np.asarray(new_centroids).T, 0.0, 1.0)
    overlap = np.zeros(cos.shape, dtype=np.int64)
    owner = {}
    for j, members in enumerate(new_members):
        for e in members:
            owner[e] = j
    for i, members in enumerate(old_members):
        for e in members:
            j = owner.get(e)
            if j is not None:
                overlap[i, j] += 1
    old_n = np.array([len(m) for m in old_members], dtype=np.float64)[:, None]
    new_n = np.array([len(m) for m in new_members], dtype=np.float64)[None, :]
    union = old_n + new_n - overlap
    jaccard = np.divide(overlap, union, out=np.zeros(cos.shape), where=union > 0)
    return weight * cos + (1 - weight) * jaccard, overlap


def match_topics(
    old_ids: Sequence[int],
    old_centroids: np.ndarray,
    old_members: Sequence[set],
    new_centroids: np.ndarray,
    new_members: Sequence[set],
    *,
    next_id: int,
    weight: float = MATCH_WEIGHT,
    min_score: float = MIN_MATCH_SCORE,
    min_share: float = MIN_SHARE,
) -> MatchResult:
    """Give each new cluster a topic id and list the lineage changes (see module docstring).

    ``next_id`` is the smallest id never used in this dimension; fresh ids count up from it in the order
    of the new clusters, so the result is deterministic.
    """
    from scipy.optimize import linear_sum_assignment

    n_old, n_new = len(old_ids), len(new_members)
    new_sizes = np.array([len(m) for m in new_members])
    result = MatchResult(new_ids=[-1] * n_new, next_id=next_id)
    if n_old == 0:
        for j in range(n_new):
            result.new_ids[j] = result.next_id
            result.lineage.append(LineageChange(result.next_id, NEW))
            result.next_id += 1
        return result
    if n_new == 0:
        result.retired = list(old_ids)
        result.lineage = [LineageChange(int(t), RETIRED) for t in old_ids]
        return result

    score, overlap = score_matrix(old_centroids, old_members, new_centroids, new_members, weight)
    rows, cols = linear_sum_assignment(score, maximize=True)
    match_of_old: dict[int, int] = {}
    for i, j in zip(rows, cols, strict=True):
        if score[i, j] >= min_score:
            match_of_old[int(i)] = int(j)
    matched_new = set(match_of_old.values())

    # Which old topic each new cluster descends from, by the share of its members it held before.
    known = set().union(*old_members) if old_members else set()
    parent: dict[int, int] = {}
    for j in range(n_new):
        seen = len(new_members[j] & known) if known else 0
        if seen and overlap[:, j].max() >= min_share * seen:
            parent[j] = int(overlap[:, j].argmax())

    successors: dict[int, list[int]] = {}
    for i, j in match_of_old.items():
        successors.setdefault(i, []).append(j)
    for j, i in parent.items():
        if j not in matched_new:
            successors.setdefault(i, []).append(j)

    split_rows: list[LineageChange] = []
    for i in sorted(successors):
        group = successors[i]
        # The biggest successor keeps the id (ties: the earlier cluster).
        keeper = min(group, key=lambda j: (-new_sizes[j], j))
        result.new_ids[keeper] = int(old_ids[i])
        others = sorted(j for j in group if j != keeper)
        for j in others:
            result.new_ids[j] = result.next_id
            result.next_id += 1
            result.split_from[j] = keeper
        if others:
            split_rows.append(LineageChange(int(old_ids[i]), SPLIT, tuple(result.new_ids[j] for j in others)))
            split_rows.extend(LineageChange(result.new_ids[j], SPLIT, (int(old_ids[i]),)) for j in others)

    for j in range(n_new):
        if result.new_ids[j] == -1:
            result.new_ids[j] = result.next_id
            result.lineage.append(LineageChange(result.next_id, NEW))
            result.next_id += 1

    # Old topics without a successor: merged into the cluster that took most of their members, or retired.
    absorbed: dict[int, list[int]] = {}
    for i in range(n_old):
        if i in successors:
            continue
        j = int(overlap[i].argmax())
        if len(old_members[i]) and overlap[i, j] >= min_share * len(old_members[i]):
            survivor = result.new_ids[j]
            result.merged_into[int(old_ids[i])] = survivor
            absorbed.setdefault(survivor, []).append(int(old_ids[i]))
        else:
            result.retired.append(int(old_ids[i]))

    split_ids = {row.topic_id for row in split_rows}
    for survivor, gone in sorted(absorbed.items()):
        result.lineage.append(LineageChange(survivor, MERGED, tuple(sorted(gone))))
        result.lineage.extend(LineageChange(g, MERGED, (survivor,)) for g in sorted(gone))
    result.lineage.extend(split_rows)
    result.lineage.extend(LineageChange(t, RETIRED) for t in result.retired)
    recorded = {row.topic_id for row in result.lineage} | split_ids
    for i in sorted(successors):
        tid = int(old_ids[i])
        if tid not in recorded:
            result.lineage.append(LineageChange(tid, CONTINUED))
    result.lineage.sort(key=lambda row: (row.topic_id, row.change))
    return result
