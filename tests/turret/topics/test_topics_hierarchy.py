"""Parent themes from topic centroids."""

from __future__ import annotations

import numpy as np
from turret.topics.hierarchy import assign_themes, keep_previous_themes, n_themes_for


def _around(directions: np.ndarray, per: int, spread: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = np.vstack([d + spread * rng.standard_normal((per, directions.shape[1])) for d in directions])
    return C / np.linalg.norm(C, axis=1, keepdims=True)


def test_about_four_topics_per_theme():
    assert [n_themes_for(k) for k in (0, 1, 2, 5, 6, 9, 12, 77, 100)] == [1, 1, 1, 1, 2, 2, 3, 19, 25]


def test_topics_near_each_other_share_a_theme_biggest_theme_first():
    C = _around(np.eye(8)[:3], per=3, spread=0.2)  # three orthogonal directions, three topics around each
    sizes = np.array([1, 1, 1, 50, 50, 50, 5, 5, 5])
    themes = assign_themes(C, sizes, n_themes=3)
    assert themes.tolist() == [2, 2, 2, 0, 0, 0, 1, 1, 1]


def test_the_default_count_finds_compact_groups():
    C = _around(np.eye(8)[:3], per=4, spread=0.15, seed=1)  # 12 topics: 3 themes by default
    themes = assign_themes(C, np.ones(12))
    assert len(set(themes.tolist())) == 3
    assert all(len(set(themes[i : i + 4].tolist())) == 1 for i in (0, 4, 8))


def test_topics_set_apart_form_one_theme_of_their_own():
    C = _around(np.eye(8)[:3], per=4, spread=0.15, seed=1)
    apart = np.zeros(12, dtype=bool)
    apart[[0, 5, 9]] = True  # one topic of each group: chit-chat, say
    themes = assign_themes(C, np.ones(12), apart=apart)
    assert len({themes[i] for i in (0, 5, 9)}) == 1
    assert themes[0] not in themes[~apart]
    assert len(set(themes[~apart].tolist())) == n_themes_for(9)  # the count is of the other topics' themes
    assert assign_themes(C[:2], np.ones(2), apart=np.array([True, True])).tolist() == [0, 0]


def test_few_topics_get_one_theme():
    assert assign_themes(np.eye(3)[:2], np.array([3, 4])).tolist() == [0, 0]
    assert assign_themes(np.zeros((0, 3)), np.zeros(0)).tolist() == []


def _two_groups_and_a_topic_between(offset: float) -> np.ndarray:
    """Topics 0-2 around e0, 3-5 around e1, and topic 6 between them, ``offset`` towards e1."""
    e0, e1 = np.eye(6)[0], np.eye(6)[1]
    C = np.vstack([_around(e0[None], 3, 0.1, seed=2), _around(e1[None], 3, 0.1, seed=3),
                   (0.5 - offset) * e0 + (0.5 + offset) * e1])
    return C / np.linalg.norm(C, axis=1, keepdims=True)


def test_a_topic_stays_in_its_old_theme_when_the_new_one_is_barely_closer():
    C = _two_groups_and_a_topic_between(0.05)
    new = np.array([0, 0, 0, 1, 1, 1, 1])  # topic 6 moved to group 1...
    old = np.array([0, 0, 0, 1, 1, 1, 0])  # ...from group 0
    groups, kept = keep_previous_themes(C, new, old, margin=0.2)
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 0] and kept == 1
    # Without hysteresis it follows the new grouping.
    assert keep_previous_themes(C, new, old, margin=0.0)[0].tolist() == new.tolist()


def test_a_topic_clearly_closer_to_its_new_theme_moves():
    C = _two_groups_and_a_topic_between(0.45)  # nearly on e1
    new = np.array([0, 0, 0, 1, 1, 1, 1])
    old = np.array([0, 0, 0, 1, 1, 1, 0])
    groups, kept = keep_previous_themes(C, new, old, margin=0.2)
    assert groups.tolist() == new.tolist() and kept == 0


def test_topics_without_an_old_theme_keep_their_new_group_and_emptied_groups_close_up():
    C = _two_groups_and_a_topic_between(0.0)
    new = np.array([0, 0, 0, 1, 1, 1, 2])  # topic 6 alone in a new group 2, from group 0
    old = np.array([0, 0, 0, -1, -1, -1, 0])
    groups, kept = keep_previous_themes(C, new, old, margin=0.2)
    # A group of one has no other member to pull it: the topic goes back, and group 2 is gone.
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 0] and kept == 1


def test_hysteresis_never_crosses_the_line_between_topics_set_apart_and_the_rest():
    C = _two_groups_and_a_topic_between(0.0)
    apart = np.array([False, False, False, True, True, True, True])  # group 1 is chit-chat now
    new = np.array([0, 0, 0, 1, 1, 1, 1])
    old = np.array([0, 0, 0, 1, 1, 1, 0])  # topic 6 was a subject topic, in group 0
    groups, kept = keep_previous_themes(C, new, old, margin=1.0, apart=apart)
    assert groups.tolist() == new.tolist() and kept == 0
    old = np.array([1, 0, 0, 1, 1, 1, 1])  # topic 0 was in what is now the chit-chat group
    groups, kept = keep_previous_themes(C, new, old, margin=1.0, apart=apart)
    assert groups.tolist() == new.tolist() and kept == 0
    # Within one side, the same margin keeps it back.
    assert keep_previous_themes(C, new, old, margin=1.0)[1] == 1
