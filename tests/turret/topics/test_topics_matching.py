"""Stable ids and lineage on constructed topics: continued, new, merged, split, retired."""

from __future__ import annotations

import numpy as np
from turret.topics.matching import CONTINUED, MERGED, NEW, RETIRED, SPLIT, match_topics, score_matrix


def unit(*vectors):
    V = np.asarray(vectors, dtype=np.float32)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def ev(prefix: str, n: int) -> set:
    return {f"{prefix}{i}" for i in range(n)}


def changes(result) -> dict[int, tuple[str, tuple]]:
    return {(row.topic_id, row.change): row.related for row in result.lineage}


def test_first_fit_numbers_topics_from_next_id():
    r = match_topics([], np.zeros((0, 2)), [], unit([1, 0], [0, 1]), [ev("a", 3), ev("b", 3)], next_id=0)
    assert r.new_ids == [0, 1] and r.next_id == 2
    assert [(row.topic_id, row.change) for row in r.lineage] == [(0, NEW), (1, NEW)]


def test_same_topics_in_another_order_keep_their_ids():
    old_c = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    old_m = [ev("a", 10), ev("b", 10), ev("c", 10)]
    r = match_topics([5, 7, 9], old_c, old_m, old_c[[2, 0, 1]], [old_m[2], old_m[0], old_m[1]], next_id=10)
    assert r.new_ids == [9, 5, 7]
    assert {row.change for row in r.lineage} == {CONTINUED}
    assert r.next_id == 10


def test_perturbed_members_still_match():
    old_c = unit([1, 0.0], [0, 1.0])
    new_c = unit([1, 0.1], [0.1, 1])
    old_m = [ev("a", 20), ev("b", 20)]
    new_m = [ev("a", 17) | ev("x", 3), ev("b", 18) | {"a19"}]
    r = match_topics([0, 1], old_c, old_m, new_c, new_m, next_id=2)
    assert r.new_ids == [0, 1]


def test_new_cluster_gets_a_fresh_id_never_a_reused_one():
    old_c = unit([1, 0, 0])
    r = match_topics([3], old_c, [ev("a", 10)], unit([1, 0, 0], [0, 0, 1]), [ev("a", 10), ev("z", 8)],
                     next_id=12)
    assert r.new_ids == [3, 12]  # ids 4..11 were used before (retired), so 12
    assert changes(r)[(12, NEW)] == ()
    assert r.next_id == 13


def test_retired_topic_has_no_successor():
    old_c = unit([1, 0, 0], [0, 1, 0])
    r = match_topics([0, 1], old_c, [ev("a", 10), ev("b", 10)], unit([1, 0, 0]), [ev("a", 10)], next_id=2)
    assert r.new_ids == [0]
    assert r.retired == [1]
    assert (1, RETIRED) in changes(r)


def test_two_topics_merged_into_one():
    old_c = unit([1, 0.2, 0], [1, -0.2, 0])
    old_m = [ev("a", 30), ev("b", 10)]
    r = match_topics([0, 1], old_c, old_m, unit([1, 0, 0]), [old_m[0] | old_m[1]], next_id=2)
    assert r.new_ids == [0]  # the bigger overlap keeps its id
    assert r.merged_into == {1: 0}
    rows = changes(r)
    assert rows[(0, MERGED)] == (1,) and rows[(1, MERGED)] == (0,)
    assert r.retired == []


def test_one_topic_split_in_two_biggest_keeps_the_id():
    old_c = unit([1, 0, 0])
    members = ev("a", 40)
    small, big = set(sorted(members)[:12]), set(sorted(members)[12:])
    # The small piece is listed first and is closer to the old centroid: size decides, not order.
    r = match_topics([4], old_c, [members], unit([1, 0.05, 0], [1, 0.3, 0]), [small, big], next_id=5)
    assert r.new_ids == [5, 4]
    rows = changes(r)
    assert rows[(4, SPLIT)] == (5,) and rows[(5, SPLIT)] == (4,)
    assert r.split_from == {0: 1}
    assert r.next_id == 6


def test_unrelated_topics_are_not_matched_on_a_weak_score():
    old_c = unit([1, 0.0])
    r = match_topics([0], old_c, [ev("a", 10)], unit([0.3, 1.0]), [ev("z", 10)], next_id=1)
    assert r.new_ids == [1]
    assert r.retired == [0]


def test_score_combines_cosine_and_jaccard():
    score, overlap = score_matrix(unit([1, 0]), [ev("a", 4)], unit([1, 0]), [ev("a", 2) | ev("b", 2)])
    assert overlap[0, 0] == 2
    assert np.isclose(score[0, 0], 0.5 * 1.0 + 0.5 * (2 / 6))
