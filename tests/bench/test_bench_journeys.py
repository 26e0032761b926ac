"""Pure helpers of bench/journeys.py (no server, no pipeline, no data)."""

from __future__ import annotations

from bench.journeys import choose, percentiles, rate_ok


def _trial(name, **per_set):
    return {"params": {"name": name},
            "scores": {s: {"switch_f1": f1, "js": js, "switch_rate_ratio": rate}
                       for s, (f1, js, rate) in per_set.items()}}


def test_rate_ok_is_a_25_percent_band():
    assert rate_ok({"switch_rate_ratio": 1.25})
    assert rate_ok({"switch_rate_ratio": 0.75})
    assert not rate_ok({"switch_rate_ratio": 1.26})
    assert not rate_ok({"switch_rate_ratio": None})


def test_choose_takes_the_best_mean_f1_inside_the_rate_band_on_every_set():
    trials = [
        _trial("best f1, rate off on b", a=(0.9, 0.1, 1.0), b=(0.9, 0.1, 1.4)),
        _trial("inside", a=(0.7, 0.1, 1.0), b=(0.6, 0.1, 1.2)),
        _trial("inside, worse", a=(0.6, 0.1, 1.0), b=(0.6, 0.1, 1.0)),
    ]
    assert choose(trials, ["a", "b"])["params"]["name"] == "inside"
    # On one set alone the rate on the other does not count.
    assert choose(trials, ["a"])["params"]["name"] == "best f1, rate off on b"


def test_choose_breaks_f1_ties_by_js_and_falls_back_to_the_smallest_rate_error():
    tied = [_trial("high js", a=(0.7, 0.3, 1.0)), _trial("low js", a=(0.7, 0.1, 1.0))]
    assert choose(tied, ["a"])["params"]["name"] == "low js"
    outside = [_trial("x2", a=(0.9, 0.1, 2.0)), _trial("x1.4", a=(0.5, 0.1, 1.4))]
    assert choose(outside, ["a"])["params"]["name"] == "x1.4"


def test_percentiles_rank_topics_from_0_to_1():
    assert percentiles({7: 0.3, 3: 0.1, 5: 0.2}) == {3: 0.0, 5: 0.5, 7: 1.0}
    assert percentiles({1: 0.4}) == {1: 0.0}
    assert percentiles({}) == {}
