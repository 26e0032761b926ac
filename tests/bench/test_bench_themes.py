"""Pure helpers of bench/themes.py (no data, no model)."""

from __future__ import annotations

import numpy as np

from bench.themes import name_match

AXES = {"alarm": [1, 0, 0], "weather": [0, 1, 0], "music": [0, 0, 1], "Alarms": [1, 0.1, 0],
        "Rain tomorrow": [0.2, 1, 0], "Set alarm": [0.9, 0, 0.5], "Songs": [0.6, 0, 0.5]}


def _encode(texts):
    return np.asarray([AXES[t] for t in texts], dtype=float)


def test_name_match_weighs_each_theme_by_its_texts_and_scores_its_majority_parent():
    theme_of_text = np.array([0, 0, 0, 1, 1, 2, -1])
    parent = np.array(["alarm", "alarm", "weather", "weather", "weather", "music", "music"])
    # Theme 0 (majority alarm) and 1 (weather) are named for their parent; theme 2's name is nearer "alarm".
    names = {0: "Alarms", 1: "Rain tomorrow", 2: "Songs"}
    assert name_match(names, theme_of_text, parent, _encode) == round(5 / 6, 4)
    assert name_match({0: "Set alarm"}, theme_of_text, parent, _encode) == 1.0  # only named themes count
    assert np.isnan(name_match({}, theme_of_text, parent, _encode))
